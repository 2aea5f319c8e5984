"""Regenerate the ENNs the package ships (`ENN.pretrained`): one per MLP shape the README uses, and one per data
set for MLPs of any width and depth.

For a shape's name (``digits-64-32-10``): a zoo of runs of that MLP with regimes from the ``any-optimizer``
distribution (SGD, momentum and Adam; `grad-instructor zoo`), an ENN of the chosen encoder (default ``stats``)
fitted on its fit runs (`grad-instructor fit-enn`), scored on its held-out runs. For a data set's any-shape name
(``digits-any``): the same on a shape-family zoo (`grad-instructor zoo --family`: ``--runs`` runs of each of its
eight shapes), with an any-shape encoder (default ``any-probe+stats``), scored on every member's held-out runs.
Each is written to ``agents/enn/pretrained/NAME.pt`` with the zoo, the command and the scores in its metadata.

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python scripts/publish_enns.py            # all of them
    python scripts/publish_enns.py --names digits-64-32-10 --runs 1600
    python scripts/publish_enns.py --names mnist-any --runs 50 --zoo-dir runs/zoos/family
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from agents.enn.encoder import ENCODERS
from agents.enn.network import ENN
from agents.enn.zoo import ZooSpec, train_zoo
from agents.enn.zoo_family import ZooFamilySpec, train_zoo_family
from agents.experiments.enn_ranking import fit_enn_on_zoo
from gi_envs.spec import MLPSpec

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "agents" / "enn" / "pretrained"
SHAPES = {"digits-64-32-10": MLPSpec("digits", (32,)), "mnist-784-32-10": MLPSpec("mnist", (32,)),
          "mnist-784-100-10": MLPSpec("mnist", (100,)), "fashion-mnist-784-32-10": MLPSpec("fashion-mnist", (32,)),
          "fashion-mnist-784-100-10": MLPSpec("fashion-mnist", (100,))}
FAMILIES = {f"{dataset}-any": dataset for dataset in ("digits", "mnist", "fashion-mnist")}  # any-shape ENNs


def publish_family(name: str, runs: int, steps: int, encoder: str, seed: int, command: str,
                   zoo_dir: Path | None) -> dict:
    """Train (or, from `zoo_dir`, read) the shape-family zoo, fit the any-shape ENN, write it; the held-out scores."""
    start = time.perf_counter()
    spec = ZooFamilySpec(FAMILIES[name], runs=runs, steps=steps, seed=seed)
    with tempfile.TemporaryDirectory() as scratch:
        folder = zoo_dir / f"{spec.dataset}-family-seed{seed}-{runs}x{steps}" if zoo_dir else Path(scratch) / "zoo"
        train_zoo_family(spec, folder)
        fitted = fit_enn_on_zoo(folder, encoder, "current", Path(scratch) / "enn.pt", seed=seed)
    enn: ENN = fitted.enn
    enn.metadata["published"] = {"name": name, "zoo_family": {"dataset": spec.dataset,
                                                              "shapes": [list(s) for s in spec.shapes],
                                                              "runs": runs, "steps": steps, "seed": seed},
                                 "command": command, "seconds": round(time.perf_counter() - start)}
    enn.metadata["source"]["zoo"] = f"a shape-family zoo of {len(spec.shapes)} x {runs} runs made by {command}"
    enn.metadata["quality"]["zoo"] = enn.metadata["source"]["zoo"]
    enn.save(FOLDER / f"{name}.pt")
    return fitted.scores


def publish(name: str, runs: int, steps: int, encoder: str, seed: int, command: str) -> dict:
    """Train the zoo, fit the ENN, write it; the held-out scores."""
    start = time.perf_counter()
    spec = ZooSpec(mlp=SHAPES[name], runs=runs, steps=steps, seed=seed)
    zoo = train_zoo(spec)
    with tempfile.TemporaryDirectory() as scratch:
        zoo_path = Path(scratch) / f"{name}.npz"
        zoo.save(zoo_path)
        fitted = fit_enn_on_zoo(zoo_path, encoder, "current", Path(scratch) / "enn.pt", seed=seed)
    enn: ENN = fitted.enn
    enn.metadata["published"] = {"name": name, "zoo": spec.to_dict(), "command": command,
                                 "seconds": round(time.perf_counter() - start)}
    enn.metadata["source"]["zoo"] = f"a zoo of {runs} runs made by {command}"
    enn.metadata["quality"]["zoo"] = enn.metadata["source"]["zoo"]  # not the scratch file it was scored on
    enn.save(FOLDER / f"{name}.pt")
    return fitted.scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", choices=[*SHAPES, *FAMILIES], default=[*SHAPES, *FAMILIES])
    parser.add_argument("--runs", type=int, default=400, help="zoo runs of each shape")
    parser.add_argument("--steps", type=int, default=1000, help="minibatch steps per run")
    parser.add_argument("--encoder", choices=list(ENCODERS), default=None,
                        help="default: stats for a shape's ENN, any-probe+stats for an any-shape one")
    parser.add_argument("--zoo-dir", type=Path, default=None,
                        help="any-shape names: keep the shape-family zoo here, or reuse it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    command = "python scripts/publish_enns.py " + shlex.join(sys.argv[1:])
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        if name in FAMILIES:
            encoder = args.encoder or "any-probe+stats"
            scores = publish_family(name, args.runs, args.steps, encoder, args.seed, command, args.zoo_dir)
        else:
            encoder = args.encoder or "stats"
            scores = publish(name, args.runs, args.steps, encoder, args.seed, command)
        print(f"{name}: {encoder} ENN on a zoo of {args.runs} runs (of each shape); held-out Kendall tau "
              f"{scores['kendall_tau']:.3f}, MAE {100 * scores['mae']:.1f} points; written {FOLDER / (name + '.pt')}",
              flush=True)


if __name__ == "__main__":
    main()
