"""Judge a trained agent on MLPs it never trained, beside the reference policies (`agents.rl.references`)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.rl.references import reference_curves
from agents.rl.rollout import Policy, RolloutCurves, rollout_curves


def agent_policy(model: BaseAlgorithm) -> Callable[[gym.spaces.Box, int], Policy]:
    """A policy maker for `rollout_curves`: deterministic actions, with LSTM state kept per episode."""

    def make(space: gym.spaces.Box, seed: int) -> Policy:
        state: list = [None, np.ones((1,), dtype=bool)]  # recurrent state, episode start

        def act(obs: np.ndarray) -> np.ndarray:
            action, state[0] = model.predict(obs, state=state[0], episode_start=state[1], deterministic=True)
            state[1] = np.zeros((1,), dtype=bool)
            return action

        return act

    return make


def evaluate_against_references(
    model: BaseAlgorithm | None, env_kwargs: dict, seeds: list[int], agent_name: str = "agent"
) -> tuple[dict[str, RolloutCurves], dict[str, str]]:
    """Curves of the agent (if given) and of every reference policy on the same fresh MLPs, and the
    settings the tuned references chose (`agents.rl.references`)."""
    results: dict[str, RolloutCurves] = {}
    if model is not None:
        results[agent_name] = rollout_curves(env_kwargs, agent_policy(model), seeds)
    references, settings = reference_curves(env_kwargs, seeds)
    return {**results, **references}, settings


def summarize(curves: RolloutCurves) -> dict[str, float]:
    """Mean final validation and test accuracy and mean return of a set of episodes."""
    return {
        "final_val_accuracy": float(curves.val_accuracy[:, -1].mean()),
        "final_test_accuracy": float(curves.test_accuracy.mean()),
        "episode_return": float(curves.returns.mean()),
    }
