"""Regenerate the ENNs the package ships (`ENN.pretrained`): one per MLP shape the README uses.

For each name: a zoo of runs of that MLP with regimes from the ``any-optimizer`` distribution (SGD,
momentum and Adam; `grad-instructor zoo`), an ENN of the chosen encoder fitted on its fit runs
(`grad-instructor fit-enn`), scored on its held-out runs, and written to
``agents/enn/pretrained/NAME.pt`` with the zoo, the command and the scores in its metadata.

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python scripts/publish_enns.py            # all five
    python scripts/publish_enns.py --names digits-64-32-10 --runs 1600
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
from agents.experiments.enn_ranking import fit_enn_on_zoo
from gi_envs.spec import MLPSpec

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "agents" / "enn" / "pretrained"
SHAPES = {"digits-64-32-10": MLPSpec("digits", (32,)), "mnist-784-32-10": MLPSpec("mnist", (32,)),
          "mnist-784-100-10": MLPSpec("mnist", (100,)), "fashion-mnist-784-32-10": MLPSpec("fashion-mnist", (32,)),
          "fashion-mnist-784-100-10": MLPSpec("fashion-mnist", (100,))}


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
    parser.add_argument("--names", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--runs", type=int, default=400, help="zoo runs of each shape")
    parser.add_argument("--steps", type=int, default=1000, help="minibatch steps per run")
    parser.add_argument("--encoder", choices=list(ENCODERS), default="stats")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    command = "python scripts/publish_enns.py " + shlex.join(sys.argv[1:])
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        scores = publish(name, args.runs, args.steps, args.encoder, args.seed, command)
        print(f"{name}: {args.encoder} ENN on a zoo of {args.runs} runs; held-out Kendall tau "
              f"{scores['kendall_tau']:.3f}, MAE {100 * scores['mae']:.1f} points; written {FOLDER / (name + '.pt')}",
              flush=True)


if __name__ == "__main__":
    main()
