"""What each `train_agents.py` subcommand does, one function each, readable top to bottom."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agents.report import markdown_table, mean_std, write_curves
from agents.rollout import random_policy, rollout_curves, zero_policy
from gi_envs.task import EnvConfig


def rollout(env_kwargs: dict, episodes: int, seed: int, out: Path) -> dict[str, np.ndarray]:
    """Roll out the zero action and random actions on fresh MLPs; print and save both curves."""
    config = EnvConfig.from_kwargs(**env_kwargs)  # fail on a bad argument before any work
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    seeds = list(range(seed, seed + episodes))
    start = time.perf_counter()
    results = {
        "zero action (plain SGD)": rollout_curves(env_kwargs, lambda space, s: zero_policy(space), seeds),
        "random actions": rollout_curves(env_kwargs, random_policy, seeds),
    }
    elapsed = time.perf_counter() - start

    names = list(results)
    curves = {name: r.val_accuracy for name, r in results.items()}
    steps = range(config.episode_length + 1)
    rows = [[t, *(mean_std(curves[n][:, t]) for n in names)] for t in steps]
    print(f"GradInstructor-v0 on {config.dataset}: validation accuracy (%) per env step, "
          f"mean ± std over {episodes} MLPs (seeds {seeds[0]}..{seeds[-1]})")
    print(markdown_table(["step", *names], rows))
    final = [[n, mean_std(r.test_accuracy), mean_std(r.returns, scale=1.0, digits=2)] for n, r in results.items()]
    print()
    print(markdown_table(["policy", "final test accuracy (%)", "episode return"], final))
    paths = write_curves(out / "curves", curves, ylabel="validation accuracy")
    print(f"\n{2 * episodes} episodes in {elapsed:.1f} s; curves written to {', '.join(map(str, paths))}")
    return curves


def quickstart(seed: int, out: Path) -> None:
    """The main job on the embedded default: for now, the two reference policies on digits."""
    rollout({}, episodes=5, seed=seed, out=out)
