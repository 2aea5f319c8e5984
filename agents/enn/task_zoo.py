"""A task-family zoo: runs that each draw their whole task from a `TaskDistribution`, as the env's MLPs do.

The env's ``task_family=`` draws every MLP's data set, hidden widths and depth, optimizer and regime from a
`gi_envs.TaskDistribution`, from the MLP's seed (`TaskDistribution.task_of`). A task-family zoo draws its runs the
same way, from seeds of its own block (`agents.seeds.task_zoo_run_seeds`): run k is the env's MLP of seed
``run_seeds()[k]`` trained under the zero action (a test checks it), snapshotted at `stages` of `steps`.

MLPs of one shape train together in the training core and are stored as one `Zoo`, so the task-family zoo is
a list of zoos, one per data set and shape that a run drew (a member, often of a single run: widths are drawn
log-uniform). Fit and held-out runs are split over the whole zoo, by run, before grouping; each member keeps its
runs' part of that split. A folder of it holds one file per member (``DATASET-SIZES.npz``) and resumes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.enn.zoo import Zoo, ZooSpec, check_zoo_memory, held_out_split, train_runs
from agents.enn.zoo_family import read_or_train
from agents.seeds import task_zoo_run_seeds
from gi_envs.datasets import load_dataset
from gi_envs.spec import MLPSpec
from gi_envs.task_family import DrawnTask, TaskDistribution, task_distribution


@dataclass(frozen=True)
class TaskZooMember:
    """One member of a task-family zoo: its `ZooSpec` (data set, shape, `member` index, `tasks`) and which of the
    zoo's runs it holds (indices into `TaskZooSpec.run_seeds()`)."""

    spec: ZooSpec
    runs: np.ndarray


@dataclass(frozen=True)
class TaskZooSpec:
    """What a task-family zoo holds: `runs` runs, each of the task its seed draws from `tasks`.

    :param tasks: where each run's task comes from: a `TaskDistribution`, a split's name of `gi_envs.TASK_SPLITS`
        (default ``meta-train``, what the universal agents train on) or a mapping of its fields.
    :param runs: training runs in all.
    :param steps: minibatch steps per run.
    :param stages: snapshot points, as shares of `steps` (as `ZooSpec.stages`).
    :param held_out: share of the runs held out from fitting.
    :param seed: draws the runs' seeds and the split.
    """

    tasks: TaskDistribution | str | Mapping[str, Any] = "meta-train"
    runs: int = 200
    steps: int = 1000
    stages: tuple[float, ...] = field(default_factory=lambda: ZooSpec().stages)
    held_out: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", task_distribution(self.tasks))
        ZooSpec(runs=self.runs, steps=self.steps, stages=self.stages, held_out=self.held_out, seed=self.seed)
        self.run_seeds()  # a bad seed or run count fails here, naming it

    def run_seeds(self) -> list[int]:
        """Each run's seed: its task, MLP, regime and data order."""
        return task_zoo_run_seeds(self.seed, self.runs)

    def drawn_tasks(self) -> list[DrawnTask]:
        """Each run's task, as the env draws it for an MLP of the run's seed."""
        return [self.tasks.task_of(s) for s in self.run_seeds()]  # type: ignore[union-attr]

    def members(self) -> list[TaskZooMember]:
        """One member per data set and shape the runs drew, in the order of their first run."""
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for run, task in enumerate(self.drawn_tasks()):
            groups.setdefault((task.dataset, task.hidden_sizes), []).append(run)
        tasks: TaskDistribution = self.tasks  # type: ignore[assignment]
        regimes = replace(tasks.regimes, optimizers=tasks.optimizers)  # the runs' regimes' law, as a zoo states it
        return [TaskZooMember(ZooSpec(mlp=MLPSpec(dataset, hidden_sizes), runs=len(runs), steps=self.steps,
                                      stages=self.stages, distribution=regimes, held_out=self.held_out,
                                      seed=self.seed, member=k, tasks=tasks), np.array(runs))
                for k, ((dataset, hidden_sizes), runs) in enumerate(groups.items())]


def train_task_zoo(spec: TaskZooSpec, folder: str | os.PathLike | None = None, data_dir: str | None = None,
                   progress: bool = True) -> list[Zoo]:
    """Every member's zoo, trained in turn. With `folder`, each is saved there as it finishes, and a member whose
    file already holds a zoo of the same spec is read instead of trained (a killed job resumes)."""
    seeds = np.array(spec.run_seeds(), dtype=np.int64)
    tasks = spec.drawn_tasks()
    held_out_runs = held_out_split(spec.runs, spec.held_out, spec.seed)
    zoos = []
    with tqdm(total=spec.runs * spec.steps, unit="step", unit_scale=True, disable=not progress,
              desc=f"task-family zoo of {spec.runs} runs") as bar:
        for member in spec.members():
            runs = member.runs

            def train(member_spec: ZooSpec, runs: np.ndarray = runs) -> Zoo:
                check_zoo_memory(member_spec)
                data = load_dataset(member_spec.mlp.dataset, data_dir=data_dir)
                return train_runs(member_spec, data, seeds[runs], [tasks[r].regime for r in runs],
                                  held_out_runs[runs], bar)

            zoos.append(read_or_train(member.spec, train, folder))
            bar.n = int(sum(len(z.seeds) for z in zoos) * spec.steps)
            bar.refresh()
    return zoos
