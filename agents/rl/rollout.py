"""Roll policies out on GradInstructor-v0, many MLPs at once, and collect per-step accuracy curves.

Every episode is one sub-env of the native vector env, reset with its own seed: sub-env i behaves
exactly as a single env reset with that seed (the vector env's tests say so), and training many
MLPs together is several times faster than one after another. A policy sees the batch of
observations and the step index and returns a batch of actions.

Two reference policies come with it: the zero action (exactly the plain optimizer) and uniform
random actions. Every agent is judged against both on MLPs from seeds it never trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gi_envs import ENV_ID

BatchPolicy = Callable[[np.ndarray | dict, int], np.ndarray]  # (observations, env step) -> actions (N, A)
PolicyMaker = Callable[[gym.spaces.Box, Sequence[int]], BatchPolicy]  # (one env's action space, seeds) -> policy
ROLLOUT_CHUNK = 64  # episodes per vector env: bounds memory on MNIST


def zero_policy(action_space: gym.spaces.Box, seeds: Sequence[int]) -> BatchPolicy:
    """The zero action at every step: the env then trains with each MLP's plain optimizer."""
    zero = np.zeros((len(seeds), *action_space.shape), dtype=np.float32)
    return lambda obs, t: zero


def random_policy(action_space: gym.spaces.Box, seeds: Sequence[int]) -> BatchPolicy:
    """Uniform random actions, each episode from a generator seeded with its own seed, so runs repeat."""
    generators = [np.random.default_rng(seed) for seed in seeds]

    def act(obs: np.ndarray | dict, t: int) -> np.ndarray:
        return np.stack([rng.uniform(action_space.low, action_space.high) for rng in generators]).astype(np.float32)

    return act


def uniform_policy(value_at: Callable[[int], float]) -> PolicyMaker:
    """The same action value in every cell at step t: `value_at(t)`."""

    def make(action_space: gym.spaces.Box, seeds: Sequence[int]) -> BatchPolicy:
        return lambda obs, t: np.full((len(seeds), *action_space.shape), value_at(t), dtype=np.float32)

    return make


@dataclass
class RolloutCurves:
    """Per-episode curves: `val_accuracy[e, t]` after step t of episode e (column 0: at reset)."""

    val_accuracy: np.ndarray
    test_accuracy: np.ndarray  # (episodes,), at each episode's end
    returns: np.ndarray  # (episodes,)

    @property
    def final_val_accuracy(self) -> np.ndarray:
        """(episodes,) the validation accuracy each episode ends with (0 for a diverged MLP)."""
        return self.val_accuracy[:, -1]

    @classmethod
    def concatenate(cls, parts: Sequence[RolloutCurves]) -> RolloutCurves:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("val_accuracy", "test_accuracy",
                                                                                "returns")))


def rollout_curves(env_kwargs: dict, make_policy: PolicyMaker, seeds: Sequence[int],
                   chunk: int = ROLLOUT_CHUNK) -> RolloutCurves:
    """Run one full episode per seed (its sub-env reset with that seed) and record its accuracy curve.

    :param env_kwargs: keyword arguments of GradInstructor-v0.
    :param make_policy: builds the policy from one env's action space and the episodes' seeds.
    :param seeds: one episode per seed; use seeds the policy never trained on.
    """
    parts = [_rollout_chunk(env_kwargs, make_policy, list(seeds[i : i + chunk]))
             for i in range(0, len(seeds), chunk)]
    return RolloutCurves.concatenate(parts)


def _rollout_chunk(env_kwargs: dict, make_policy: PolicyMaker, seeds: list[int]) -> RolloutCurves:
    n = len(seeds)
    envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.NEXT_STEP, **env_kwargs)
    policy = make_policy(envs.single_action_space, seeds)
    obs, info = envs.reset(seed=[int(s) for s in seeds])
    curves, returns = [info["val_accuracy"].astype(np.float64)], np.zeros(n)
    test_accuracy, alive = np.zeros(n), np.ones(n, dtype=bool)
    for t in range(envs.unwrapped.config.episode_length):
        obs, reward, terminated, truncated, info = envs.step(policy(obs, t))
        curves.append(np.where(alive, info["val_accuracy"], 0.0))  # a diverged MLP counts as accuracy 0 after
        returns += np.where(alive, reward, 0.0)
        ended = alive & (terminated | truncated)
        if ended.any():
            test_accuracy[ended] = info["test_accuracy"][ended]
        alive &= ~ended
    envs.close()
    return RolloutCurves(np.stack(curves, axis=1), test_accuracy, returns)
