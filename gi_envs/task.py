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

from gi_envs.batched_mlp import ACTIVATIONS, INITS, BatchedMLP, MinibatchSampler
from gi_envs.datasets import DATASETS, Dataset, load_dataset
from gi_envs.weight_image import IMAGE_STATS, ImageLayout, image_layout, upsample_action, weight_image

REWARDS = ("accuracy", "delta")
OBS_LIMIT = 20.0  # observation bounds; at init pixels have std ~0.6, so this only catches blow-ups


@dataclass(frozen=True)
class EnvConfig:
    """Keyword arguments of GradInstructor-v0; the table in `GradInstructorEnv`'s docstring explains each."""

    dataset: str = "digits"
    hidden_sizes: tuple[int, ...] = (32,)
    activation: str = "relu"
    init: str = "default"
    resolution: float = 0.15
    action_grid: tuple[int, int] = (4, 4)
    steps_per_action: int = 10
    batch_size: int = 32
    lr: float = 0.05
    perturbation_scale: float = 1.0
    episode_length: int = 20
    reward: str = "accuracy"
    eval_samples: int = 512
    data_dir: str | None = None
    image_stats: tuple[str, ...] = ("mean",)

    def __post_init__(self) -> None:
        def choice(name: str, allowed: Sequence[str]) -> None:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected one of {list(allowed)}")

        def positive_ints(name: str, length: int | None) -> None:
            value = getattr(self, name)
            ok = isinstance(value, (tuple, list)) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value
            )
            if not ok or (length is not None and len(value) != length) or len(value) == 0:
                shape = f"{length} positive integers" if length else "a non-empty sequence of positive integers"
                raise ValueError(f"{name}={value!r} is not allowed; expected {shape}")
            object.__setattr__(self, name, tuple(int(v) for v in value))

        def number(name: str, low: float, high: float, integer: bool = False, low_open: bool = True) -> None:
            value = getattr(self, name)
            kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            in_range = isinstance(value, kind) and not isinstance(value, bool)
            in_range = in_range and (low < value if low_open else low <= value) and value <= high
            if not in_range:
                bracket = "(" if low_open else "["
                what = "an integer" if integer else "a number"
                raise ValueError(f"{name}={value!r} is not allowed; expected {what} in {bracket}{low}, {high}]")

        choice("dataset", DATASETS)
        choice("activation", list(ACTIVATIONS))
        choice("init", INITS)
        choice("reward", REWARDS)
        positive_ints("hidden_sizes", None)
        positive_ints("action_grid", 2)
        number("resolution", 0.0, 1.0)
        number("steps_per_action", 1, 10_000, integer=True, low_open=False)
        number("batch_size", 1, 1_000_000, integer=True, low_open=False)
        number("lr", 0.0, 100.0)
        number("perturbation_scale", 0.0, 1_000.0, low_open=False)
        number("episode_length", 1, 1_000_000, integer=True, low_open=False)
        number("eval_samples", 0, 10_000_000, integer=True, low_open=False)
        stats = self.image_stats
        if (not isinstance(stats, (tuple, list)) or not stats or len(set(stats)) != len(stats)
                or any(s not in IMAGE_STATS for s in stats)):
            raise ValueError(f"image_stats={stats!r} is not allowed; expected distinct entries of {list(IMAGE_STATS)}")
        object.__setattr__(self, "image_stats", tuple(stats))
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))

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
        self.data: Dataset = load_dataset(config.dataset, data_dir=config.data_dir)
        sizes = (self.data.n_features, *config.hidden_sizes, self.data.n_classes)
        self.mlp = BatchedMLP(sizes, n_models, activation=config.activation)
        self.sampler = MinibatchSampler(len(self.data.train), config.batch_size, n_models)
        self.layout: ImageLayout = image_layout(tuple(self.mlp.layer_shapes), config.resolution)
        n_eval = config.eval_samples or len(self.data.val)
        self.eval_x, self.eval_y = self.data.val.x[:n_eval], self.data.val.y[:n_eval]
        self.grid_shape = (len(self.mlp.weights), *config.action_grid)

        n_layers, height, width = self.layout.shape
        image_shape = (len(config.image_stats) * n_layers, height, width)
        self.observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, image_shape, np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (int(np.prod(self.grid_shape)),), np.float32)

        self.steps = np.zeros(n_models, dtype=np.int64)
        self.last_val_accuracy = np.zeros(n_models, dtype=np.float64)

    def reset_model(self, model: int, seed: int) -> float:
        """Fresh MLP `model` and data order, both drawn from `seed`; returns its validation accuracy.

        One `torch.Generator` seeded with `seed` first draws the weights (layer by layer: weight,
        then bias), then every epoch's permutation of the training split.
        """
        generator = torch.Generator().manual_seed(int(seed))
        self.mlp.initialize(model, generator, self.config.init)
        self.sampler.reset(model, generator)
        self.steps[model] = 0
        _, accuracy = self.mlp.evaluate(self.eval_x, self.eval_y, models=[model])
        self.last_val_accuracy[model] = float(accuracy[0])
        return float(accuracy[0])

    @torch.no_grad()
    def observations(self) -> np.ndarray:
        """(N, C, H, W) weight images, finite and inside the observation bounds."""
        image = weight_image([w.detach() for w in self.mlp.weights], self.config.resolution, self.config.image_stats)
        image = torch.nan_to_num(image, nan=0.0, posinf=OBS_LIMIT, neginf=-OBS_LIMIT)
        return image.clamp_(-OBS_LIMIT, OBS_LIMIT).numpy()

    def step(self, actions: np.ndarray) -> StepResult:
        """Train every model `steps_per_action` minibatches under its action; evaluate; report.

        :param actions: (N, action_dim); values outside [-1, 1] are clipped.
        """
        cfg = self.config
        actions = np.asarray(actions, dtype=np.float32)
        expected = (self.n_models, self.action_space.shape[0])
        if actions.shape != expected:
            raise ValueError(f"actions of shape {actions.shape} do not fit the action space; expected {expected}")
        actions = np.clip(np.nan_to_num(actions), -1.0, 1.0)
        perturbation = None
        if actions.any():
            grid = torch.from_numpy(actions).view(self.n_models, *self.grid_shape)
            perturbation = upsample_action(grid, self.mlp.layer_shapes)

        train_x, train_y = self.data.train.x, self.data.train.y
        losses = torch.zeros(self.n_models)
        for _ in range(cfg.steps_per_action):
            idx = self.sampler.next_indices()
            losses += self.mlp.sgd_step(train_x[idx], train_y[idx], cfg.lr, perturbation, cfg.perturbation_scale)
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
