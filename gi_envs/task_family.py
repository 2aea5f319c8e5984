"""Task families: each MLP draws its data set, its shape and its optimizer, as well as its regime.

A `TaskDistribution` extends `RegimeDistribution` to the task itself. For MLP seed s it draws, from a generator
of its own (seeded with (s, `FAMILY_STREAM`)), a data set (``digits``, ``mnist``, ``fashion-mnist`` or a fresh
``synthetic-K``), a depth and hidden widths, and an optimizer; the regime of that optimizer then comes from
``regimes`` with s (`RegimeDistribution.regime_of`), as everywhere else. So the env, the vector env and a zoo
that meet the same seed meet the same task.

The meta-training and meta-test splits are data, named once in `TASK_SPLITS` (the way DACBench keeps its
instance sets): ``meta-train`` is what agents train on; the test splits hold out a data set, shapes, an
optimizer or the horizon, and ``in-distribution`` draws from the training distribution with synthetic tasks of
another block. `tests/test_task_family.py` proves that no held-out data set, shape or optimizer reaches
``meta-train``.

Every split is read through the same observation (`gi_envs.layer_observation`: per-layer statistics in
`OBSERVED_HIDDEN_LAYERS` + 1 slots and the training state) and the same per-slot action, so one agent acts on all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from gi_envs.datasets import DATASETS, SYNTHETIC_PREFIX, dataset_dims
from gi_envs.optimizers import OPTIMIZERS
from gi_envs.regime import REGIME_DISTRIBUTIONS, Regime, RegimeDistribution, known_fields, regime_distribution
from gi_envs.spec import BRIEF

FAMILY_STREAM = 15_485_863  # a task's draws come from a generator seeded with (mlp_seed, FAMILY_STREAM)
SYNTHETIC = "synthetic"  # in `TaskDistribution.datasets`: a ``synthetic-K`` task, K drawn from `synthetic_range`
OBSERVED_HIDDEN_LAYERS = 4  # every split's MLPs fit the observation's and the action's slots (held-out: 4 layers)
SYNTHETIC_TRAIN_RANGE = (0, 1_000_000_000)  # K of meta-training's synthetic tasks
SYNTHETIC_TEST_RANGE = (1_000_000_000, 2_000_000_000)  # K of the meta-test splits' synthetic tasks


@dataclass(frozen=True)
class DrawnTask:
    """What one MLP of a family trains on: its data set, hidden widths and regime (the optimizer included)."""

    dataset: str
    hidden_sizes: tuple[int, ...]
    regime: Regime

    def to_info(self) -> dict[str, Any]:
        """Flat values for an env's `info`: the data set, the widths as ``"128-64"`` and the regime's fields."""
        return {"dataset": self.dataset, "hidden_sizes": "-".join(map(str, self.hidden_sizes)),
                "depth": len(self.hidden_sizes), **self.regime.to_dict()}


@dataclass(frozen=True)
class TaskDistribution:
    """Where tasks come from: each field drawn independently, from an MLP's own seed.

    :param datasets: drawn uniformly: names of `gi_envs.DATASETS` and/or ``synthetic`` (a generated task,
        `gi_envs.datasets.SyntheticTask`, its index K drawn uniformly from `synthetic_range`).
    :param synthetic_range: [low, high) of K.
    :param width_ranges: each hidden width comes from one of these (low, high) ranges, chosen uniformly, then
        log-uniform within it (rounded); every hidden layer draws its own.
    :param depths: numbers of hidden layers, drawn uniformly.
    :param optimizers: drawn uniformly (names of `gi_envs.OPTIMIZERS`).
    :param regimes: the rest of the regime (learning rate, init scale, weight decay, data share, batch size),
        drawn for the chosen optimizer: a `RegimeDistribution`, its name or a mapping of its fields.
    """

    datasets: tuple[str, ...] = ("digits", "mnist", SYNTHETIC)
    synthetic_range: tuple[int, int] = SYNTHETIC_TRAIN_RANGE
    width_ranges: tuple[tuple[int, int], ...] = ((16, 256),)
    depths: tuple[int, ...] = (1, 2, 3)
    optimizers: tuple[str, ...] = ("sgd", "momentum", "adam")
    regimes: RegimeDistribution = field(default_factory=RegimeDistribution)

    def __post_init__(self) -> None:
        def refuse(name: str, expected: str) -> None:
            raise ValueError(f"{name}={BRIEF.repr(getattr(self, name))} is not allowed; expected {expected}")

        def is_int(v: object) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        allowed = [*DATASETS, SYNTHETIC]
        names = self.datasets
        if not isinstance(names, (tuple, list)) or not names or len(set(names)) != len(names) or any(
                n not in allowed for n in names):
            refuse("datasets", f"distinct names of {allowed}")
        low_high = self.synthetic_range
        if not (isinstance(low_high, (tuple, list)) and len(low_high) == 2 and all(map(is_int, low_high))
                and 0 <= low_high[0] < low_high[1] <= 2**62):
            refuse("synthetic_range", "(low, high) integers with 0 <= low < high <= 2**62")
        ranges = self.width_ranges
        if not (isinstance(ranges, (tuple, list)) and ranges and all(
                isinstance(r, (tuple, list)) and len(r) == 2 and all(map(is_int, r)) and 1 <= r[0] <= r[1] <= 4096
                for r in ranges)):
            refuse("width_ranges", "a non-empty sequence of (low, high) integer ranges with 1 <= low <= high <= 4096")
        depths = self.depths
        if not (isinstance(depths, (tuple, list)) and depths and len(set(depths)) == len(depths)
                and all(is_int(d) and 1 <= d <= OBSERVED_HIDDEN_LAYERS for d in depths)):
            refuse("depths", f"distinct integers from 1 to {OBSERVED_HIDDEN_LAYERS}")
        optimizers = self.optimizers
        if not (isinstance(optimizers, (tuple, list)) and optimizers and len(set(optimizers)) == len(optimizers)
                and all(o in OPTIMIZERS for o in optimizers)):
            refuse("optimizers", f"distinct names of {list(OPTIMIZERS)}")
        try:
            regimes = regime_distribution(self.regimes)
        except ValueError as error:
            raise ValueError(f"regimes: {error}") from None
        set_field = object.__setattr__
        set_field(self, "datasets", tuple(names))
        set_field(self, "synthetic_range", (int(low_high[0]), int(low_high[1])))
        set_field(self, "width_ranges", tuple((int(a), int(b)) for a, b in ranges))
        set_field(self, "depths", tuple(int(d) for d in depths))
        set_field(self, "optimizers", tuple(optimizers))
        set_field(self, "regimes", regimes)

    def sample(self, rng: np.random.Generator, mlp_seed: int) -> DrawnTask:
        """One task, its fields drawn in a fixed order from `rng`; the regime from `mlp_seed` (`regime_of`)."""
        dataset = self.datasets[rng.integers(len(self.datasets))]
        synthetic_k = int(rng.integers(*self.synthetic_range))
        if dataset == SYNTHETIC:
            dataset = f"{SYNTHETIC_PREFIX}{synthetic_k}"
        depth = int(self.depths[rng.integers(len(self.depths))])
        widths = []
        for _ in range(depth):  # log-uniform over the integers of one range
            low, high = self.width_ranges[rng.integers(len(self.width_ranges))]
            widths.append(min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1))))))
        optimizer = self.optimizers[rng.integers(len(self.optimizers))]
        regime = replace(self.regimes, optimizers=(optimizer,)).regime_of(mlp_seed)
        return DrawnTask(dataset, tuple(widths), regime)

    def task_of(self, mlp_seed: int) -> DrawnTask:
        """The task of the MLP drawn from `mlp_seed`: the same in the env, the vector env and a zoo."""
        return self.sample(np.random.default_rng([int(mlp_seed), FAMILY_STREAM]), mlp_seed)

    def smallest_matrix(self) -> tuple[int, int]:
        """(rows, columns) that every weight matrix of the family has at least: the bound of an action grid."""
        dims = [dataset_dims(d) for d in self.datasets if d != SYNTHETIC]
        if SYNTHETIC in self.datasets:
            dims.append((8, 2))  # `SyntheticTask`: at least 8 inputs and 2 classes
        narrowest = min(low for low, _ in self.width_ranges)
        return min(narrowest, *(c for _, c in dims)), min(narrowest, *(f for f, _ in dims))

    def check_fits(self, n_train: int) -> None:
        """Raise a ValueError when a batch size is larger than a training split of `n_train` samples."""
        self.regimes.check_fits(n_train)

    def to_dict(self) -> dict[str, Any]:
        return {"datasets": list(self.datasets), "synthetic_range": list(self.synthetic_range),
                "width_ranges": [list(r) for r in self.width_ranges], "depths": list(self.depths),
                "optimizers": list(self.optimizers), "regimes": self.regimes.to_dict()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base: TaskDistribution | None = None) -> TaskDistribution:
        """A distribution from a mapping of some of its fields; the others come from `base` (default: meta-train's).
        Unknown keys are named."""
        values = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                  for k, v in known_fields(cls, raw, "task distribution").items()}
        return replace(base or TASK_SPLITS["meta-train"].distribution, **values)


@dataclass(frozen=True)
class TaskSplit:
    """A named set of tasks: the distribution its MLPs come from, and env arguments it changes (the horizon).

    :param name: what `task_family` and the benchmark call it.
    :param distribution: where its MLPs' tasks come from.
    :param env_kwargs: GradInstructor-v0 arguments the split sets (``episode_length`` for the long horizon).
    :param held_out: what it holds out of meta-training, in words (empty for meta-train itself).
    """

    name: str
    distribution: TaskDistribution
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    held_out: str = ""


_TRAIN = TaskDistribution()
_TEST = replace(_TRAIN, synthetic_range=SYNTHETIC_TEST_RANGE)
TASK_SPLITS: dict[str, TaskSplit] = {s.name: s for s in (
    TaskSplit("meta-train", _TRAIN),
    TaskSplit("in-distribution", _TEST, held_out="nothing but the synthetic tasks (another block of K)"),
    TaskSplit("held-out-dataset", replace(_TEST, datasets=("fashion-mnist",)),
              held_out="the data set: Fashion-MNIST, never trained on"),
    TaskSplit("held-out-shapes", replace(_TEST, width_ranges=((8, 12), (320, 512)), depths=(1, 2, 3, 4)),
              held_out="the shapes: every hidden width 8-12 or 320-512 (training: 16-256), and 4 hidden layers"),
    TaskSplit("held-out-optimizer", replace(_TEST, optimizers=("schedule-free-adamw",),
                                            regimes=REGIME_DISTRIBUTIONS["schedule-free-adamw"]),
              held_out="the optimizer: Schedule-Free AdamW (training: SGD, momentum, Adam)"),
    TaskSplit("long-horizon", _TEST, env_kwargs={"episode_length": 40},
              held_out="the horizon: 40 env steps of 10 updates (training: 20)"),
)}
META_TEST_SPLITS = tuple(name for name in TASK_SPLITS if name != "meta-train")
HELD_OUT_SPLITS = tuple(name for name in META_TEST_SPLITS if name != "in-distribution")


def task_distribution(value: bool | str | Mapping[str, Any] | TaskDistribution) -> TaskDistribution:
    """A distribution from a split's name in `TASK_SPLITS` (True: ``meta-train``), a mapping of fields (over
    meta-train's) or itself."""
    if value is True:
        value = "meta-train"
    if isinstance(value, TaskDistribution):
        return value
    if isinstance(value, str):
        if value not in TASK_SPLITS:
            raise ValueError(f"task_family={value!r} is not known; expected one of {list(TASK_SPLITS)} or a mapping "
                             f"of {[f.name for f in fields(TaskDistribution)]}")
        return TASK_SPLITS[value].distribution
    if isinstance(value, Mapping):
        return TaskDistribution.from_dict(value)
    raise ValueError(f"task_family={BRIEF.repr(value)} is not allowed; expected False, True, a split's name of "
                     f"{list(TASK_SPLITS)}, a mapping of TaskDistribution's fields or a TaskDistribution")


def split_name(distribution: TaskDistribution) -> str | None:
    """The name of the split whose distribution this is, if one is (the first: in-distribution and long-horizon
    share theirs)."""
    return next((name for name, s in TASK_SPLITS.items() if s.distribution == distribution), None)
