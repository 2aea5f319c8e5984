"""Roll policies out on GradInstructor-v0 and collect per-step accuracy curves.

Two reference policies come with it: the zero action (exactly plain SGD) and uniform random
actions. Every agent is judged against both on MLPs from seeds it never trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

import gi_envs

Policy = Callable[[np.ndarray], np.ndarray]


def zero_policy(action_space: gym.spaces.Box) -> Policy:
    """The zero action at every step: the env then trains with plain minibatch SGD."""
    zero = np.zeros(action_space.shape, dtype=np.float32)
    return lambda obs: zero


def random_policy(action_space: gym.spaces.Box, seed: int) -> Policy:
    """Uniform random actions from a generator of its own, so runs repeat."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(action_space.low, action_space.high).astype(np.float32)


@dataclass
class RolloutCurves:
    """Per-episode curves: `val_accuracy[e, t]` after step t of episode e (column 0: at reset)."""

    val_accuracy: np.ndarray
    test_accuracy: np.ndarray  # (episodes,), at each episode's end
    returns: np.ndarray  # (episodes,)


def rollout_curves(
    env_kwargs: dict,
    make_policy: Callable[[gym.spaces.Box, int], Policy],
    seeds: Sequence[int],
) -> RolloutCurves:
    """Run one full episode per seed (env reset with that seed) and record its accuracy curve.

    :param env_kwargs: keyword arguments of GradInstructor-v0.
    :param make_policy: builds the policy from the action space and the episode's seed.
    :param seeds: one episode per seed; use seeds the policy never trained on.
    """
    env = gym.make(gi_envs.ENV_ID, **env_kwargs)
    length = env.unwrapped.config.episode_length + 1
    curves, tests, returns = [], [], []
    for seed in seeds:
        policy = make_policy(env.action_space, seed)
        obs, info = env.reset(seed=int(seed))
        curve, total, done = [info["val_accuracy"]], 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            curve.append(info["val_accuracy"])
            total += reward
            done = terminated or truncated
        curves.append(curve + [0.0] * (length - len(curve)))  # a diverged MLP counts as accuracy 0
        tests.append(info["test_accuracy"])
        returns.append(total)
    env.close()
    return RolloutCurves(np.array(curves), np.array(tests), np.array(returns))
