"""The training problem behind every GradInstructor env: N MLPs, their data, one step for all.

`EnvConfig` holds and validates the env's keyword arguments. `TrainingTask` owns the training core
(`gi_envs.training.Training`) for N models, the spaces, and the env step: turn each model's action
into per-block learning rates (or a gradient perturbation), run `steps_per_action` minibatches of
each model's own regime, evaluate, and report. The single env is this with N = 1; the vectorized
env is the same with N > 1.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gi_envs.datasets import Dataset, load_dataset
from gi_envs.layer_observation import layer_slots
from gi_envs.memory import check_memory
from gi_envs.observation import OBSERVATION_PARTS, ObservationLayout, check_parts
from gi_envs.regime import REGIME_DISTRIBUTIONS, Regime, RegimeDistribution, distribution_name, regime_distribution
from gi_envs.spec import ImageSpec, MLPSpec, positive_ints
from gi_envs.task_family import OBSERVED_HIDDEN_LAYERS, DrawnTask, TaskDistribution, split_name, task_distribution
from gi_envs.training import Training, perturbation_hook
from gi_envs.values import check_number
from gi_envs.weight_image import ImageLayout, block_scales, upsample_action

OBSERVATION_BYTES_PER_VALUE = 16  # float32 low, high and observation, bool masks of the Box, and a copy in flight
REWARDS = ("accuracy", "delta")
SHAPE_FREE_OBSERVATION = ("layer_stats", "layer_change_stats", "training_state")  # what a task family's agents see
ACTION_MODES = ("scale", "perturb")


class UnknownArgument(TypeError, ValueError):
    """An unknown keyword argument of GradInstructor-v0: a TypeError, as Python raises for any call, and a
    ValueError, as every other bad argument of the env (code that catches either sees it)."""


def _arg(default: Any, doc: str) -> Any:
    """A field of `EnvConfig` with its one line of documentation (`arguments_table` shows it)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class EnvConfig:
    """Keyword arguments of GradInstructor-v0, each with its meaning: the one source of `arguments_table`, which
    `GradInstructorEnv`'s docstring shows and docs/environment.md repeats (a test compares them)."""

    dataset: str = _arg("digits", "`digits` (embedded in scikit-learn), `mnist`, `fashion-mnist`")
    hidden_sizes: tuple[int, ...] = _arg((32,), "hidden layer widths")
    activation: str = _arg("relu", "`relu`, `tanh`, `sigmoid`, `gelu`")
    init: str = _arg("default", "`default` (PyTorch's `nn.Linear`) or `he` (He normal, zero biases)")
    resolution: float = _arg(0.15, "share of each side of a weight matrix kept in the image (the paper's 0.15)")
    action_mode: str = _arg("scale", "`scale` (per-block gradient multipliers) or `perturb` (additive perturbation)")
    max_scale: float = _arg(16.0, "`scale` mode: action 1 multiplies a gradient by this, -1 divides by it; must be > 1")
    action_grid: tuple[int, int] | None = _arg(
        None, "rows, columns of each layer's action grid (at most the smallest weight matrix); `None`: (4, 4), or "
        "(1, 1) with a `task_family` (one learning-rate multiplier per layer)")
    steps_per_action: int = _arg(10, "minibatches per env step")
    # the fixed regime's fields default to `Regime`'s
    batch_size: int = _arg(Regime.batch_size, "samples per minibatch")
    lr: float = _arg(Regime.lr, "the optimizer's learning rate (the zero action's)")
    perturbation_scale: float = _arg(
        1.0, "`perturb` mode: an action of 1 adds this many gradient-RMS to a weight's gradient")
    episode_length: int = _arg(20, "env steps per episode; `env.spec.max_episode_steps` reports it")
    reward: str = _arg("accuracy", "`accuracy` or `delta`")
    eval_samples: int = _arg(512, "validation samples behind the reward; 0 = the whole split")
    data_dir: str | None = _arg(None, "data root for mnist / fashion-mnist, else `$GI_DATA_DIR`")
    image_stats: tuple[str, ...] = _arg(
        ("mean", "rms"), "what each pixel says of its block: `mean` and/or `rms`, one group of channels each")
    optimizer: str = _arg(Regime.optimizer, "`sgd`, `momentum` (SGD, momentum 0.9), `adam` (AdamW, decoupled weight "
                                            "decay) or `schedule-free-adamw`: a name of `gi_envs.OPTIMIZERS`")
    weight_decay: float = _arg(
        Regime.weight_decay, "L2 weight decay (added to the gradient for SGD and momentum, decoupled for Adam)")
    init_scale: float = _arg(Regime.init_scale, "multiplies the initial weight matrices")
    data_share: float = _arg(
        Regime.data_share, "share of the training split the MLP sees (a subset drawn from its seed)")
    randomize_regime: bool | str | Mapping[str, Any] | RegimeDistribution = _arg(
        False, "each fresh MLP draws its own regime: `True` (the default distribution), a distribution's name, or a "
        "mapping of its fields")
    observation: tuple[str, ...] = _arg(
        ("weights",), "what the agent sees: `weights` (the image), then any of `gi_envs.OBSERVATION_PARTS` "
        "(`weight_change`, `training_state`); the shape-free `layer_stats`, `layer_change_stats` and "
        "`training_state` alone give every MLP the same space")
    max_hidden_layers: int | None = _arg(
        None, "layer slots of the action and of the shape-free parts: one action grid per slot of an MLP of up to this "
        "many hidden layers (input layer first, output layer last; slots the MLP lacks are ignored), so every such "
        "MLP has the same spaces; `None`: one per weight matrix of this MLP (4 with a `task_family`)")
    task_family: bool | str | Mapping[str, Any] | Any = _arg(
        False, "each fresh MLP draws its task (data set, depth, widths, optimizer, regime) from a "
        "`gi_envs.TaskDistribution`: `True` (meta-train), a split's name of `gi_envs.TASK_SPLITS` or a mapping of its "
        "fields; `dataset`, `hidden_sizes` and the regime's arguments are then the family's; needs a shape-free "
        "`observation`")

    def __post_init__(self) -> None:
        def choice(name: str, allowed: Sequence[str]) -> None:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected one of {list(allowed)}")

        def number(name: str, low: float, high: float, integer: bool = False, low_open: bool = True) -> None:
            check_number(name, getattr(self, name), low, high, integer=integer, low_open=low_open)

        mlp = MLPSpec(self.dataset, self.hidden_sizes, self.activation, self.init)  # validates those four
        image = ImageSpec(self.resolution, self.image_stats)  # and these two
        object.__setattr__(self, "dataset", mlp.dataset)
        object.__setattr__(self, "hidden_sizes", mlp.hidden_sizes)
        object.__setattr__(self, "image_stats", image.stats)
        choice("reward", REWARDS)
        choice("action_mode", ACTION_MODES)
        number("max_scale", 1.0, 1_000.0)
        object.__setattr__(self, "task_family", _family_or_false(self.task_family))
        if self.action_grid is not None:
            object.__setattr__(self, "action_grid", positive_ints("action_grid", self.action_grid, length=2))
        family = self.family
        if self.max_hidden_layers is not None or family is not None:
            deepest = OBSERVED_HIDDEN_LAYERS if self.max_hidden_layers is None else self.max_hidden_layers
            least = max(family.depths) if family is not None else len(self.hidden_sizes)
            check_number("max_hidden_layers", deepest, least, 64, integer=True, low_open=False)
            object.__setattr__(self, "max_hidden_layers", int(deepest))
        for layer, (out, fan_in) in enumerate(mlp.layer_shapes if family is None else ()):
            if self.grid[0] > out or self.grid[1] > fan_in:
                largest = tuple(min(shape[k] for shape in mlp.layer_shapes) for k in (0, 1))
                raise ValueError(f"action_grid={self.grid} is larger than weight matrix {layer} of shape "
                                 f"(out, in)=({out}, {fan_in}) of the MLP with hidden_sizes={mlp.hidden_sizes}: most "
                                 f"cells would move no weight; expected at most {largest} for this MLP, or wider "
                                 "hidden layers")
        number("steps_per_action", 1, 10_000, integer=True, low_open=False)
        regime = self.regime  # validates lr, batch_size, optimizer, weight_decay, init_scale, data_share
        for name in ("lr", "batch_size", "init_scale", "weight_decay", "data_share"):
            object.__setattr__(self, name, getattr(regime, name))
        number("perturbation_scale", 0.0, 1_000.0, low_open=False)
        number("episode_length", 1, 1_000_000, integer=True, low_open=False)
        number("eval_samples", 0, 10_000_000, integer=True, low_open=False)
        object.__setattr__(self, "randomize_regime", _distribution_or_false(self.randomize_regime))
        object.__setattr__(self, "observation", check_parts(self.observation))
        if family is not None:
            self._check_family(family)
        shape = self.observation_layout.image_shape  # the image pads every layer to the largest: refuse a huge one
        check_memory(OBSERVATION_BYTES_PER_VALUE * int(np.prod(shape)),
                     f"the weight image of hidden_sizes={self.hidden_sizes} at resolution={self.resolution} "
                     f"({' x '.join(map(str, shape))} values: its space's bounds and every observation)")
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", _data_dir(self.data_dir))

    def _check_family(self, family: TaskDistribution) -> None:
        """The arguments a task family allows: a shape-free observation, no fixed regime distribution, an action grid
        that fits its smallest weight matrix."""
        image_parts = [p for p in self.observation if OBSERVATION_PARTS[p].joins == "image"]
        if image_parts:
            raise ValueError(f"observation={list(self.observation)} is not allowed with a task_family: the image "
                             f"parts {image_parts} have each MLP's own shape; expected shape-free parts such as "
                             f"{list(SHAPE_FREE_OBSERVATION)}")
        if self.randomize_regime is not False:
            raise ValueError("randomize_regime is not allowed with a task_family: the family draws each MLP's regime "
                             "(its `regimes` field); expected randomize_regime=False")
        rows, columns = family.smallest_matrix()
        if self.grid[0] > rows or self.grid[1] > columns:
            raise ValueError(f"action_grid={self.grid} is larger than the smallest weight matrix of the task "
                             f"family, ({rows}, {columns}) (out, in); expected at most that, e.g. (1, 1)")

    @property
    def family(self) -> TaskDistribution | None:
        """Where each fresh MLP's task comes from under `task_family`; None for the one MLP of `mlp`."""
        return self.task_family or None  # type: ignore[return-value]

    def for_task(self, task: DrawnTask) -> EnvConfig:
        """The arguments of one MLP of the family: its data set, widths and regime fixed, the slots kept."""
        regime = task.regime
        return dataclasses.replace(
            self, task_family=False, action_grid=self.grid, dataset=task.dataset, hidden_sizes=task.hidden_sizes,
            lr=regime.lr, batch_size=regime.batch_size, init_scale=regime.init_scale, weight_decay=regime.weight_decay,
            data_share=regime.data_share, optimizer=regime.optimizer)

    @property
    def mlp(self) -> MLPSpec:
        """The target MLP these arguments describe."""
        return MLPSpec(self.dataset, self.hidden_sizes, self.activation, self.init)

    @property
    def image(self) -> ImageSpec:
        """The weight image the agent observes."""
        return ImageSpec(self.resolution, self.image_stats)

    @property
    def regime(self) -> Regime:
        """The fixed regime every fresh MLP trains with, unless `distribution` draws one per MLP."""
        return Regime(lr=self.lr, batch_size=self.batch_size, init_scale=self.init_scale,
                      weight_decay=self.weight_decay, data_share=self.data_share, optimizer=self.optimizer)

    @property
    def observation_layout(self) -> ObservationLayout:
        """What an observation holds (`gi_envs.observation`): image channels, state length."""
        mlp = self.mlp
        slots = self.action_slots
        action_dim = slots * self.grid[0] * self.grid[1]
        image_shape = (0, 0, 0) if self.family is not None else self.image.shape(mlp)
        return ObservationLayout(self.observation, image_shape, action_dim, len(mlp.layer_shapes), slots)

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of each layer's action grid: `action_grid`, or its default, (4, 4) for one MLP and (1, 1)
        for a task family."""
        return self.action_grid if self.action_grid is not None else (1, 1) if self.family is not None else (4, 4)

    @property
    def action_slots(self) -> int:
        """Action grids (and shape-free layer slots): one per weight matrix, or `max_hidden_layers` + 1."""
        return len(self.mlp.layer_shapes) if self.max_hidden_layers is None else self.max_hidden_layers + 1

    @property
    def distribution(self) -> RegimeDistribution | None:
        """Where each fresh MLP's regime comes from under `randomize_regime`; None for the fixed `regime`."""
        return self.randomize_regime or None  # type: ignore[return-value]

    @classmethod
    def from_specs(cls, mlp: MLPSpec, image: ImageSpec | None = None, **kwargs: object) -> EnvConfig:
        """Arguments for MLPs of `mlp` seen as `image` (default: the env's image), plus other arguments."""
        image = image or ImageSpec()
        return cls.from_kwargs(dataset=mlp.dataset, hidden_sizes=mlp.hidden_sizes, activation=mlp.activation,
                               init=mlp.init, resolution=image.resolution, image_stats=image.stats, **kwargs)

    def to_kwargs(self) -> dict[str, object]:
        """The keyword arguments that rebuild this config, as `gym.make` takes them (plain JSON values: a
        regime distribution by its registry name, or its fields)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.distribution is not None:
            kwargs["randomize_regime"] = distribution_name(self.distribution) or self.distribution.to_dict()
        if self.family is not None:
            kwargs["task_family"] = split_name(self.family) or self.family.to_dict()
        return kwargs

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> EnvConfig:
        """Build from keyword arguments; an unknown one raises `UnknownArgument` (a TypeError, as in any Python
        call, which SB3's `make_vec_env` and TorchRL's `GymEnv` retry on), naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            # Python's own words first: clients (TorchRL's GymEnv) match them to retry without the argument
            raise UnknownArgument(f"GradInstructorEnv.__init__() got an unexpected keyword argument {unknown[0]!r} "
                                  f"(unknown GradInstructor-v0 argument(s) {unknown}; expected some of "
                                  f"{sorted(known | {'render_mode'})})")
        return cls(**kwargs)  # type: ignore[arg-type]


def arguments_table() -> str:
    """The Markdown table of GradInstructor-v0's keyword arguments, from `EnvConfig` (its one source)."""

    def shown(value: object) -> str:
        return repr(value).replace("'", '"')

    rows = ["| argument | default | meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | `{shown(f.default)}` | {f.metadata['doc']} |" for f in dataclasses.fields(EnvConfig)]
    return "\n".join(rows)


def _data_dir(value: object) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"data_dir={value!r} is not allowed; expected None or a folder's path (a string or a "
                         "pathlib.Path)")
    return os.fspath(value)


def _family_or_false(value: object) -> TaskDistribution | bool:
    """`task_family` as False or the distribution it names (True: meta-train)."""
    if value is False or isinstance(value, np.bool_) and not value:
        return False
    if isinstance(value, np.bool_):
        value = bool(value)
    return task_distribution(value)  # type: ignore[arg-type]


def _distribution_or_false(value: object) -> RegimeDistribution | bool:
    """`randomize_regime` as False or the distribution it names (True: the default one)."""
    if isinstance(value, (bool, np.bool_)):
        return regime_distribution("default") if value else False
    expected = (f"expected True or False, a distribution's name ({', '.join(REGIME_DISTRIBUTIONS)}) or a mapping of "
                "its fields")
    if isinstance(value, str) and value not in REGIME_DISTRIBUTIONS or not isinstance(
            value, (str, Mapping, RegimeDistribution)):
        raise ValueError(f"randomize_regime={value!r} is not allowed; {expected}")
    try:
        return regime_distribution(value)
    except ValueError as error:
        raise ValueError(f"randomize_regime: {error}") from None


@dataclass
class StepResult:
    """What one step of all N models produced; arrays of length N."""

    observation: np.ndarray | dict[str, np.ndarray]
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    val_accuracy: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    test_accuracy: np.ndarray  # nan where the episode goes on


class TrainingTask:
    """N target MLPs under training, one GradInstructor episode each.

    :param config: the validated env keyword arguments.
    :param n_models: N.
    """

    def __init__(self, config: EnvConfig, n_models: int = 1):
        self.config = config
        self.n_models = n_models
        self.mlp_spec, self.image_spec = config.mlp, config.image
        self.data: Dataset = load_dataset(config.dataset, data_dir=config.data_dir)
        n_train = len(self.data.train)
        (config.distribution or config.regime).check_fits(n_train)
        self.training = Training(self.mlp_spec, self.data, n_models)
        self.mlp = self.training.mlp
        self.layout: ImageLayout = self.image_spec.layout(self.mlp_spec)
        n_eval = config.eval_samples or len(self.data.val)
        self.eval_x, self.eval_y = self.data.val.x[:n_eval], self.data.val.y[:n_eval]
        self.grid_shape = (config.action_slots, *config.grid)
        self.slots = layer_slots(len(self.mlp.weights), config.action_slots)  # each weight matrix's action grid

        action_dim = int(np.prod(self.grid_shape))
        self.observation_layout = config.observation_layout
        self.observation_space = self.observation_layout.single_space()
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

        self.steps = np.zeros(n_models, dtype=np.int64)
        self.last_val_accuracy = np.zeros(n_models, dtype=np.float64)
        # what the opt-in observation parts show: the weights one step ago, and the recent training state
        self.previous_weights = [w.detach().clone() for w in self.mlp.weights] \
            if self.observation_layout.tracks_previous_weights else None
        self.val_accuracy_before = np.zeros(n_models)
        self.train_loss = np.zeros(n_models)
        self.train_loss_before = np.zeros(n_models)
        self.last_action = np.zeros((n_models, action_dim), dtype=np.float32)

    def reset_mlp(self, index: int, seed: int) -> float:
        """Fresh MLP `index`, drawn from `seed` with its regime; returns its validation accuracy.

        The regime is the config's fixed one, or under `randomize_regime` the one its distribution gives
        `seed` (`RegimeDistribution.regime_of`, as the zoo draws its runs'). `Training.reset` then draws
        the weights, the data share and the data order from `seed`.
        """
        distribution = self.config.distribution
        regime = self.config.regime if distribution is None else distribution.regime_of(seed)
        self.training.reset(index, seed, regime)
        self.steps[index] = 0
        loss, accuracy = self.mlp.evaluate(self.eval_x, self.eval_y, models=[index])
        self.last_val_accuracy[index] = self.val_accuracy_before[index] = float(accuracy[0])
        self.train_loss[index] = self.train_loss_before[index] = float(loss[0])  # no training batch seen yet
        self.last_action[index] = 0.0
        if self.previous_weights is not None:
            for previous, w in zip(self.previous_weights, self.mlp.weights):
                previous[index] = w[index].detach()
        return float(accuracy[0])

    def regime(self, index: int) -> Regime:
        """The training regime of MLP `index`."""
        return self.training.regimes[index]

    @property
    def seeds(self) -> list[int]:
        """Each MLP's seed, as its last reset drew it."""
        return self.training.seeds

    def member(self, index: int) -> TrainingTask:
        """The `TrainingTask` that trains MLP `index`: this one (`FamilyTask` answers with that MLP's own)."""
        return self

    def describe(self, index: int) -> dict[str, Any]:
        """What the env's `info` says of MLP `index`'s task: its drawn regime under `randomize_regime`, else nothing."""
        return self.regime(index).to_dict() if self.config.distribution is not None else {}

    @torch.no_grad()
    def observations(self) -> np.ndarray | dict[str, np.ndarray]:
        """(N, C, H, W) images, finite and inside the observation bounds (with a state part such as
        ``training_state``: a dict of those and the (N, state_dim) states); see `gi_envs.observation`."""
        return self.observation_layout.observe(self)

    def step(self, actions: np.ndarray) -> StepResult:
        """Train every model `steps_per_action` minibatches under its action; evaluate; report.

        :param actions: (N, action_dim); values outside [-1, 1] are clipped, a NaN raises ValueError.
        """
        cfg = self.config
        actions = np.asarray(actions, dtype=np.float32)
        expected = (self.n_models, self.action_space.shape[0])
        if actions.shape != expected:
            raise ValueError(f"actions of shape {actions.shape} do not fit the action space; expected {expected}")
        if np.isnan(actions).any():
            rows = sorted(set(np.argwhere(np.isnan(actions))[:, 0].tolist()))
            raise ValueError(f"action of model(s) {rows} contains NaN; expected finite values in [-1, 1]")
        actions = np.clip(actions, -1.0, 1.0)
        hook = scales = None
        if actions.any():  # the zero action leaves every model's optimizer untouched in every mode
            grid = torch.from_numpy(actions).view(self.n_models, *self.grid_shape)[:, self.slots]
            if cfg.action_mode == "scale":
                scales = block_scales(grid, self.mlp.layer_shapes, cfg.max_scale)
            else:
                hook = perturbation_hook(upsample_action(grid, self.mlp.layer_shapes), cfg.perturbation_scale)
        if self.previous_weights is not None:
            for previous, w in zip(self.previous_weights, self.mlp.weights):
                previous.copy_(w.detach())

        losses = torch.zeros(self.n_models)
        for _ in range(cfg.steps_per_action):
            losses += self.training.step(hook, scales)
        train_loss = (losses / cfg.steps_per_action).numpy().astype(np.float64)
        val_loss, val_acc = self.mlp.evaluate(self.eval_x, self.eval_y)
        val_accuracy = val_acc.numpy().astype(np.float64)
        diverged = ~np.isfinite(train_loss) | ~np.isfinite(val_loss.numpy())
        val_accuracy[diverged] = 0.0  # a diverged model has no meaningful prediction

        reward = val_accuracy - self.last_val_accuracy if cfg.reward == "delta" else val_accuracy.copy()
        self.val_accuracy_before = self.last_val_accuracy
        self.last_val_accuracy = val_accuracy.copy()
        self.train_loss_before, self.train_loss = self.train_loss, train_loss
        self.last_action = actions
        self.steps += 1
        terminated = diverged
        truncated = ~terminated & (self.steps >= cfg.episode_length)

        test_accuracy = np.full(self.n_models, np.nan)
        ended = np.flatnonzero(terminated | truncated)
        if len(ended):
            _, acc = self.mlp.evaluate(self.data.test.x, self.data.test.y, models=ended.tolist())
            test_accuracy[ended] = acc.numpy()
            test_accuracy[diverged] = 0.0
        return StepResult(
            observation=self.observations(),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            val_accuracy=val_accuracy,
            train_loss=np.where(np.isfinite(train_loss), train_loss, np.inf),
            diverged=diverged,
            test_accuracy=test_accuracy,
        )
