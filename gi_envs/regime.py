"""How one MLP is trained (`Regime`), and where many regimes come from (`RegimeDistribution`).

A regime is everything a training run needs beyond the architecture (`MLPSpec`) and the seed: the
optimizer and its learning rate, the init scale, the weight decay, the share of the training split the
run sees and its batch size. The env's fixed regime, its randomized regimes, the zoo's runs, the guide's
rows and `inspect`'s fresh MLPs are all described by one `Regime` and trained by one core
(`gi_envs.training.Training`).

A `RegimeDistribution` draws regimes, each MLP's from its own seed (`RegimeDistribution.regime_of`), so
the env reset with a zoo run's seed and the zoo's distribution meets that run's regime. The env's
``randomize_regime=True`` draws from `REGIME_DISTRIBUTIONS["default"]` (plain SGD), the zoo from
``any-optimizer`` (the same, with SGD, momentum and Adam drawn too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from gi_envs.optimizers import OPTIMIZERS
from gi_envs.values import check_number

REGIME_STREAM = 7_919  # an MLP's regime draws from its own generator, seeded with (mlp_seed, REGIME_STREAM)
@dataclass(frozen=True)
class Regime:
    """How one MLP is trained.

    :param lr: the optimizer's learning rate (the zero action's, in the env).
    :param batch_size: samples per minibatch.
    :param init_scale: multiplies the initial weight matrices (the MLP's `init` draws them first).
    :param weight_decay: L2 weight decay (added to the gradient for ``sgd`` and ``momentum``, decoupled for
        ``adam``, as `torch.optim.SGD` and `torch.optim.AdamW` apply it).
    :param data_share: share of the training split the run sees (a subset drawn from its seed), in (0, 1].
    :param optimizer: ``sgd``, ``momentum`` or ``adam`` (see `OPTIMIZERS`).
    """

    lr: float = 0.05
    batch_size: int = 32
    init_scale: float = 1.0
    weight_decay: float = 0.0
    data_share: float = 1.0
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "lr", check_number("lr", self.lr, 0.0, 100.0))
        set_field(self, "batch_size", check_number("batch_size", self.batch_size, 1, 1_000_000, low_open=False,
                                               integer=True))
        set_field(self, "init_scale", check_number("init_scale", self.init_scale, 0.0, 100.0))
        set_field(self, "weight_decay", check_number("weight_decay", self.weight_decay, 0.0, 1.0, low_open=False))
        set_field(self, "data_share", check_number("data_share", self.data_share, 0.0, 1.0))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not allowed; expected one of {list(OPTIMIZERS)}")

    def subset_size(self, n_train: int) -> int:
        """How many training samples the run sees: its share of `n_train`, at least one batch."""
        return min(n_train, max(self.batch_size, round(self.data_share * n_train)))

    def steps_per_epoch(self, n_train: int) -> int:
        """Minibatches in one pass over the run's share of the training split (the last partial batch dropped)."""
        return self.subset_size(n_train) // self.batch_size

    def check_fits(self, n_train: int) -> None:
        """Raise a ValueError when a batch is larger than the training split of `n_train` samples."""
        if self.batch_size > n_train:
            raise ValueError(f"batch_size={self.batch_size} must lie in [1, {n_train}] (the training split's size)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Regime:
        """A regime from `to_dict`'s output (missing fields take their defaults); unknown keys are named."""
        return cls(**known_fields(cls, raw, "regime"))


@dataclass(frozen=True)
class RegimeDistribution:
    """Where regimes come from: each field drawn independently, from an MLP's own seed.

    :param lr_range: log-uniform learning rates for plain SGD; an optimizer draws this range times its
        `OptimizerKind.lr_scale`.
    :param init_scale_range: uniform init scales.
    :param weight_decay_range: log-uniform weight decays, for a `weight_decay_share` of the regimes (the
        others train without).
    :param weight_decay_share: share of regimes with weight decay, in [0, 1].
    :param data_share_range: uniform shares of the training split, in (0, 1].
    :param batch_sizes: drawn uniformly.
    :param optimizers: drawn uniformly (names of `OPTIMIZERS`).

    A range whose ends are equal fixes that field.
    """

    lr_range: tuple[float, float] = (0.005, 0.5)
    init_scale_range: tuple[float, float] = (0.25, 2.0)
    weight_decay_range: tuple[float, float] = (1e-5, 1e-2)
    weight_decay_share: float = 0.5
    data_share_range: tuple[float, float] = (0.1, 1.0)
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    optimizers: tuple[str, ...] = ("sgd",)

    def __post_init__(self) -> None:
        bounds = {"lr_range": (0.0, 100.0), "init_scale_range": (0.0, 100.0), "weight_decay_range": (0.0, 1.0),
                  "data_share_range": (0.0, 1.0)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            ok = isinstance(value, (tuple, list)) and len(value) == 2
            if ok:
                try:
                    pair = tuple(check_number(name, v, low, high) for v in value)
                except ValueError:
                    ok = False
                else:
                    ok = pair[0] <= pair[1]
            if not ok:
                raise ValueError(f"{name}={value!r} is not allowed; expected (low, high) with {low:g} < low <= high "
                                 f"<= {high:g}")
            object.__setattr__(self, name, pair)
        object.__setattr__(self, "weight_decay_share",
                           check_number("weight_decay_share", self.weight_decay_share, 0.0, 1.0, low_open=False))
        sizes = self.batch_sizes
        if (not isinstance(sizes, (tuple, list)) or not sizes or len(set(sizes)) != len(sizes)
                or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1 for b in sizes)):
            raise ValueError(f"batch_sizes={sizes!r} is not allowed; expected distinct positive integers")
        object.__setattr__(self, "batch_sizes", tuple(int(b) for b in sizes))
        names = self.optimizers
        if (not isinstance(names, (tuple, list)) or not names or len(set(names)) != len(names)
                or any(n not in OPTIMIZERS for n in names)):
            raise ValueError(f"optimizers={names!r} is not allowed; expected distinct names of {list(OPTIMIZERS)}")
        object.__setattr__(self, "optimizers", tuple(names))

    def sample(self, rng: np.random.Generator) -> Regime:
        """One regime, its fields drawn in a fixed order from `rng`."""

        def log_uniform(low: float, high: float) -> float:
            return float(np.exp(rng.uniform(math.log(low), math.log(high))))

        lr_factor = log_uniform(*self.lr_range)
        init_scale = float(rng.uniform(*self.init_scale_range))
        decayed = rng.random() < self.weight_decay_share
        weight_decay = log_uniform(*self.weight_decay_range)
        data_share = float(rng.uniform(*self.data_share_range))
        batch_size = int(self.batch_sizes[rng.integers(len(self.batch_sizes))])
        optimizer = self.optimizers[rng.integers(len(self.optimizers))]
        return Regime(lr=lr_factor * OPTIMIZERS[optimizer].lr_scale, batch_size=batch_size, init_scale=init_scale,
                      weight_decay=weight_decay if decayed else 0.0, data_share=data_share, optimizer=optimizer)

    def regime_of(self, mlp_seed: int) -> Regime:
        """The regime of the MLP drawn from `mlp_seed`: the same in the env and in the zoo."""
        return self.sample(np.random.default_rng([int(mlp_seed), REGIME_STREAM]))

    def widened(self, lr_factor: float) -> RegimeDistribution:
        """This distribution with its log learning-rate range `lr_factor` times as wide, about the same centre."""
        low, high = self.lr_range
        centre, half = math.log(low * high) / 2, lr_factor * math.log(high / low) / 2
        return replace(self, lr_range=(math.exp(centre - half), math.exp(centre + half)))

    def check_fits(self, n_train: int) -> None:
        """Raise a ValueError when a batch size of the distribution is larger than a training split of `n_train`."""
        too_large = [b for b in self.batch_sizes if b > n_train]
        if too_large:
            raise ValueError(f"batch_sizes={self.batch_sizes} holds {too_large}, larger than the training split "
                             f"({n_train} samples)")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base: RegimeDistribution | None = None) -> RegimeDistribution:
        """A distribution from a mapping of some of its fields; the others come from `base` (default: the
        default distribution). Unknown keys are named."""
        known = known_fields(cls, raw, "regime distribution")
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in known.items()}
        return replace(base or cls(), **known)


def known_fields(cls: type, raw: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`raw` as a dict, or a ValueError naming its unknown keys and the known ones."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a {what} must be a mapping of its fields, got {raw!r}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ValueError(f"unknown {what} field(s) {unknown}; expected some of {names}")
    return dict(raw)


DEFAULT_DISTRIBUTION = RegimeDistribution()
REGIME_DISTRIBUTIONS: dict[str, RegimeDistribution] = {
    # the env's randomize_regime=True; plain SGD
    "default": DEFAULT_DISTRIBUTION,
    # the zoo's: the same, with the optimizer drawn too (issue "an ENN for MLPs trained any way")
    "any-optimizer": replace(DEFAULT_DISTRIBUTION, optimizers=("sgd", "momentum", "adam")),
    # out of distribution for agents trained on the default: the log learning-rate range twice as wide
    "wide-lr": DEFAULT_DISTRIBUTION.widened(2.0),
    # Schedule-Free AdamW, the strongest competitor on randomized digits, as the base: its lr over 0.003 ... 0.3
    # (lr_range times its lr_scale 0.05), two decades about the 0.0316 one tuned Schedule-Free AdamW chooses
    # there, as SGD's range spans two decades about its tuned rate; the other fields as the default's
    "schedule-free-adamw": replace(DEFAULT_DISTRIBUTION, optimizers=("schedule-free-adamw",), lr_range=(0.06, 6.0)),
}


def regime_distribution(value: str | Mapping[str, Any] | RegimeDistribution) -> RegimeDistribution:
    """A distribution from its name in `REGIME_DISTRIBUTIONS`, a mapping of fields (over the default) or itself."""
    if isinstance(value, RegimeDistribution):
        return value
    if isinstance(value, str):
        if value not in REGIME_DISTRIBUTIONS:
            raise ValueError(f"regime distribution {value!r} is not known; expected one of "
                             f"{list(REGIME_DISTRIBUTIONS)} or a mapping of "
                             f"{[f.name for f in fields(RegimeDistribution)]}")
        return REGIME_DISTRIBUTIONS[value]
    if isinstance(value, Mapping):
        return RegimeDistribution.from_dict(value)
    raise ValueError(f"regime distribution {value!r} is not allowed; expected a name of {list(REGIME_DISTRIBUTIONS)}, "
                     "a mapping of its fields or a RegimeDistribution")


def distribution_name(distribution: RegimeDistribution) -> str | None:
    """The registry name of `distribution`, if it has one."""
    return next((name for name, d in REGIME_DISTRIBUTIONS.items() if d == distribution), None)

