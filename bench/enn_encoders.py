"""How well do accuracy predictors rank MLPs they never saw? Held-out runs of a randomized zoo.

For each data set: a zoo of plain-SGD runs with random learning rate, init scale, weight decay, data
share and batch size (`agents.enn.zoo`), split by run. Every predictor is fitted on the fit runs'
snapshots and scored on the held-out runs' snapshots (`agents.experiments.enn_zoo`, what
`grad-instructor evaluate-enn` reports): Kendall tau over all snapshots and over late ones (the
second half of training), Spearman rho and mean absolute error.

Predictors: StatNN (gradient-boosted trees on per-layer weight statistics, the field's bar), and
supervised ENNs (`grad-instructor fit-enn`) with the paper's image encoder (mean image at resolution
0.15), the image encoder on the mean + rms image, and the permutation-invariant statistics encoder.
`--critics` adds exported critic ENNs (files) of the first data set's MLPs.

    python bench/enn_zoo.py                       # digits and MNIST (GI_DATA_DIR for MNIST)
    python bench/enn_zoo.py --datasets digits --runs 100
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np

from agents.enn.fit import fit_zoo_enn
from agents.enn.network import ENN
from agents.enn.zoo import ZooSpec, train_zoo
from agents.experiments.enn_ranking import enn_predictions, held_out_scores, statnn_predictions
from agents.report import markdown_table
from gi_envs.spec import ImageSpec, MLPSpec

HIDDEN = {"digits": (32,), "mnist": (32,), "fashion-mnist": (32,)}
ENCODERS = {"image CNN, paper's image (mean, 0.15)": ("image", ImageSpec(0.15, ("mean",))),
            "image CNN, mean + rms (0.15)": ("image", ImageSpec(0.15, ("mean", "rms"))),
            "statistics encoder (stats)": ("stats", None)}


def table_row(what: str, measured: np.ndarray, stage: np.ndarray, name: str, predicted: np.ndarray,
              seconds: float) -> list[str]:
    s = held_out_scores(predicted, measured, stage)
    return [what, name, f"{s['kendall_tau']:.3f}", f"{s['kendall_tau_late']:.3f}", f"{s['spearman_rho']:.3f}",
            f"{100 * s['mae']:.1f}", f"{seconds:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=list(HIDDEN))
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--steps", type=int, default=1000, help="SGD steps per run")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs of every ENN's fit (early-stopped)")
    parser.add_argument("--critics", nargs="*", type=Path, default=[], help="critic ENN files for the first data set")
    parser.add_argument("--save-zoo", type=Path, default=None, help="folder to keep each zoo in (DATASET.npz)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for k, dataset in enumerate(args.datasets):
        mlp = MLPSpec(dataset, HIDDEN[dataset])
        start = time.perf_counter()
        zoo = train_zoo(ZooSpec(mlp=mlp, runs=args.runs, steps=args.steps, seed=args.seed), progress=False)
        print(f"{dataset}: zoo of {args.runs} runs x {len(zoo.spec.stages)} snapshots trained in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        if args.save_zoo:
            args.save_zoo.mkdir(parents=True, exist_ok=True)
            zoo.save(args.save_zoo / f"{dataset}.npz")
        held = zoo.held_out
        arch = "-".join(map(str, mlp.layer_sizes))
        what = f"{dataset} {arch}, {zoo.held_out_runs.sum()} held-out runs ({held.sum()} snapshots)"
        row = partial(table_row, what, zoo.val_accuracy[held], zoo.stage[held])
        start = time.perf_counter()
        predicted = statnn_predictions(zoo, "current", args.seed)
        rows.append(row("StatNN (GBM on per-layer statistics)", predicted, time.perf_counter() - start))
        for name, (encoder, image) in ENCODERS.items():
            start = time.perf_counter()
            enn = fit_zoo_enn(zoo, encoder, "current", image, epochs=args.epochs, seed=args.seed, progress=False)
            source = enn.metadata["source"]
            rows.append(row(f"{name}; best epoch {source['best_epoch'] + 1} of {source['epochs_run']}",
                            enn_predictions(enn, zoo, held), time.perf_counter() - start))
            print(rows[-1], flush=True)
        for path in args.critics if k == 0 else []:
            start = time.perf_counter()
            rows.append(row(f"critic {path}", enn_predictions(ENN.load(path), zoo, held), time.perf_counter() - start))
    print()
    print(markdown_table(["held-out MLPs", "predictor", "Kendall tau", "tau, late training", "Spearman rho",
                          "MAE (points)", "fit s"], rows))


if __name__ == "__main__":
    main()
