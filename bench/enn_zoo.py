"""How well do accuracy predictors rank MLPs they never saw? Held-out runs of a randomized zoo.

For each data set: a zoo of plain-SGD runs with random learning rate, init scale, weight decay, data
share and batch size (`agents.enn.zoo`), split by run. Every predictor is fitted on the fit runs'
snapshots and scored on the held-out runs' snapshots: Kendall tau over all snapshots and over late
ones (the second half of training), Spearman rho and mean absolute error.

Predictors: StatNN (gradient-boosted trees on per-layer weight statistics, the field's bar), and the
image-CNN ENN (our `WeightImageEncoder`) on the paper's mean image at resolution 0.15 and on the
mean + rms image, fitted by regression with early stopping on held-out fit runs.

    python bench/enn_zoo.py                       # digits and MNIST (GI_DATA_DIR for MNIST)
    python bench/enn_zoo.py --datasets digits --runs 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.enn.quality import Snapshots, ranking_quality
from agents.enn.statnn import StatNN
from agents.enn.supervised import fit_supervised_enn
from agents.enn.zoo import Zoo, ZooSpec, train_zoo
from agents.report import markdown_table
from gi_envs.spec import ImageSpec, MLPSpec
from gi_envs.task import EnvConfig

HIDDEN = {"digits": (32,), "mnist": (32,), "fashion-mnist": (32,)}
IMAGES = {"image CNN, paper's image (mean, 0.15)": ImageSpec(0.15, ("mean",)),
          "image CNN, mean + rms (0.15)": ImageSpec(0.15, ("mean", "rms"))}
LATE = 0.5  # snapshots at or after this share of training count as late


def scores(predicted: np.ndarray, zoo: Zoo, mask: np.ndarray) -> list[str]:
    late = mask & (zoo.stage >= LATE)
    whole, second_half = ranking_quality(predicted[mask], zoo.val_accuracy[mask]), \
        ranking_quality(predicted[late], zoo.val_accuracy[late])
    return [f"{whole['kendall_tau']:.3f}", f"{second_half['kendall_tau']:.3f}", f"{whole['spearman_rho']:.3f}",
            f"{100 * whole['mae']:.1f}"]


def image_snapshots(zoo: Zoo, image: ImageSpec, mask: np.ndarray) -> Snapshots:
    weights = [torch.from_numpy(w[mask]) for w in zoo.weights]
    return Snapshots(image.image(weights).detach(), zoo.val_accuracy[mask].astype(np.float64),
                     zoo.stage[mask], zoo.run[mask])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=list(HIDDEN))
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--steps", type=int, default=1000, help="SGD steps per run")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the image ENNs' fit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rows = []
    for dataset in args.datasets:
        mlp = MLPSpec(dataset, HIDDEN[dataset])
        start = time.perf_counter()
        zoo = train_zoo(ZooSpec(mlp=mlp, runs=args.runs, steps=args.steps, seed=args.seed))
        zoo_seconds = time.perf_counter() - start
        fit, held = ~zoo.held_out, zoo.held_out
        arch = "-".join(map(str, mlp.layer_sizes))
        what = f"{dataset} {arch}, {zoo.held_out_runs.sum()} held-out runs ({held.sum()} snapshots)"
        start = time.perf_counter()
        statnn = StatNN(args.seed).fit([w[fit] for w in zoo.weights], [b[fit] for b in zoo.biases],
                                       zoo.val_accuracy[fit])
        predicted = statnn.predict(zoo.weights, zoo.biases)
        rows.append([what, "StatNN (GBM on per-layer statistics)", *scores(predicted, zoo, held),
                     f"{time.perf_counter() - start:.0f}"])
        for name, image in IMAGES.items():
            start = time.perf_counter()
            env_kwargs = EnvConfig.from_specs(mlp, image).to_kwargs()
            enn = fit_supervised_enn(env_kwargs, image_snapshots(zoo, image, fit), epochs=args.epochs, seed=args.seed)
            with torch.no_grad():
                predicted = enn(image_snapshots(zoo, image, np.ones(len(zoo), bool)).images).numpy()
            rows.append([what, name, *scores(predicted, zoo, held), f"{time.perf_counter() - start:.0f}"])
        print(f"{dataset}: zoo of {args.runs} runs x {len(zoo.spec.stages)} snapshots trained in {zoo_seconds:.0f} s",
              flush=True)
    print()
    print(markdown_table(["held-out MLPs", "predictor", "Kendall tau", "tau, late training", "Spearman rho",
                          "MAE (points)", "fit s"], rows))


if __name__ == "__main__":
    main()
