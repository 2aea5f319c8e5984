"""Judge a trained agent on MLPs it never trained, beside the reference policies (`agents.rl.references`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.rl.references import BEST_CONSTANT, TUNING_EPISODES, reference_curves
from agents.rl.rollout import BatchPolicy, PolicyMaker, RolloutCurves, rollout_curves
from gi_envs.observation import flatten
from gi_envs.task import EnvConfig


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


def updates_to_target(curves: RolloutCurves, target: np.ndarray, steps_per_action: int) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Per MLP, the updates until its validation accuracy (after an env step) first reaches `target`, that MLP's
    own target (AlgoPerf's time to target, in updates); and whether it ever does. An MLP that never reaches it
    counts one env step past the episode (a censored time)."""
    reached = curves.val_accuracy[:, 1:] >= np.asarray(target)[:, None]
    steps = np.where(reached.any(1), reached.argmax(1) + 1, reached.shape[1] + 1)
    return steps * steps_per_action, reached.any(1)


def summarize(curves: RolloutCurves, target: np.ndarray | None = None, steps_per_action: int = 1) -> dict[str, float]:
    """Mean final validation and test accuracy and mean return of a set of episodes; with per-MLP `target`
    accuracies, the mean updates to reach them and the share of MLPs that do (`updates_to_target`)."""
    summary = {
        "final_val_accuracy": float(curves.final_val_accuracy.mean()),
        "final_test_accuracy": float(curves.test_accuracy.mean()),
        "episode_return": float(curves.returns.mean()),
    }
    if target is not None:
        updates, reached = updates_to_target(curves, target, steps_per_action)
        summary.update(updates_to_target=float(updates.mean()), target_reached=float(reached.mean()))
    return summary


class Evaluation(NamedTuple):
    """Curves of the agent and the references on the same MLPs, the tuned references' settings, the agent's
    evaluation wall time per MLP (its MLPs trained together in a vector env; NaN without an agent), and the env's
    updates per step."""

    curves: dict[str, RolloutCurves]
    settings: dict[str, str]
    agent_seconds_per_mlp: float
    steps_per_action: int

    @property
    def target(self) -> np.ndarray | None:
        """Each MLP's target accuracy: the best constant's final validation accuracy on it (the tuned base)."""
        return self.curves[BEST_CONSTANT].final_val_accuracy if BEST_CONSTANT in self.curves else None

    def summaries(self) -> dict[str, dict[str, float]]:
        """`summarize` of every policy, with the updates each needs to reach the best constant's accuracy."""
        return {name: summarize(c, self.target, self.steps_per_action) for name, c in self.curves.items()}


def evaluate_against_references(
    model: BaseAlgorithm | None, env_kwargs: dict, seeds: list[int], agent_name: str = "agent",
    tuning_episodes: int = TUNING_EPISODES, oracle: bool = False, tune_on: str = "return",
) -> Evaluation:
    """Curves of the agent (if given) and of every reference policy on the same fresh MLPs (with `oracle`, the
    per-instance oracle too), and the settings the tuned references chose (`agents.rl.references`)."""
    results: dict[str, RolloutCurves] = {}
    seconds = float("nan")
    if model is not None:
        start = time.perf_counter()
        results[agent_name] = rollout_curves(env_kwargs, agent_policy(model), seeds)
        seconds = (time.perf_counter() - start) / max(1, len(seeds))
    references, settings = reference_curves(env_kwargs, seeds, tuning_episodes, oracle, tune_on)
    steps_per_action = EnvConfig.from_kwargs(**env_kwargs).steps_per_action
    return Evaluation({**results, **references}, settings, seconds, steps_per_action)
