"""Reference policies every agent is judged against: what a learned controller has to beat, and how far it could go.

- ``zero action (plain SGD)``: free, and exactly each MLP's plain optimizer in every action mode;
- ``random actions``: uniform in the action box;
- ``best constant``: one uniform action `a` at every step, chosen from a grid. In ``scale`` mode this
  is the plain optimizer at learning rate ``lr * max_scale ** a``: a tuned learning rate, the real bar;
- ``schedule``: a hand-written schedule of the uniform action, linear warm-up of the multiplier to a
  peak, then a cosine decay to a tenth of it, its peak and warm-up chosen from a grid;
- ``per-instance oracle`` (on request): each evaluation MLP run under every constant of the grid,
  keeping its own best final validation accuracy. It sees each MLP's outcome, so it is no policy: it
  bounds any controller that picks one learning rate per MLP and keeps it, and every table labels it
  an oracle.

The two tuned references pick their setting by the mean episode return (or, as a task asks, the mean
final validation accuracy) on their own tuning seeds (`agents.seeds.reference_tuning_seeds`), never
on the test split and never on the evaluation MLPs.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.rl.rollout import PolicyMaker, RolloutCurves, random_policy, rollout_curves, uniform_policy, zero_policy
from agents.seeds import reference_tuning_seeds
from gi_envs.regime import regime_distribution
from gi_envs.task import EnvConfig
from gi_envs.task_family import task_distribution

ZERO, RANDOM, BEST_CONSTANT, SCHEDULE, ORACLE = ("zero action (plain SGD)", "random actions", "best constant",
                                                 "schedule", "per-instance oracle")
REFERENCE_POLICIES = (ZERO, RANDOM, BEST_CONSTANT, SCHEDULE, ORACLE)
CONSTANT_GRID = tuple(float(a) for a in np.linspace(-1.0, 1.0, 9))  # multipliers 1/16 ... 16 at max_scale 16
WARMUP_GRID = (0.0, 0.2)  # share of the episode spent warming up
DECAY_TO = 0.1  # the schedule ends at this share of its peak multiplier
TUNING_EPISODES = 5
TUNING_MEASURES = ("return", "final_val_accuracy")


def zero_action_label(env_kwargs: dict) -> str:
    """How a table names the zero action of an env built from `env_kwargs`: `ZERO` where its MLPs train by
    plain SGD, else the optimizer they train by, so a reader of a Schedule-Free task is not told "plain SGD"."""
    family, randomize = env_kwargs.get("task_family"), env_kwargs.get("randomize_regime")
    if family or randomize and randomize is not True:  # drawn per MLP, from the family's or the distribution's
        optimizers = tuple((task_distribution(family) if family else regime_distribution(randomize)).optimizers)
        return ZERO if optimizers == ("sgd",) else f"zero action ({' or '.join(optimizers)} as drawn)"
    optimizer = "sgd" if randomize else env_kwargs.get("optimizer", "sgd")
    return ZERO if optimizer == "sgd" else f"zero action (plain {optimizer})"


@dataclass(frozen=True)
class Schedule:
    """The uniform action at env step t of an episode of `length` steps (see the module docstring)."""

    peak: float  # the peak action a, multiplier max_scale ** a
    warmup: float  # share of the episode
    max_scale: float
    length: int

    def action(self, t: int) -> float:
        warm = max(1, round(self.warmup * self.length)) if self.warmup > 0 else 0
        peak = self.max_scale ** self.peak
        if t < warm:
            multiplier = peak * (t + 1) / warm
        else:
            progress = (t - warm) / max(1, self.length - warm - 1)
            multiplier = peak * (DECAY_TO + (1 - DECAY_TO) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        return float(np.clip(math.log(multiplier) / math.log(self.max_scale), -1.0, 1.0))

    def __str__(self) -> str:
        return f"peak a={self.peak:+.2f} (x{self.max_scale ** self.peak:.3g}), warm-up {self.warmup:.0%}"


def constant_policy(value: float) -> PolicyMaker:
    """The uniform action `value` at every step."""
    return uniform_policy(lambda t: value)


def schedule_policy(schedule: Schedule) -> PolicyMaker:
    """The uniform action `schedule.action(t)` at step t of each episode."""
    return uniform_policy(schedule.action)


@dataclass(frozen=True)
class TunedReferences:
    """The settings the tuned references chose, and the tuning measure of every candidate."""

    constant: float
    schedule: Schedule
    constant_returns: dict[float, float]
    schedule_returns: dict[str, float]

    def describe(self, max_scale: float) -> dict[str, str]:
        return {BEST_CONSTANT: f"a={self.constant:+.2f} (x{max_scale ** self.constant:.3g})",
                SCHEDULE: str(self.schedule)}


def tune_references(env_kwargs: dict, episodes: int = TUNING_EPISODES, measure: str = "return") -> TunedReferences:
    """Choose the best constant and the best schedule on `episodes` tuning seeds by the mean of `measure`
    (``return`` or ``final_val_accuracy``); cached per env arguments."""
    if measure not in TUNING_MEASURES:
        raise ValueError(f"measure={measure!r} is not known; expected one of {list(TUNING_MEASURES)}")
    return _tune(json.dumps(env_kwargs, sort_keys=True, default=str), episodes, measure)


@functools.lru_cache(maxsize=16)
def _tune(env_kwargs_json: str, episodes: int, measure: str) -> TunedReferences:
    env_kwargs = json.loads(env_kwargs_json)
    config = EnvConfig.from_kwargs(**env_kwargs)
    seeds = reference_tuning_seeds(episodes)

    def mean_return(maker: PolicyMaker) -> float:
        return tuning_measure(rollout_curves(env_kwargs, maker, seeds), measure)

    constant, constant_returns = best_constant(env_kwargs, seeds, measure)
    schedules = [Schedule(peak, warmup, config.max_scale, config.episode_length)
                 for peak in CONSTANT_GRID for warmup in WARMUP_GRID]
    schedule_returns = {s: mean_return(schedule_policy(s)) for s in schedules}
    best_schedule = max(schedule_returns, key=schedule_returns.get)
    return TunedReferences(constant, best_schedule, constant_returns,
                           {str(s): r for s, r in schedule_returns.items()})


def tuning_measure(curves: RolloutCurves, measure: str) -> float:
    """The mean over MLPs of `measure` (`TUNING_MEASURES`): the episode return or the final validation accuracy."""
    return float((curves.returns if measure == "return" else curves.final_val_accuracy).mean())


def best_constant(env_kwargs: dict, seeds: Sequence[int], measure: str = "final_val_accuracy"
                  ) -> tuple[float, dict[float, float]]:
    """The constant of `CONSTANT_GRID` with the best mean `measure` on the MLPs of `seeds` (default the final
    validation accuracy, what the benchmarks of other splits and shapes tune), and every constant's mean."""
    means = {a: tuning_measure(rollout_curves(env_kwargs, constant_policy(a), list(seeds)), measure)
             for a in CONSTANT_GRID}
    return max(means, key=means.get), means


def per_instance_oracle(constant_runs: dict[float, RolloutCurves]) -> tuple[RolloutCurves, np.ndarray]:
    """The oracle's curves from every constant's run on the same MLPs: each MLP keeps the constant with its
    best final validation accuracy. :return: the curves and each MLP's chosen constant."""
    grid = sorted(constant_runs)
    finals = np.stack([constant_runs[a].final_val_accuracy for a in grid])  # (constants, episodes)
    best = finals.argmax(axis=0)
    episodes = np.arange(finals.shape[1])

    def pick(field: str) -> np.ndarray:
        return np.stack([getattr(constant_runs[a], field) for a in grid])[best, episodes]

    return RolloutCurves(pick("val_accuracy"), pick("test_accuracy"), pick("returns")), np.array(grid)[best]


def reference_curves(env_kwargs: dict, seeds: Sequence[int], tuning_episodes: int = TUNING_EPISODES,
                     oracle: bool = False, tune_on: str = "return") -> tuple[dict[str, RolloutCurves], dict[str, str]]:
    """Every reference policy on the MLPs of `seeds` (with `oracle`, the per-instance oracle on the same MLPs
    too), and the settings the tuned ones chose (on `tune_on`)."""
    tuned = tune_references(env_kwargs, tuning_episodes, tune_on)
    seeds = list(seeds)
    curves = {ZERO: rollout_curves(env_kwargs, zero_policy, seeds),
              RANDOM: rollout_curves(env_kwargs, random_policy, seeds)}
    if oracle:
        constant_runs = {a: rollout_curves(env_kwargs, constant_policy(a), seeds) for a in CONSTANT_GRID}
        curves[BEST_CONSTANT] = constant_runs[tuned.constant]
    else:
        curves[BEST_CONSTANT] = rollout_curves(env_kwargs, constant_policy(tuned.constant), seeds)
    curves[SCHEDULE] = rollout_curves(env_kwargs, schedule_policy(tuned.schedule), seeds)
    settings = tuned.describe(EnvConfig.from_kwargs(**env_kwargs).max_scale)
    if oracle:
        curves[ORACLE], chosen = per_instance_oracle(constant_runs)
        settings[ORACLE] = (f"each MLP's best of {len(CONSTANT_GRID)} constants (sees the outcome; chosen a: mean "
                            f"{chosen.mean():+.2f}, std {chosen.std():.2f})")
    return curves, settings
