"""The tasks agents are trained and judged on: env arguments, agent settings and evaluation, one entry each.

- ``default``: GradInstructor-v0 as registered, one training regime. A tuned learning rate is nearly all
  there is to learn here (`docs/agents.md`); kept so that the earlier tables can be rerun.
- ``randomized``: every MLP draws its own regime from the default `RegimeDistribution`
  (``randomize_regime=True``): learning rate, init scale, weight decay, data share, batch size. No one
  learning rate suits them all, and a controller that reads the MLP can beat the best one. Judged on 64
  unseen MLPs per seed beside the per-instance oracle. Agents see the weight image, its change since the last
  step and the training state (the best of an A/B of the observation parts). They keep the shipped objective, the
  discounted sum (gamma 0.9) of the validation accuracy after every step; the best constant and the
  schedule are tuned on the tables' measure, final validation accuracy, on 64 MLPs of their own, so
  the bar is as high as it can be for what the tables rank. (A first definition rewarded the change of
  accuracy with gamma 1, which makes an episode's return its final accuracy gain and aligns all three
  exactly; PPO barely moved from the zero action under it: docs/agents.md.)

- ``randomized-schedule-free``: the same with Schedule-Free AdamW, the strongest competitor on
  ``randomized``, as every MLP's optimizer (``randomize_regime="schedule-free-adamw"``, batched in
  `gi_envs.optimizers`): the zero action is that optimizer at the MLP's drawn learning rate (0.003 ... 0.3),
  and an action scales its per-block steps. It asks what is still to win on top of it.

- ``universal``: one controller for any MLP. Every MLP draws its data set (digits, MNIST or a generated
  ``synthetic-K`` task), its depth (1 to 3 hidden layers) and widths (16 to 256), its optimizer (SGD, momentum,
  Adam) and its regime from the ``meta-train`` split of `gi_envs.TASK_SPLITS`; agents see the shape-free
  observation (per-layer statistics of the weights and of their change in 5 layer slots, and the training state)
  and act with one learning-rate multiplier per layer slot. Judged on the meta-test splits by
  `bench/universal.py` (held-out data set, shapes, optimizer, horizon).

A task's env arguments sit under the user's (the user's win); its agent settings override each
algorithm's shipped config where the algorithm takes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentTask:
    """One task agents are trained and judged on (not `gi_envs.TrainingTask`, the env's training problem).

    :param name: what configs and the command line call it.
    :param env_kwargs: GradInstructor-v0 arguments of the task.
    :param agent_settings: constructor arguments every algorithm that takes them uses on this task.
    :param eval_episodes: unseen MLPs per training seed on which agents and references are judged.
    :param tuning_episodes: MLPs (of their own seeds) on which the best constant and the schedule are tuned.
    :param tune_on: what they are tuned on: ``return`` (the mean episode return) or ``final_val_accuracy``.
    :param oracle: judge beside the per-instance oracle too.
    :param rollout_envs: on-policy algorithms (those with ``n_steps``) collect each update's transitions from
        this many MLPs side by side, ``n_steps`` shrunk to keep the update's size: fewer, larger policy calls
        (1.2x the env steps per second of the shipped 8 on randomized digits, `bench/agent_speed.py`).
        None keeps the shipped configs.
    """

    name: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_settings: dict[str, Any] = field(default_factory=dict)
    eval_episodes: int = 10
    tuning_episodes: int = 5
    tune_on: str = "return"
    oracle: bool = False
    rollout_envs: int | None = None


RANDOMIZED_OBSERVATION = ["weights", "weight_change", "training_state"]  # the winner of docs/agents.md's A/B
UNIVERSAL_OBSERVATION = ["layer_stats", "layer_change_stats", "training_state"]  # one space for every MLP

TASKS: dict[str, AgentTask] = {t.name: t for t in (
    AgentTask("default"),
    # the observation won the A/B of docs/agents.md (PPO, 5 seeds): the image, its change and the training state
    AgentTask("randomized", env_kwargs={"randomize_regime": True, "observation": RANDOMIZED_OBSERVATION},
              eval_episodes=64, tuning_episodes=64, tune_on="final_val_accuracy", oracle=True, rollout_envs=32),
    # the same on top of the strongest competitor, batched: Schedule-Free AdamW, its own lr drawn per MLP
    AgentTask("randomized-schedule-free", env_kwargs={"randomize_regime": "schedule-free-adamw",
                                                      "observation": RANDOMIZED_OBSERVATION},
              eval_episodes=64, tuning_episodes=64, tune_on="final_val_accuracy", oracle=True, rollout_envs=32),
    # one controller for any MLP: the meta-train split, shape-free observation, one action per layer slot
    AgentTask("universal", env_kwargs={"task_family": "meta-train", "observation": UNIVERSAL_OBSERVATION},
              eval_episodes=32, tuning_episodes=16, tune_on="final_val_accuracy", oracle=True, rollout_envs=16),
)}


def task_named(name: str) -> AgentTask:
    """The task `name`, or a ValueError naming the known ones."""
    if name not in TASKS:
        raise ValueError(f"task={name!r} is not known; expected one of {list(TASKS)}")
    return TASKS[name]
