"""How well can an ENN rank MLPs from their weight image, as a function of the image's resolution?

The paper reads weights at 0.15 x 0.15 of their resolution and leaves open what that costs. For
each resolution, this script builds the same snapshot zoo (the same MLPs and training paths,
half plain SGD and half random actions, `--env-steps` GradInstructor steps as one PPO run costs),
fits the supervised ENN on it, and measures Kendall tau, Spearman rho and MAE on snapshots of
MLPs from other unseen seeds, over all stages of training and among late-training snapshots.

    python bench/enn_resolution.py                                  # digits, the six resolutions
    python bench/enn_resolution.py --resolutions 0.15 0.5 --env-steps 4000 --epochs 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from agents.enn.fit import FitSettings
from agents.enn.quality import Snapshots, collect_snapshots, quality_by_stage
from agents.enn.supervised import episode_snapshots, fit_supervised_enn
from agents.report import atomic_write_text, markdown_table, write_curves
from agents.seeds import quality_seeds


def subsample(zoo: Snapshots, max_snapshots: int, seed: int) -> Snapshots:
    """Whole episodes, at random, up to `max_snapshots` snapshots (the same episodes at every resolution)."""
    episodes = np.unique(zoo.episodes)
    per_episode = len(zoo.accuracy) / len(episodes)
    keep_n = min(len(episodes), max(2, int(max_snapshots / per_episode)))
    keep = np.isin(zoo.episodes, np.random.default_rng(seed).choice(episodes, keep_n, replace=False))
    return Snapshots(zoo.images[torch.from_numpy(keep)], zoo.accuracy[keep], zoo.steps[keep], zoo.episodes[keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", nargs="+", type=float, default=[0.05, 0.1, 0.15, 0.25, 0.5, 1.0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist", "fashion-mnist"])
    parser.add_argument("--env-steps", type=int, default=30_000, help="zoo budget in env steps")
    parser.add_argument("--max-snapshots", type=int, default=10_000, help="training snapshots used at every resolution")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--quality-episodes", type=int, default=64, help="unseen MLPs for the quality measurement")
    parser.add_argument("--image-stats", nargs="+", default=["mean"], choices=["mean", "rms"],
                        help="what each pixel says of its weights (gi_envs.weight_image)")
    parser.add_argument("--action-mode", default="perturb", choices=["perturb", "scale"],
                        help="the env's action mode while the zoo trains (perturb: as in the published tables)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/enn_resolution"))
    args = parser.parse_args()

    rows, taus = [], {"all stages": [], "late training": []}
    for resolution in args.resolutions:
        env_kwargs = {"dataset": args.dataset, "resolution": resolution, "image_stats": tuple(args.image_stats),
                      "action_mode": args.action_mode}
        if args.dataset != "digits":
            env_kwargs["hidden_sizes"] = (100,)
        start = time.perf_counter()
        zoo = subsample(episode_snapshots(env_kwargs, args.env_steps, args.seed), args.max_snapshots, args.seed)
        enn = fit_supervised_enn(env_kwargs, zoo, FitSettings(epochs=args.epochs, seed=args.seed))
        held_out = collect_snapshots(env_kwargs, quality_seeds(args.quality_episodes))
        quality = quality_by_stage(enn, held_out)
        seconds = time.perf_counter() - start
        shape = tuple(enn.metadata["image"]["shape"])
        pixels = sum(h * w for h, w in enn.image_spec.layout(enn.mlp_spec).channel_sizes)
        weights = sum(o * i for o, i in enn.layer_shapes)
        rows.append([f"{resolution:g}", "x".join(map(str, shape)), f"{100 * pixels / weights:.1f} %",
                     f"{quality['all']['kendall_tau']:.3f}", f"{quality['all']['spearman_rho']:.3f}",
                     f"{100 * quality['all']['mae']:.1f}", f"{quality['late']['kendall_tau']:.3f}",
                     len(zoo.accuracy), f"{seconds:.0f}"])
        taus["all stages"].append(quality["all"]["kendall_tau"])
        taus["late training"].append(quality["late"]["kendall_tau"])
        print(f"done: resolution {resolution:g}", flush=True)

    table = markdown_table(["resolution (per side)", "image (C x H x W)", "pixels / weights", "Kendall tau",
                            "Spearman rho", "MAE (points)", "Kendall tau, late training", "training snapshots",
                            "seconds"], rows)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "resolution.md", table + "\n")
    write_curves(args.out / "resolution", {k: np.array([v]) for k, v in taus.items()},
                 ylabel="Kendall tau on unseen MLPs", xlabel="resolution", x=np.array(args.resolutions))
    print(f"\nSupervised ENN on {args.dataset}, image stats {args.image_stats}, {args.env_steps} env steps of zoo, "
          f"{args.epochs} epochs; quality on {args.quality_episodes} unseen MLPs at every stage:\n")
    print(table)
    print(f"\nWritten: {args.out}/resolution.md, resolution.csv, resolution.png")


if __name__ == "__main__":
    main()
