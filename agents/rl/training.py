"""Train one agent on GradInstructor-v0, save everything a reader needs, evaluate it.

A run folder holds `config.yaml` (exactly what ran), `model.zip`, `monitor.csv` (every training
episode: return, length, final validation and test accuracy), `progress.csv` (SB3's log),
`eval.json` (the agent against the zero action and random actions on unseen MLPs),
`learning_curve.csv/png`, and the W&B run under `wandb/`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor

from agents.report import atomic_write_text, write_curves
from agents.rl import tracking
from agents.rl.algorithms import AgentConfig, build_model
from agents.rl.evaluation import evaluate_against_references
from agents.rl.tasks import task_named
from agents.seeds import evaluation_seeds
from gi_envs import make_sb3_vec_env
from gi_envs.files import replacing

MONITOR_KEYS = ("val_accuracy", "test_accuracy")


class StepTimer(VecEnvWrapper):
    """Adds up the wall time spent inside the env's step, to report the env's share of training."""

    def __init__(self, venv: VecEnv):
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self):
        start = time.perf_counter()
        result = self.venv.step_wait()
        self.seconds += time.perf_counter() - start
        return result


class EpisodeAccuracyCallback(BaseCallback):
    """Records each finished training episode's final validation / test accuracy in SB3's logger."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                for key in MONITOR_KEYS:
                    if key in info:
                        self.logger.record_mean(f"episode/{key}", float(info[key]))
        return True


def make_training_env(env_kwargs: dict[str, Any], n_envs: int, seed: int, monitor_path: Path | None) -> StepTimer:
    """n_envs MLPs in the native vector env, behind SB3's API, a monitor and a step timer."""
    venv = make_sb3_vec_env(n_envs, seed, flatten_observation=True, **env_kwargs)
    monitor = VecMonitor(venv, filename=str(monitor_path) if monitor_path else None, info_keywords=MONITOR_KEYS)
    return StepTimer(monitor)


@dataclass
class TrainResult:
    model: BaseAlgorithm
    out: Path
    wall_seconds: float
    env_step_seconds: float
    evaluation: dict[str, dict[str, float]]

    @property
    def env_steps_per_second(self) -> float:
        return self.model.num_timesteps / self.wall_seconds


def train_agent(
    config: AgentConfig,
    seed: int,
    out: Path,
    wandb_mode: str = "offline",
    eval_episodes: int = 10,
    progress_bar: bool = True,
    group: str | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Train `config`'s algorithm for `config.n_timesteps` env steps, save, evaluate, log.

    :param eval_episodes: fresh MLPs (unseen seeds) on which the agent, the zero action and random
        actions are compared after training.
    :param group: W&B group (a benchmark names its runs' group after itself).
    :param run_name: the W&B run's name (default ``ALGO-seedSEED``; the `train` command gives its folder's name).
    """
    out.mkdir(parents=True, exist_ok=True)
    run_config = {**config.to_dict(), "seed": seed}
    atomic_write_text(out / "config.yaml", yaml.safe_dump(run_config, sort_keys=False))
    run = tracking.start_run(out, wandb_mode, name=run_name or f"{config.algo}-seed{seed}",
                             config={**run_config, "task": config.task}, group=group)
    try:
        venv = make_training_env(config.env_kwargs, config.n_envs, seed, out / "monitor.csv")
        model = build_model(config, venv, seed)
        formats = [CSVOutputFormat(str(out / "progress.csv")), tracking.WandbOutputFormat(run)]
        model.set_logger(Logger(str(out), formats))
        start = time.perf_counter()
        model.learn(config.n_timesteps, callback=EpisodeAccuracyCallback(), progress_bar=progress_bar)
        wall = time.perf_counter() - start
        model_path = out / "model.zip"
        with replacing(model_path) as tmp:
            model.save(tmp)
        venv.close()

        task = task_named(config.task)
        judged = evaluate_against_references(model, config.env_kwargs, evaluation_seeds(seed, eval_episodes),
                                             config.algo, task.tuning_episodes, task.oracle, task.tune_on)
        evaluation = judged.summaries()
        evaluation_doc = {
            "eval_seeds": evaluation_seeds(seed, eval_episodes), "policies": evaluation,
            "reference_settings": judged.settings, "train_wall_seconds": wall, "env_step_seconds": venv.seconds,
            "timesteps": model.num_timesteps, "eval_seconds_per_mlp": judged.agent_seconds_per_mlp,
            "target_val_accuracy": None if judged.target is None else judged.target.tolist(),
        }
        atomic_write_text(out / "eval.json", json.dumps(evaluation_doc, indent=2))
        pngs = write_learning_curve(out, model.num_timesteps)
        run.summary.update({f"eval/{name}/{k}": v for name, s in evaluation.items() for k, v in s.items()})
        run.summary.update({"train/wall_seconds": wall, "train/env_step_share": venv.seconds / wall})
        tracking.log_image(run, "learning_curve", pngs[1], step=model.num_timesteps)
        tracking.log_model(run, model_path, name=f"{config.algo}-seed{seed}", metadata=run_config)
    finally:
        run.finish()
    return TrainResult(model, out, wall, venv.seconds, evaluation)


def learning_curve(monitor: pd.DataFrame, total_steps: int, points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Mean final validation accuracy of the training episodes that ended in each of `points` equal
    spans of env steps (a span with none keeps the previous value). Returns (span ends, values)."""
    ends = np.linspace(0, total_steps, points + 1)[1:]
    finished = monitor["l"].cumsum().to_numpy()  # env steps (summed over envs) when each episode ended
    values = monitor["val_accuracy"].to_numpy()
    curve, last, lower = [], float("nan"), 0.0
    for end in ends:
        inside = (finished > lower) & (finished <= end)
        last = float(values[inside].mean()) if inside.any() else last
        curve.append(last)
        lower = end
    return ends, np.array(curve)


def write_learning_curve(out: Path, total_steps: int) -> list[Path]:
    """The run's learning curve from `monitor.csv`, as CSV and PNG."""
    x, y = learning_curve(read_monitor(out / "monitor.csv"), total_steps)
    return write_curves(out / "learning_curve", {"training episodes": y[None, :]}, x=x,
                        ylabel="final validation accuracy", xlabel="env steps")


def read_monitor(path: Path) -> pd.DataFrame:
    """SB3's monitor CSV (one JSON header line, then episodes) as a data frame."""
    return pd.read_csv(path, skiprows=1)
