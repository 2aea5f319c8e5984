"""Why is TRPO slow on MNIST, and how much does sub-sampling its policy step buy?

Trains TRPO (the shipped config on a task of `agents.rl.tasks`) for a few updates under each
``sub_sampling_factor`` and prints env steps per second, the share of wall time inside the
conjugate-gradient solver's Fisher-vector products (a double backward pass through the ENN body
each) and inside the env's step, all measured in one run on this machine:

    OMP_NUM_THREADS=1 GI_DATA_DIR=../shared/data python bench/trpo_speed.py      # randomized MNIST
    OMP_NUM_THREADS=1 python bench/trpo_speed.py --dataset digits --timesteps 4096
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


def time_factor(task: str, dataset: str, timesteps: int, factor: int, seed: int) -> tuple[float, float, float, int]:
    """(env steps per second, share of the time in Fisher-vector products, share in env.step, how many
    products) of one TRPO training run with `sub_sampling_factor` `factor`."""
    config = load_agent_config("trpo", overrides={"n_timesteps": timesteps, "env_kwargs": {"dataset": dataset},
                                                  "sub_sampling_factor": factor}, task=task)
    with tempfile.TemporaryDirectory() as out:
        venv = make_training_env(config.env_kwargs, config.n_envs, seed, Path(out) / "monitor.csv")
        model = build_model(config, venv, seed)
        fisher = {"seconds": 0.0, "calls": 0}
        product = model.hessian_vector_product

        def timed_product(*args, **kwargs):  # the one place TRPO differentiates twice
            begin = time.perf_counter()
            result = product(*args, **kwargs)
            fisher["seconds"] += time.perf_counter() - begin
            fisher["calls"] += 1
            return result

        model.hessian_vector_product = timed_product
        start = time.perf_counter()
        model.learn(timesteps)
        wall = time.perf_counter() - start
        venv.close()
    return timesteps / wall, fisher["seconds"] / wall, venv.seconds / wall, fisher["calls"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(TASKS), default="randomized")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--timesteps", type=int, default=1536, help="env steps per run (512 a TRPO update here)")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4], help="sub_sampling_factor values")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, base = [], None
    for factor in args.factors:
        steps_per_second, fisher, env, calls = time_factor(args.task, args.dataset, args.timesteps, factor, args.seed)
        base = base or steps_per_second
        rows.append([str(factor), f"{steps_per_second:.1f}", f"{steps_per_second / base:.2f}x", str(calls),
                     f"{100 * fisher:.0f} %", f"{100 * env:.0f} %"])
        print(rows[-1], flush=True)
    print(f"\nTRPO, task {args.task}, {args.dataset}, {args.timesteps} env steps per run, torch {torch.__version__} "
          f"with {torch.get_num_threads()} thread(s):\n")
    print(markdown_table(["sub_sampling_factor", "env steps/s", "vs first", "Fisher-vector products",
                          "time in them", "time in env.step"], rows))


if __name__ == "__main__":
    main()
