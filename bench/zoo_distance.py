"""How far MLPs of different kinds lie from a shipped ENN's fitting zoo (`ENN.zoo_distance`), and what it predicts.

Fresh (default-init) and SGD-trained MLPs lie within the zoo; MLPs with N(0, 1) weights or a default init
scaled x8 do not, and without the flag an ENN ranks them anywhere (the random one near the top).

    python bench/zoo_distance.py
    GI_DATA_DIR=../shared/data python bench/zoo_distance.py --enn mnist-784-100-10 --mlps 3
    python bench/zoo_distance.py --enn digits-any --hidden-sizes 64 32 16
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agents.enn.network import ENN, pretrained_names
from agents.report import markdown_table
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.spec import MLPSpec
from gi_envs.training import train_mlps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enn", choices=pretrained_names(), default="digits-64-32-10")
    parser.add_argument("--mlps", type=int, default=5, help="MLPs of each kind")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=None,
                        help="an any-shape ENN: the MLPs' hidden widths (default: the ENN's target MLP's)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of SGD (lr 0.1) for the trained ones")
    args = parser.parse_args()
    enn = ENN.pretrained(args.enn)
    spec = MLPSpec(enn.mlp_spec.dataset, tuple(args.hidden_sizes)) if args.hidden_sizes else enn.mlp_spec
    torch.manual_seed(0)
    data = load_dataset(spec.dataset)
    trained = train_mlps(spec, data, Regime(lr=0.1), list(range(args.mlps)), epochs=args.epochs)
    kinds = {"fresh (default init)": [spec.sequential() for _ in range(args.mlps)],
             f"SGD-trained ({args.epochs} epochs)": [trained.to_sequential(i) for i in range(args.mlps)],
             "N(0, 1) weights": [spec.sequential() for _ in range(args.mlps)],
             "default init x8": [spec.sequential() for _ in range(args.mlps)]}
    with torch.no_grad():
        for model in kinds["N(0, 1) weights"]:
            for layer in model[::2]:
                layer.weight.normal_(0.0, 1.0)
        for model in kinds["default init x8"]:
            for layer in model[::2]:
                layer.weight.mul_(8.0)
    rows = []
    for kind, models in kinds.items():
        predicted, zoo = enn.predict(models, flags=True)
        real = [float((m(data.val.x).argmax(1) == data.val.y).float().mean()) for m in models]
        rows.append([kind, f"{np.mean(zoo.distance):.1f} (max {np.max(zoo.distance):.1f})",
                     f"{int(zoo.outside.sum())}/{len(models)}", f"{100 * np.mean(predicted):.1f}",
                     f"{100 * np.mean(real):.1f}"])
    print(f"ENN {args.enn}: distance from its zoo in robust standard deviations (flagged beyond 6), {args.mlps} "
          f"MLPs of each kind\n")
    print(markdown_table(["MLPs", "zoo distance, mean", "flagged", "predicted val acc (%)", "real val acc (%)"],
                         rows))


if __name__ == "__main__":
    main()
