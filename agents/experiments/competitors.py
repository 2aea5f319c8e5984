"""What a user would pick instead of an agent: other optimizers, run on exactly the MLPs the agents are judged on.

A competitor trains one env episode's MLP with its own optimizer in place of the env's: the same initial
weights, data share, batch size, weight decay, minibatch order and number of updates as that MLP's episode
(`GradInstructorEnv.reset(seed=s)` draws them; the MLP is copied into an `nn.Sequential`, and each update
takes the episode's next minibatch from the env's own sampler), and it is scored as the env scores: the
validation accuracy on the env's evaluation samples after every env step, the test accuracy at the end,
a diverged MLP counting 0. With `torch.optim.SGD` at the MLP's own learning rate this path reproduces the
zero action's curves (a test checks it), so every difference in a table is the optimizer's.

Each competitor is one `Competitor` in `COMPETITORS` (or `register_competitor` from your code): how to build
its trainer for a `nn.Sequential` from the MLP's regime and the competitor's knob, the knob's default and
tuning grid, and the package it needs (checked before any work, with the install command). A tuned one
chooses its knob on the reference-tuning MLPs (`agents.seeds.reference_tuning_seeds`, never the evaluation
MLPs or the test split) by mean final validation accuracy, the tables' measure; a grid whose best value
lies at an end is extended past it (`GRID_EXTENSIONS` times), and the choice says when it still is.

The libraries' optimizers run as shipped (`prodigyopt`, `dadaptation`, `schedulefree`, `rmsgd`, `lfprop`);
Prodigy and D-Adaptation reduce over every parameter of a group, so each MLP runs alone.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.errors import MissingDependency
from agents.experiments.baselines import LFPTrainer, RMSGDTrainer
from agents.rl.rollout import RolloutCurves
from agents.seeds import reference_tuning_seeds
from gi_envs.grad_instructor_env import GradInstructorEnv
from gi_envs.regime import Regime

EXTRA = "competitors"
GRID_EXTENSIONS = 2  # how often a tuned competitor's grid is extended past the end its best value lies at
GRID_STEP = 10 ** 0.5  # neighbouring grid values differ by this factor (a half decade)


class Trainer:
    """Trains one `nn.Sequential` MLP, one call per minibatch: a `torch.optim.Optimizer` on cross-entropy, with
    the hooks some optimizers need (Schedule-Free's ``train()`` / ``eval()``, RMSGD's ``epoch_step()``)."""

    def __init__(self, model: nn.Sequential, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(x), y).backward()
        self.optimizer.step()

    def end_epoch(self) -> None:
        pass

    def evaluating(self) -> None:
        """Before the MLP is scored (Schedule-Free evaluates at its averaged weights)."""
        if hasattr(self.optimizer, "eval"):
            self.optimizer.eval()

    def training(self) -> None:
        """After it is scored, before the next minibatch."""
        if hasattr(self.optimizer, "train"):
            self.optimizer.train()


class SequentialTrainerAdapter(Trainer):
    """A literature trainer of `agents.experiments.baselines` (RMSGD, LFP) under the `Trainer` hooks."""

    def __init__(self, trainer):
        self.trainer = trainer

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.trainer.step(x, y)

    def end_epoch(self) -> None:
        self.trainer.end_epoch()

    def evaluating(self) -> None:
        pass

    def training(self) -> None:
        pass


TrainerMaker = Callable[[nn.Sequential, Regime, float], Trainer]  # (model, the MLP's regime, knob) -> trainer


@dataclass(frozen=True)
class Competitor:
    """One row of competitors.

    :param name: the row's label.
    :param make: its trainer for a model, from the MLP's regime (weight decay, SGD learning rate) and the knob.
    :param knob: what the knob is (``lr``, ``lr multiplier``), for the tables.
    :param default: the knob's value untuned (the library's default where it says none is needed).
    :param grid: values tuned over (log-spaced); empty: the row runs at `default`, untuned.
    :param package: the module it imports, checked before any work; None: torch alone.
    :param pip: what installs it.
    :param warmups: shares of the episode's updates spent warming up, tuned beside the knob (Schedule-Free's
        second knob); `make` then takes the warm-up, in updates, as a fourth argument.
    """

    name: str
    make: TrainerMaker
    knob: str
    default: float
    grid: tuple[float, ...] = ()
    package: str | None = None
    pip: str = f"pip install -e '.[{EXTRA}]'"
    warmups: tuple[float, ...] = ()

    @property
    def tuned(self) -> bool:
        return bool(self.grid)

    @property
    def key(self) -> str:
        """The name as a command line and a folder take it: ``AdamW, lr tuned`` -> ``adamw-lr-tuned``."""
        return competitor_key(self.name)

    def check(self) -> None:
        """Import its package now, or a `MissingDependency` naming it and the install command."""
        if self.package is None:
            return
        try:
            importlib.import_module(self.package)
        except ImportError as error:
            raise MissingDependency(f"competitor {self.name!r} needs the {self.package!r} package ({error}); "
                                    f"install it: {self.pip}") from None


def _optimizer(build: Callable[..., torch.optim.Optimizer]) -> TrainerMaker:
    """A maker from (parameters, regime, knob[, warm-up updates]) -> a `torch.optim.Optimizer`."""

    def make(model: nn.Sequential, regime: Regime, knob: float, *warmup: int) -> Trainer:
        return Trainer(model, build(model.parameters(), regime, knob, *warmup))

    return make


def _import(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _log_grid(low: float, high: float) -> tuple[float, ...]:
    """Half-decade steps from `low` to `high` (both included)."""
    n = round(math.log(high / low) / math.log(GRID_STEP))
    return tuple(float(f"{low * GRID_STEP ** k:.3g}") for k in range(n + 1))


ADAM_LRS = _log_grid(1e-4, 1e-1)
MULTIPLIERS = _log_grid(0.01, 10.0)  # of a learning-rate-free optimizer's lr (1 is its default)
SGD_MULTIPLIERS = _log_grid(0.1, 10.0)  # of the MLP's own SGD learning rate
SCHEDULE_FREE_WARMUPS = (0.0, 0.05, 0.2)  # shares of the updates (the library's default is none)

# the learning-rate-free optimizers: (row name, trainer, package); each runs at its default and tuned
LR_FREE = (
    ("Prodigy", _optimizer(lambda p, r, k: _import("prodigyopt", "Prodigy")(p, lr=k, weight_decay=r.weight_decay)),
     "prodigyopt"),
    ("D-Adaptation Adam", _optimizer(lambda p, r, k: _import("dadaptation", "DAdaptAdam")(
        p, lr=k, weight_decay=r.weight_decay, decouple=True)), "dadaptation"),
    ("D-Adaptation SGD", _optimizer(lambda p, r, k: _import("dadaptation", "DAdaptSGD")(
        p, lr=k, weight_decay=r.weight_decay)), "dadaptation"),
)

COMPETITORS: dict[str, Competitor] = {}


def register_competitor(competitor: Competitor) -> Competitor:
    """Add `competitor` to `COMPETITORS` (replacing one of the same name): the competitor tables then run it."""
    COMPETITORS[competitor.name] = competitor
    return competitor


for _competitor in (
    Competitor("SGD, lr multiplier tuned",
               _optimizer(lambda p, r, k: torch.optim.SGD(p, lr=r.lr * k, weight_decay=r.weight_decay)),
               "multiplier of the MLP's lr", 1.0, SGD_MULTIPLIERS),
    Competitor("AdamW, lr tuned",
               _optimizer(lambda p, r, k: torch.optim.AdamW(p, lr=k, weight_decay=r.weight_decay)), "lr", 1e-3,
               ADAM_LRS),
    Competitor("Schedule-Free AdamW, lr and warm-up tuned",
               _optimizer(lambda p, r, k, w: _import("schedulefree", "AdamWScheduleFree")(
                   p, lr=k, weight_decay=r.weight_decay, warmup_steps=w)), "lr", 2.5e-3, ADAM_LRS, "schedulefree",
               warmups=SCHEDULE_FREE_WARMUPS),
    Competitor("Schedule-Free SGD, lr multiplier and warm-up tuned",
               _optimizer(lambda p, r, k, w: _import("schedulefree", "SGDScheduleFree")(
                   p, lr=r.lr * k, weight_decay=r.weight_decay, warmup_steps=w)), "multiplier of the MLP's lr", 1.0,
               SGD_MULTIPLIERS, "schedulefree", warmups=SCHEDULE_FREE_WARMUPS),
    *(Competitor(f"{name}, {variant}", make, "lr", 1.0, grid, package)  # each at its default and tuned
      for name, make, package in LR_FREE for variant, grid in (("default (lr 1)", ()), ("lr tuned", MULTIPLIERS))),
    Competitor("RMSGD, lr multiplier tuned",
               lambda m, r, k: SequentialTrainerAdapter(RMSGDTrainer(m, r.lr * k)), "multiplier of the MLP's lr",
               1.0, SGD_MULTIPLIERS, "rmsgd", "pip install -e '.[baselines]'"),
    # LFP's steps scale with |w|: its grid reaches far above SGD's rates (the guide's finding)
    Competitor("LFP, lr multiplier tuned", lambda m, r, k: SequentialTrainerAdapter(LFPTrainer(m, r.lr * k)),
               "multiplier of the MLP's lr", 10.0, _log_grid(1.0, 1000.0), "lfprop", "pip install -e '.[baselines]'"),
):
    register_competitor(_competitor)


def competitor_key(name: str) -> str:
    """`name` lower-cased, every run of other characters than letters and digits one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def competitor_named(name: str) -> Competitor:
    """The entry of `COMPETITORS` called `name` or keyed `name` (``adamw-lr-tuned``; case-insensitive), or a
    ValueError naming the known ones."""
    if name in COMPETITORS:
        return COMPETITORS[name]
    by_key = {c.key: c for c in COMPETITORS.values()}
    if competitor_key(name) in by_key:
        return by_key[competitor_key(name)]
    raise ValueError(f"competitor {name!r} is not known; expected one of {sorted(by_key)} (or their row names)")


@torch.no_grad()
def _score(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[float, bool]:
    """Accuracy of `model` on (x, y), and whether its loss is finite (a diverged MLP scores 0)."""
    logits = model(x)
    finite = bool(torch.isfinite(F.cross_entropy(logits, y)))
    return (float((logits.argmax(1) == y).float().mean()) if finite else 0.0), finite


Episode = tuple[np.ndarray, float, float]  # validation accuracy at reset and after each step, test accuracy, return


def competitor_run(env: GradInstructorEnv, seed: int, make: TrainerMaker, knob: float,
                   warmup: float | None = None) -> Episode:
    """One episode's MLP (the env reset with `seed`) trained by `make`'s trainer on exactly its minibatches.

    :param warmup: for a competitor with `Competitor.warmups`: the share of the episode's updates to warm up.

    :return: validation accuracy at reset and after every env step, the test accuracy at the end, the return.
    """
    env.reset(seed=int(seed))
    task = env.task.member(0)  # under a task_family, the MLP's own task
    config = task.config
    regime, train, sampler = task.regime(0), task.data.train, task.training.sampler
    model = task.mlp.to_sequential(0)
    if warmup is None:
        trainer = make(model, regime, knob)
    else:
        trainer = make(model, regime, knob, round(warmup * config.episode_length * config.steps_per_action))
    updates_per_epoch = regime.steps_per_epoch(len(train))
    curve = [float(task.last_val_accuracy[0])]
    returns, alive, updates = 0.0, True, 0
    for _ in range(config.episode_length):
        if alive:
            trainer.training()
            for _ in range(config.steps_per_action):
                idx = sampler.next_indices()[0, : regime.batch_size]
                trainer.step(train.x[idx], train.y[idx])
                updates += 1
                if updates % updates_per_epoch == 0:
                    trainer.end_epoch()
            trainer.evaluating()
            accuracy, alive = _score(model, task.eval_x, task.eval_y)
        else:
            accuracy = 0.0
        returns += accuracy - curve[-1] if config.reward == "delta" else accuracy
        curve.append(accuracy)
    test_accuracy = _score(model, task.data.test.x, task.data.test.y)[0] if alive else 0.0
    return np.array(curve), test_accuracy, returns


def competitor_curves(env_kwargs: dict, make: TrainerMaker, knob: float, seeds: Sequence[int],
                      warmup: float | None = None) -> tuple[RolloutCurves, float]:
    """`competitor_run` on every seed, as the rollouts' curves; and the wall time per MLP (seconds)."""
    env = GradInstructorEnv(**env_kwargs)
    start = time.perf_counter()
    runs = [competitor_run(env, s, make, knob, warmup) for s in seeds]
    seconds = (time.perf_counter() - start) / max(1, len(runs))
    curves = RolloutCurves(np.stack([r[0] for r in runs]), np.array([r[1] for r in runs]),
                           np.array([r[2] for r in runs]))
    return curves, seconds


@dataclass(frozen=True)
class TunedKnob:
    """A tuned competitor's choice: its knob (and warm-up share, for one with `Competitor.warmups`), the mean final
    validation accuracy of every value tried (at the chosen warm-up), how many settings were tried in all, and
    whether the best knob still lies at an end of the (extended) grid."""

    value: float
    tried: dict[float, float] = field(default_factory=dict)
    at_edge: bool = False
    warmup: float | None = None
    settings_tried: int = 0

    def describe(self, competitor: Competitor) -> str:
        if not competitor.tuned:
            return f"{competitor.knob} {competitor.default:g} (untuned)"
        edge = "; at the edge of its grid" if self.at_edge else ""
        warmup = "" if self.warmup is None else f", warm-up {100 * self.warmup:g} % of the updates"
        return (f"{competitor.knob} {self.value:g}{warmup}, of {self.settings_tried or len(self.tried)} tried on the "
                f"tuning MLPs{edge}")


def tune_competitor(env_kwargs: dict, competitor: Competitor, episodes: int) -> TunedKnob:
    """The knob (and warm-up) of `competitor` with the best mean final validation accuracy on `episodes`
    reference-tuning MLPs (cached per env, competitor and count); its default when it is untuned."""
    if not competitor.tuned:
        return TunedKnob(competitor.default)
    return _tune(json.dumps(env_kwargs, sort_keys=True, default=str), competitor.name, episodes)


@functools.lru_cache(maxsize=64)
def _tune(env_kwargs_json: str, name: str, episodes: int) -> TunedKnob:
    env_kwargs, competitor = json.loads(env_kwargs_json), COMPETITORS[name]
    choices = [_tune_knob(env_kwargs, competitor, episodes, warmup) for warmup in competitor.warmups or (None,)]
    best = max(choices, key=lambda choice: choice.tried[choice.value])
    return TunedKnob(best.value, best.tried, best.at_edge, best.warmup, sum(len(c.tried) for c in choices))


def _tune_knob(env_kwargs: dict, competitor: Competitor, episodes: int, warmup: float | None) -> TunedKnob:
    """The knob at one warm-up: its grid, extended past the end its best value lies at."""
    seeds = reference_tuning_seeds(episodes)
    grid = sorted(competitor.grid)
    tried: dict[float, float] = {}
    for _ in range(GRID_EXTENSIONS + 1):
        for value in grid:
            if value not in tried:
                curves, _ = competitor_curves(env_kwargs, competitor.make, value, seeds, warmup)
                tried[value] = float(curves.final_val_accuracy.mean())
        best = max(tried, key=tried.get)
        values = sorted(tried)
        if best == values[0]:
            grid = [float(f"{values[0] / GRID_STEP:.3g}")]
        elif best == values[-1]:
            grid = [float(f"{values[-1] * GRID_STEP:.3g}")]
        else:
            return TunedKnob(best, tried, warmup=warmup)
    best = max(tried, key=tried.get)
    return TunedKnob(best, tried, at_edge=best in (min(tried), max(tried)), warmup=warmup)


def check_competitors(names: Sequence[str]) -> list[Competitor]:
    """The competitors named, each package imported now (before any work), or one error naming what is missing."""
    competitors = [competitor_named(n) for n in names]
    for competitor in competitors:
        competitor.check()
    return competitors
