"""Judge a trained agent on MLPs it never trained, beside the reference policies (`agents.rl.references`)."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.rl.references import TUNING_EPISODES, reference_curves
from agents.rl.rollout import BatchPolicy, PolicyMaker, RolloutCurves, rollout_curves
from gi_envs.observation import flatten


def agent_policy(model: BaseAlgorithm) -> PolicyMaker:
    """A policy maker for `rollout_curves`: the agent's deterministic actions on a batch of MLPs, with each
    episode's LSTM state kept (a `Dict` observation flattened, as the agent trained on it)."""

    def make(space: gym.spaces.Box, seeds: Sequence[int]) -> BatchPolicy:
        state: list = [None, np.ones((len(seeds),), dtype=bool)]  # recurrent state, episode starts

        def act(obs: np.ndarray | dict, t: int) -> np.ndarray:
            flat = flatten(obs) if isinstance(obs, dict) else obs
            action, state[0] = model.predict(flat, state=state[0], episode_start=state[1], deterministic=True)
            state[1] = np.zeros((len(seeds),), dtype=bool)
            return action

        return act

    return make


def evaluate_against_references(
    model: BaseAlgorithm | None, env_kwargs: dict, seeds: list[int], agent_name: str = "agent",
    tuning_episodes: int = TUNING_EPISODES, oracle: bool = False, tune_on: str = "return",
) -> tuple[dict[str, RolloutCurves], dict[str, str]]:
    """Curves of the agent (if given) and of every reference policy on the same fresh MLPs (with `oracle`, the
    per-instance oracle too), and the settings the tuned references chose (`agents.rl.references`)."""
    results: dict[str, RolloutCurves] = {}
    if model is not None:
        results[agent_name] = rollout_curves(env_kwargs, agent_policy(model), seeds)
    references, settings = reference_curves(env_kwargs, seeds, tuning_episodes, oracle, tune_on)
    return {**results, **references}, settings


def summarize(curves: RolloutCurves) -> dict[str, float]:
    """Mean final validation and test accuracy and mean return of a set of episodes."""
    return {
        "final_val_accuracy": float(curves.final_val_accuracy.mean()),
        "final_test_accuracy": float(curves.test_accuracy.mean()),
        "episode_return": float(curves.returns.mean()),
    }
