"""How fast does an agent train on GradInstructor-v0, and where does the time go?

Trains PPO (the shipped config, on a task of `agents.rl.tasks`) for a fixed number of env steps under
several settings and prints env steps per second and the share of wall time spent inside the env's
step, all measured in one run on this machine:

- the shipped config (8 MLPs side by side, 64 steps per rollout, 5 epochs of minibatches of 128);
- more MLPs side by side (16, 32): fewer policy calls per env step, larger batches for the ENN body;
- fewer validation samples behind each reward (``eval_samples``), the env's own cost per step.

    OMP_NUM_THREADS=1 python bench/agent_speed.py                       # randomized digits, 20,000 steps
    python bench/agent_speed.py --tasks default --timesteps 4000 --variants shipped
    OMP_NUM_THREADS=1 python bench/agent_speed.py --tasks randomized universal --variants shipped   # beside each other

With several tasks every (task, variant) is a row, and the ratio is against the first row.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from agents.report import markdown_table
from agents.rl.algorithms import build_model, load_agent_config
from agents.rl.tasks import TASKS
from agents.rl.training import make_training_env

VARIANTS = {  # name -> (config overrides, env overrides)
    "shipped": ({}, {}),
    "16 envs, n_steps 32": ({"n_envs": 16, "n_steps": 32}, {}),
    "32 envs, n_steps 16": ({"n_envs": 32, "n_steps": 16}, {}),
    "32 envs, n_steps 16, batch 256": ({"n_envs": 32, "n_steps": 16, "batch_size": 256}, {}),
    "32 envs, n_steps 16, eval_samples 256": ({"n_envs": 32, "n_steps": 16}, {"eval_samples": 256}),
}


def time_variant(task: str, timesteps: int, config_overrides: dict, env_overrides: dict,
                 seed: int) -> tuple[float, float]:
    """(env steps per second, share of the time inside env.step) of one PPO training run."""
    config = load_agent_config("ppo", overrides={"n_timesteps": timesteps, "env_kwargs": env_overrides,
                                                 "n_envs": config_overrides.get("n_envs")}, task=task)
    config.hyperparams.update({k: v for k, v in config_overrides.items() if k != "n_envs"})
    with tempfile.TemporaryDirectory() as out:
        venv = make_training_env(config.env_kwargs, config.n_envs, seed, Path(out) / "monitor.csv")
        model = build_model(config, venv, seed)
        start = time.perf_counter()
        model.learn(timesteps)
        wall = time.perf_counter() - start
        venv.close()
    return timesteps / wall, venv.seconds / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", "--task", nargs="+", choices=list(TASKS), default=["randomized"])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, base = [], None
    for task in args.tasks:
        for name in args.variants:
            steps_per_second, share = time_variant(task, args.timesteps, *VARIANTS[name], args.seed)
            base = base or steps_per_second
            label = name if len(args.tasks) == 1 else f"{task}: {name}"
            rows.append([label, f"{steps_per_second:,.0f}", f"{steps_per_second / base:.2f}x", f"{100 * share:.0f} %"])
            print(rows[-1], flush=True)
    print(f"\nPPO, task(s) {', '.join(args.tasks)}, {args.timesteps} env steps per variant, torch {torch.__version__} "
          f"with {torch.get_num_threads()} thread(s):\n")
    print(markdown_table(["variant", "env steps/s", "vs first", "time in env.step"], rows))


if __name__ == "__main__":
    main()
