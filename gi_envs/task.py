"""The training problem behind every GradInstructor env: N MLPs, their data, one step for all.

`EnvConfig` holds and validates the env's keyword arguments. `TrainingTask` owns a
`BatchedMLP`, each model's data order, the spaces, and the step: upsample each model's action,
run `steps_per_action` perturbed SGD minibatches, evaluate, and report. The single env is this
with N = 1; the vectorized env is the same with N > 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from gi_envs.batched_mlp import MinibatchSampler
from gi_envs.datasets import Dataset, load_dataset
from gi_envs.spec import ImageSpec, MLPSpec, positive_ints
from gi_envs.weight_image import ImageLayout, block_scales, upsample_action

REWARDS = ("accuracy", "delta")
ACTION_MODES = ("scale", "perturb")
# randomize_regime: each fresh MLP draws its learning rate as lr times a log-uniform factor in
# REGIME_LR_FACTOR and multiplies its initial weights by a factor uniform in REGIME_INIT_SCALE
# (the zoo's range, `agents.enn.zoo.ZooSpec.init_scale_range`)
REGIME_LR_FACTOR = (0.1, 10.0)
REGIME_INIT_SCALE = (0.25, 2.0)
REGIME_STREAM = 7_919  # the regime's draws use their own generator, seeded with (mlp_seed, REGIME_STREAM)
OBS_LIMIT = 20.0  # observation bounds; at init pixels have std ~0.6, so this only catches blow-ups


@dataclass(frozen=True)
class EnvConfig:
    """Keyword arguments of GradInstructor-v0; the table in `GradInstructorEnv`'s docstring explains each."""

    dataset: str = "digits"
    hidden_sizes: tuple[int, ...] = (32,)
    activation: str = "relu"
    init: str = "default"
    resolution: float = 0.15
    action_mode: str = "scale"
    max_scale: float = 16.0
    action_grid: tuple[int, int] = (4, 4)
    steps_per_action: int = 10
    batch_size: int = 32
    lr: float = 0.05
    perturbation_scale: float = 1.0
    episode_length: int = 20
    reward: str = "accuracy"
    eval_samples: int = 512
    data_dir: str | None = None
    image_stats: tuple[str, ...] = ("mean", "rms")
    randomize_regime: bool = False

    def __post_init__(self) -> None:
        def choice(name: str, allowed: Sequence[str]) -> None:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected one of {list(allowed)}")

        def number(name: str, low: float, high: float, integer: bool = False, low_open: bool = True) -> None:
            value = getattr(self, name)
            kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            in_range = isinstance(value, kind) and not isinstance(value, bool)
            in_range = in_range and (low < value if low_open else low <= value) and value <= high
            if not in_range:
                bracket = "(" if low_open else "["
                what = "an integer" if integer else "a number"
                raise ValueError(f"{name}={value!r} is not allowed; expected {what} in {bracket}{low}, {high}]")

        mlp = MLPSpec(self.dataset, self.hidden_sizes, self.activation, self.init)  # validates those four
        image = ImageSpec(self.resolution, self.image_stats)  # and these two
        object.__setattr__(self, "hidden_sizes", mlp.hidden_sizes)
        object.__setattr__(self, "image_stats", image.stats)
        choice("reward", REWARDS)
        choice("action_mode", ACTION_MODES)
        number("max_scale", 1.0, 1_000.0)
        object.__setattr__(self, "action_grid", positive_ints("action_grid", self.action_grid, length=2))
        for layer, (out, fan_in) in enumerate(mlp.layer_shapes):
            if self.action_grid[0] > out or self.action_grid[1] > fan_in:
                largest = tuple(min(shape[k] for shape in mlp.layer_shapes) for k in (0, 1))
                raise ValueError(f"action_grid={self.action_grid} is larger than weight matrix {layer} of shape "
                                 f"(out, in)=({out}, {fan_in}) of the MLP with hidden_sizes={mlp.hidden_sizes}: most "
                                 f"cells would move no weight; expected at most {largest} for this MLP, or wider "
                                 "hidden layers")
        number("steps_per_action", 1, 10_000, integer=True, low_open=False)
        number("batch_size", 1, 1_000_000, integer=True, low_open=False)
        number("lr", 0.0, 100.0)
        number("perturbation_scale", 0.0, 1_000.0, low_open=False)
        number("episode_length", 1, 1_000_000, integer=True, low_open=False)
        number("eval_samples", 0, 10_000_000, integer=True, low_open=False)
        if not isinstance(self.randomize_regime, (bool, np.bool_)):
            raise ValueError(f"randomize_regime={self.randomize_regime!r} is not allowed; expected True or False")
        object.__setattr__(self, "randomize_regime", bool(self.randomize_regime))
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))

    @property
    def mlp(self) -> MLPSpec:
        """The target MLP these arguments describe."""
        return MLPSpec(self.dataset, self.hidden_sizes, self.activation, self.init)

    @property
    def image(self) -> ImageSpec:
        """The weight image the agent observes."""
        return ImageSpec(self.resolution, self.image_stats)

    @classmethod
    def from_specs(cls, mlp: MLPSpec, image: ImageSpec | None = None, **kwargs: object) -> EnvConfig:
        """Arguments for MLPs of `mlp` seen as `image` (default: the env's image), plus other arguments."""
        image = image or ImageSpec()
        return cls.from_kwargs(dataset=mlp.dataset, hidden_sizes=mlp.hidden_sizes, activation=mlp.activation,
                               init=mlp.init, resolution=image.resolution, image_stats=image.stats, **kwargs)

    def to_kwargs(self) -> dict[str, object]:
        """The keyword arguments that rebuild this config, as `gym.make` takes them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> EnvConfig:
        """Build from keyword arguments, naming the known ones when one is not."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown GradInstructor-v0 argument(s) {unknown}; expected some of {sorted(known)}")
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass
class StepResult:
    """What one step of all N models produced; arrays of length N."""

    observation: np.ndarray
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
        self.mlp = self.mlp_spec.build(n_models)
        self.sampler = MinibatchSampler(len(self.data.train), config.batch_size, n_models)
        self.layout: ImageLayout = self.image_spec.layout(self.mlp_spec)
        n_eval = config.eval_samples or len(self.data.val)
        self.eval_x, self.eval_y = self.data.val.x[:n_eval], self.data.val.y[:n_eval]
        self.grid_shape = (len(self.mlp.weights), *config.action_grid)

        self.observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, self.image_spec.shape(self.mlp_spec), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (int(np.prod(self.grid_shape)),), np.float32)

        self.steps = np.zeros(n_models, dtype=np.int64)
        self.last_val_accuracy = np.zeros(n_models, dtype=np.float64)
        self.lr_factor = torch.ones(n_models)  # drawn at reset under randomize_regime, else 1
        self.init_scale = torch.ones(n_models)

    def reset_model(self, model: int, seed: int) -> float:
        """Fresh MLP `model` and data order, both drawn from `seed`; returns its validation accuracy.

        One `torch.Generator` seeded with `seed` first draws the weights (layer by layer: weight,
        then bias), then every epoch's permutation of the training split. Under `randomize_regime`,
        a NumPy generator seeded with ``(seed, REGIME_STREAM)`` then draws the learning-rate factor
        and the init scale, which multiplies the fresh weight matrices.
        """
        generator = torch.Generator().manual_seed(int(seed))
        self.mlp.initialize(model, generator, self.config.init)
        self.sampler.reset(model, generator)
        if self.config.randomize_regime:
            rng = np.random.default_rng([int(seed), REGIME_STREAM])
            self.lr_factor[model] = float(np.exp(rng.uniform(*np.log(REGIME_LR_FACTOR))))
            self.init_scale[model] = float(rng.uniform(*REGIME_INIT_SCALE))
            with torch.no_grad():
                for w in self.mlp.weights:
                    w[model] *= self.init_scale[model]
        self.steps[model] = 0
        _, accuracy = self.mlp.evaluate(self.eval_x, self.eval_y, models=[model])
        self.last_val_accuracy[model] = float(accuracy[0])
        return float(accuracy[0])

    def regime_scales(self, scales: tuple[list[torch.Tensor], list[torch.Tensor]] | None
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`scales` (None: all ones) times each model's learning-rate factor."""
        f = self.lr_factor
        if scales is None:
            return ([f[:, None, None].expand(-1, *shape) for shape in self.mlp.layer_shapes],
                    [f[:, None].expand(-1, shape[0]) for shape in self.mlp.layer_shapes])
        return [s * f[:, None, None] for s in scales[0]], [s * f[:, None] for s in scales[1]]

    def regime(self, model: int) -> dict[str, float]:
        """The training regime of MLP `model`: its learning rate and init scale."""
        return {"lr": self.config.lr * float(self.lr_factor[model]), "init_scale": float(self.init_scale[model])}

    @torch.no_grad()
    def observations(self) -> np.ndarray:
        """(N, C, H, W) weight images, finite and inside the observation bounds."""
        image = self.image_spec.image([w.detach() for w in self.mlp.weights])
        image = torch.nan_to_num(image, nan=0.0, posinf=OBS_LIMIT, neginf=-OBS_LIMIT)
        return image.clamp_(-OBS_LIMIT, OBS_LIMIT).numpy()

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
        perturbation = scales = None
        if actions.any():  # the zero action leaves the gradient untouched in every mode: exactly plain SGD
            grid = torch.from_numpy(actions).view(self.n_models, *self.grid_shape)
            if cfg.action_mode == "scale":
                scales = block_scales(grid, self.mlp.layer_shapes, cfg.max_scale)
            else:
                perturbation = upsample_action(grid, self.mlp.layer_shapes)
        if cfg.randomize_regime:  # each MLP's own learning rate, lr * lr_factor
            scales = self.regime_scales(scales)

        train_x, train_y = self.data.train.x, self.data.train.y
        losses = torch.zeros(self.n_models)
        for _ in range(cfg.steps_per_action):
            idx = self.sampler.next_indices()
            losses += self.mlp.sgd_step(train_x[idx], train_y[idx], cfg.lr, perturbation, cfg.perturbation_scale,
                                        scales)
        train_loss = (losses / cfg.steps_per_action).numpy().astype(np.float64)
        val_loss, val_acc = self.mlp.evaluate(self.eval_x, self.eval_y)
        val_accuracy = val_acc.numpy().astype(np.float64)
        diverged = ~np.isfinite(train_loss) | ~np.isfinite(val_loss.numpy())
        val_accuracy[diverged] = 0.0  # a diverged model has no meaningful prediction

        reward = val_accuracy - self.last_val_accuracy if cfg.reward == "delta" else val_accuracy.copy()
        self.last_val_accuracy = val_accuracy.copy()
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
