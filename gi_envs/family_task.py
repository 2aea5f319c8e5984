"""The training problem of a task family: N MLPs, each of its own data set, shape and regime.

MLPs of different shapes cannot share batched matmuls, so `FamilyTask` holds one `TrainingTask` (N = 1) per
model, made anew at each reset for the task `TaskDistribution.task_of` draws from the MLP's seed, and steps them
one after the other. It answers what the envs ask of a `TrainingTask` (spaces, `reset_mlp`, `step`,
`observations`, `regime`, `seeds`, `describe`), so `GradInstructorEnv` and `GradInstructorVectorEnv` drive
either one; `make_task` picks. Each model behaves exactly as a `TrainingTask` of its drawn task's fixed
arguments (`EnvConfig.for_task`) would: the zero action is its plain optimizer, on every shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from gymnasium import spaces

from gi_envs.regime import Regime
from gi_envs.task import EnvConfig, StepResult, TrainingTask
from gi_envs.task_family import DrawnTask


class FamilyTask:
    """N MLPs under training, each on the task its seed draws from `config.family`.

    :param config: validated env arguments with a `task_family`.
    :param n_models: N.
    """

    def __init__(self, config: EnvConfig, n_models: int = 1):
        assert config.family is not None, "FamilyTask needs a config with a task_family"
        self.config = config
        self.n_models = n_models
        self.observation_layout = config.observation_layout
        self.observation_space = self.observation_layout.single_space()
        self.action_space = spaces.Box(-1.0, 1.0, (self.observation_layout.action_dim,), np.float32)
        self.tasks: list[TrainingTask | None] = [None] * n_models
        self.drawn: list[DrawnTask | None] = [None] * n_models

    def _task(self, index: int) -> TrainingTask:
        task = self.tasks[index]
        if task is None:
            raise RuntimeError(f"model {index} has no task yet: reset_mlp({index}, seed) first")
        return task

    def reset_mlp(self, index: int, seed: int) -> float:
        """Fresh MLP `index`: the task of `seed` (`TaskDistribution.task_of`), then its MLP from `seed`; returns its
        validation accuracy."""
        drawn = self.config.family.task_of(seed)  # type: ignore[union-attr]
        task = TrainingTask(self.config.for_task(drawn), n_models=1)
        self.tasks[index], self.drawn[index] = task, drawn
        return task.reset_mlp(0, seed)

    def member(self, index: int) -> TrainingTask:
        """The `TrainingTask` (N = 1) that trains MLP `index` on its drawn task."""
        return self._task(index)

    def regime(self, index: int) -> Regime:
        """The training regime of MLP `index`."""
        return self._task(index).regime(0)

    @property
    def seeds(self) -> list[int]:
        """Each MLP's seed, as its last reset drew it (0 before the first)."""
        return [0 if task is None else task.seeds[0] for task in self.tasks]

    def describe(self, index: int) -> dict[str, Any]:
        """What the env's `info` says of MLP `index`'s task: data set, hidden widths, depth and regime."""
        drawn = self.drawn[index]
        return {} if drawn is None else drawn.to_info()

    def observations(self) -> np.ndarray:
        """(N, state_dim) shape-free observations."""
        return np.concatenate([self._task(i).observations() for i in range(self.n_models)])

    def step(self, actions: np.ndarray) -> StepResult:
        """Every model's `TrainingTask.step` under its action; the results stacked."""
        actions = np.asarray(actions, dtype=np.float32)
        expected = (self.n_models, self.action_space.shape[0])
        if actions.shape != expected:
            raise ValueError(f"actions of shape {actions.shape} do not fit the action space; expected {expected}")
        results = [self._task(i).step(actions[i:i + 1]) for i in range(self.n_models)]
        return StepResult(**{f.name: np.concatenate([getattr(r, f.name) for r in results])
                             for f in dataclasses.fields(StepResult)})


def make_task(config: EnvConfig, n_models: int = 1) -> TrainingTask | FamilyTask:
    """The training problem of `config`: a `FamilyTask` under a `task_family`, else one batched `TrainingTask`."""
    return FamilyTask(config, n_models) if config.family is not None else TrainingTask(config, n_models)
