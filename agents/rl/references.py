"""Reference policies every agent is judged against: what a learned controller has to beat.

- ``zero action (plain SGD)``: free, and exactly plain SGD in every action mode;
- ``random actions``: uniform in the action box;
- ``best constant``: one uniform action `a` at every step, chosen from a grid. In ``scale`` mode this
  is plain SGD at learning rate ``lr * max_scale ** a``: a tuned learning rate, the real bar;
- ``schedule``: a hand-written schedule of the uniform action, linear warm-up of the multiplier to a
  peak, then a cosine decay to a tenth of it, its peak and warm-up chosen from a grid.

The two tuned references pick their setting by the mean episode return (the summed validation
accuracy the agents maximise) on their own tuning seeds (`agents.seeds.reference_tuning_seeds`),
never on the test split and never on the evaluation MLPs.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agents.rl.rollout import Policy, RolloutCurves, random_policy, rollout_curves, zero_policy
from agents.seeds import reference_tuning_seeds
from gi_envs.task import EnvConfig

ZERO, RANDOM, BEST_CONSTANT, SCHEDULE = ("zero action (plain SGD)", "random actions", "best constant", "schedule")
REFERENCE_POLICIES = (ZERO, RANDOM, BEST_CONSTANT, SCHEDULE)
CONSTANT_GRID = tuple(float(a) for a in np.linspace(-1.0, 1.0, 9))  # multipliers 1/16 ... 16 at max_scale 16
WARMUP_GRID = (0.0, 0.2)  # share of the episode spent warming up
DECAY_TO = 0.1  # the schedule ends at this share of its peak multiplier
TUNING_EPISODES = 5

PolicyMaker = Callable[[gym.spaces.Box, int], Policy]


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

    def make(space: gym.spaces.Box, seed: int) -> Policy:
        action = np.full(space.shape, value, dtype=np.float32)
        return lambda obs: action

    return make


def schedule_policy(schedule: Schedule) -> PolicyMaker:
    """The uniform action `schedule.action(t)` at step t of each episode."""

    def make(space: gym.spaces.Box, seed: int) -> Policy:
        step = [0]

        def act(obs: np.ndarray) -> np.ndarray:
            value = schedule.action(step[0])
            step[0] += 1
            return np.full(space.shape, value, dtype=np.float32)

        return act

    return make


@dataclass(frozen=True)
class TunedReferences:
    """The settings the tuned references chose, and the tuning return of every candidate."""

    constant: float
    schedule: Schedule
    constant_returns: dict[float, float]
    schedule_returns: dict[str, float]

    def describe(self, max_scale: float) -> dict[str, str]:
        return {BEST_CONSTANT: f"a={self.constant:+.2f} (x{max_scale ** self.constant:.3g})",
                SCHEDULE: str(self.schedule)}


def tune_references(env_kwargs: dict) -> TunedReferences:
    """Choose the best constant and the best schedule on the tuning seeds (cached per env arguments)."""
    return _tune(json.dumps(env_kwargs, sort_keys=True, default=str))


@functools.lru_cache(maxsize=16)
def _tune(env_kwargs_json: str) -> TunedReferences:
    env_kwargs = json.loads(env_kwargs_json)
    config = EnvConfig.from_kwargs(**env_kwargs)
    seeds = reference_tuning_seeds(TUNING_EPISODES)

    def mean_return(maker: PolicyMaker) -> float:
        return float(rollout_curves(env_kwargs, maker, seeds).returns.mean())

    constant_returns = {a: mean_return(constant_policy(a)) for a in CONSTANT_GRID}
    schedules = [Schedule(peak, warmup, config.max_scale, config.episode_length)
                 for peak in CONSTANT_GRID for warmup in WARMUP_GRID]
    schedule_returns = {s: mean_return(schedule_policy(s)) for s in schedules}
    best_schedule = max(schedule_returns, key=schedule_returns.get)
    return TunedReferences(max(constant_returns, key=constant_returns.get), best_schedule, constant_returns,
                           {str(s): r for s, r in schedule_returns.items()})


def reference_curves(env_kwargs: dict, seeds: list[int]) -> tuple[dict[str, RolloutCurves], dict[str, str]]:
    """Every reference policy on the MLPs of `seeds`, and the settings the tuned ones chose."""
    tuned = tune_references(env_kwargs)
    makers: dict[str, PolicyMaker] = {
        ZERO: lambda space, seed: zero_policy(space),
        RANDOM: random_policy,
        BEST_CONSTANT: constant_policy(tuned.constant),
        SCHEDULE: schedule_policy(tuned.schedule),
    }
    curves = {name: rollout_curves(env_kwargs, maker, seeds) for name, maker in makers.items()}
    return curves, tuned.describe(EnvConfig.from_kwargs(**env_kwargs).max_scale)
