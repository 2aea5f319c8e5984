"""How well do accuracy predictors rank MLPs trained any way? Held-out runs of a zoo, by encoder, optimizer, zoo size.

For each data set: one zoo of runs with regimes from the ``any-optimizer`` distribution (SGD, momentum,
Adam; learning rate, init scale, weight decay, data share, batch size: `agents.enn.zoo`), split by run.
Every predictor is scored on the held-out runs' snapshots (`agents.experiments.enn_ranking`, what
`grad-instructor evaluate-enn` reports): Kendall tau over all snapshots, over late ones (past the middle
of their run) and within each optimizer's runs, mean absolute error, the fit's seconds and, for an ENN,
the forward + backward pass of one MLP (what guidance pays each step).

Predictors: StatNN (gradient-boosted trees on per-layer statistics, the field's bar); ENNs with the
statistics encoder, the paper's image encoder (mean image at 0.15), the image encoder on mean + rms, the
NFN (permutation-equivariant, raw weights and biases), and the probing encoders (the MLP's outputs on 128
unlabeled training inputs, alone and beside the statistics); and the mean of StatNN's and the statistics
ENN's predictions. Each is fitted on nested subsets of the fit runs, for a curve of tau against zoo size
(``--sizes``, in runs; the held-out runs are the same at every size).

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/enn_encoders.py --datasets digits --runs 3200 \\
        --sizes 400 800 1600 3200 --out runs/enn-encoders-digits
    python bench/enn_encoders.py --datasets digits --runs 100 --sizes 50 100 --out /tmp/small
    python bench/enn_encoders.py --merge runs/enn-encoders-digits runs/enn-encoders-digits-nfn --out runs/enn-all
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from agents.enn.fit import fit_zoo_enn
from agents.enn.guidance import ENNGuidance
from agents.enn.network import ENN
from agents.enn.zoo import Zoo, ZooSpec, train_zoo
from agents.experiments.enn_ranking import enn_predictions, held_out_scores, statnn_predictions
from agents.report import atomic_write_text, markdown_table, write_curves
from gi_envs.spec import ImageSpec, MLPSpec

HIDDEN = {"digits": (32,), "mnist": (32,), "fashion-mnist": (32,)}
STATNN, COMBINED = "StatNN (GBM on per-layer statistics)", "mean of StatNN and the statistics ENN"
ENCODERS = {"statistics encoder (stats)": ("stats", None),
            "image CNN, paper's image (mean, 0.15)": ("image", ImageSpec(0.15, ("mean",))),
            "image CNN, mean + rms (0.15)": ("image", ImageSpec(0.15, ("mean", "rms"))),
            "NFN (nfn)": ("nfn", None),
            "probes: outputs on 128 training inputs (probe)": ("probe", None),
            "probes + statistics (probe+stats)": ("probe+stats", None)}


def forward_backward_ms(enn: ENN, zoo: Zoo, repeats: int = 20) -> float:
    """Milliseconds of the ENN's forward and backward pass for one MLP's weights (what a guided step adds)."""
    weights = [torch.from_numpy(w[-1:]).float() for w in zoo.weights]
    biases = [torch.from_numpy(b[-1:]).float() for b in zoo.biases]
    guidance = ENNGuidance(enn, weight=1.0, record_every=0)
    guidance.weight_gradients(weights, biases)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        guidance.weight_gradients(weights, biases)
    return 1000 * (time.perf_counter() - start) / repeats


def fit_runs_for(zoo: Zoo, size: int, seed: int) -> np.ndarray:
    """The fit runs of a zoo of `size` runs: the first share of a fixed shuffle of the fit runs (nested)."""
    fit_runs = np.random.default_rng(seed).permutation(np.flatnonzero(~zoo.held_out_runs))
    n_fit = round(size * (1 - zoo.spec.held_out))
    if n_fit > len(fit_runs):
        raise ValueError(f"size {size} needs {n_fit} fit runs; the zoo has {len(fit_runs)}")
    return fit_runs[:n_fit]


def score_row(what: str, predictor: str, size: int, zoo: Zoo, predicted: np.ndarray, seconds: float,
              cost_ms: float | None) -> dict:
    held = zoo.held_out
    return {"held-out MLPs": what, "predictor": predictor, "zoo runs": size, "fit s": seconds,
            "fwd+bwd ms": cost_ms, **held_out_scores(predicted, zoo.val_accuracy[held], zoo.stage[held],
                                                     zoo.optimizer[held])}


def write_report(frame: pd.DataFrame, intro: str, out: Path) -> None:
    """`results.md` (each predictor at its largest zoo, then tau against zoo size) and a curve per data set."""
    out.mkdir(parents=True, exist_ok=True)
    optimizers = sorted(c.removeprefix("kendall_tau_") for c in frame.columns
                        if c.startswith("kendall_tau_") and c != "kendall_tau_late")
    keys = ["held-out MLPs", "predictor"]
    # data sets and predictors in the order they were measured (StatNN, the bar, first), not alphabetical
    order = {name: i for column in keys for i, name in enumerate(frame[column].unique())} | {STATNN: -1}
    largest = frame.loc[frame.groupby(keys, sort=False)["zoo runs"].idxmax()]
    largest = largest.sort_values(keys, key=lambda column: column.map(order), kind="stable")
    rows = [[r["held-out MLPs"], r.predictor, int(r["zoo runs"]), f"{r.kendall_tau:.3f}", f"{r.kendall_tau_late:.3f}",
             *[f"{r[f'kendall_tau_{o}']:.3f}" for o in optimizers], f"{100 * r.mae:.1f}", f"{r['fit s']:.0f}",
             "—" if pd.isna(r["fwd+bwd ms"]) else f"{r['fwd+bwd ms']:.2f}"] for _, r in largest.iterrows()]
    table = markdown_table(["held-out MLPs", "predictor", "zoo runs", "Kendall tau", "tau, late",
                            *[f"tau, {o}" for o in optimizers], "MAE (points)", "fit s", "fwd+bwd ms / MLP"], rows)
    sizes = sorted(frame["zoo runs"].unique())

    def tau_at(dataset: str, predictor: str, size: int) -> str:
        cell = frame[(frame["held-out MLPs"] == dataset) & (frame.predictor == predictor) & (frame["zoo runs"] == size)]
        return f"{cell.kendall_tau.iloc[0]:.3f}" if len(cell) else "—"

    datasets = frame["held-out MLPs"].unique()
    curve_rows = [[d, p, *[tau_at(d, p, s) for s in sizes]] for d in datasets
                  for p in sorted(frame[frame["held-out MLPs"] == d].predictor.unique(), key=order.get)]
    curve = markdown_table(["held-out MLPs", "predictor", *[f"tau at {s} runs" for s in sizes]], curve_rows)
    report = f"{intro}\n\n{table}\n\nKendall tau against zoo size:\n\n{curve}"
    atomic_write_text(out / "results.md", report + "\n")
    for dataset in frame["held-out MLPs"].unique():
        part = frame[frame["held-out MLPs"] == dataset]
        curves = {p: part[part.predictor == p].set_index("zoo runs").kendall_tau.reindex(sizes).to_numpy()[None]
                  for p in part.predictor.unique()}
        write_curves(out / f"tau_vs_zoo_size_{dataset.split()[0]}", curves, x=np.array(sizes, dtype=float),
                     ylabel="Kendall tau, held-out runs", xlabel="zoo runs")
    print(f"\n{report}\n\nWritten: {out}/results.md, tau_vs_zoo_size_*.png")


def merge(folders: list[Path], out: Path) -> None:
    """One report from the `results.csv` of several runs of this script (say, the NFN run apart)."""
    frame = pd.concat([pd.read_csv(folder / "results.csv") for folder in folders], ignore_index=True)
    frame = frame.drop_duplicates(["held-out MLPs", "predictor", "zoo runs"], keep="last")
    write_report(frame, "Merged from " + ", ".join(f"`{f}`" for f in folders) + "; each folder's `args.json` has "
                 "its command's settings.", out)
    atomic_write_text(out / "results.csv", frame.to_csv(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist", "fashion-mnist"], choices=list(HIDDEN))
    parser.add_argument("--runs", type=int, default=400, help="runs of each zoo (the largest size)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="zoo sizes of the curve (default: --runs)")
    parser.add_argument("--steps", type=int, default=1000, help="minibatch steps per run")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs of every ENN's fit (early-stopped)")
    parser.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    parser.add_argument("--zoo-dir", type=Path, default=None, help="keep each zoo here (DATASET-RUNS.npz), or reuse it")
    parser.add_argument("--out", type=Path, default=Path("runs/enn-encoders"), help="folder for the tables and curves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="FOLDER",
                        help="write one report into --out from these earlier --out folders, fitting nothing")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    sizes = sorted(args.sizes or [args.runs])
    records = []
    for dataset in args.datasets:
        mlp = MLPSpec(dataset, HIDDEN[dataset])
        path = args.zoo_dir / f"{dataset}-{args.runs}.npz" if args.zoo_dir else None
        start = time.perf_counter()
        if path is not None and path.is_file():
            full = Zoo.load(path)
        else:
            full = train_zoo(ZooSpec(mlp=mlp, runs=args.runs, steps=args.steps, seed=args.seed))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                full.save(path)
        print(f"{dataset}: zoo of {args.runs} runs x {len(full.spec.stages)} snapshots in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        what = f"{dataset} {'-'.join(map(str, mlp.layer_sizes))}, {full.held_out_runs.sum()} held-out runs"
        for size in sizes:
            zoo = full.select_runs(np.concatenate([fit_runs_for(full, size, args.seed),
                                                   np.flatnonzero(full.held_out_runs)]))
            start = time.perf_counter()
            statnn = statnn_predictions(zoo, "current", args.seed)
            records.append(score_row(what, STATNN, size, zoo, statnn, time.perf_counter() - start, None))
            for name in args.encoders:
                encoder, image = ENCODERS[name]
                start = time.perf_counter()
                enn = fit_zoo_enn(zoo, encoder, "current", image, epochs=args.epochs, seed=args.seed, progress=False)
                seconds = time.perf_counter() - start
                predicted = enn_predictions(enn, zoo, zoo.held_out)
                records.append({**score_row(what, name, size, zoo, predicted, seconds, forward_backward_ms(enn, zoo)),
                                "best epoch": enn.metadata["source"]["best_epoch"],
                                "epochs run": enn.metadata["source"]["epochs_run"]})
                if encoder == "stats":
                    records.append(score_row(what, COMBINED, size, zoo, (predicted + statnn) / 2, seconds, None))
                print(f"  {size} runs, {name}: tau {records[-1 - (encoder == 'stats')]['kendall_tau']:.3f} "
                      f"({seconds:.0f} s)", flush=True)
    frame = pd.DataFrame(records)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.csv", frame.to_csv(index=False))
    atomic_write_text(args.out / "args.json", json.dumps(vars(args), default=str, indent=2))
    intro = (f"Zoos of {args.runs} runs (any-optimizer regimes), {args.steps} steps each; tau on the held-out runs' "
             f"snapshots; {torch.get_num_threads()} torch thread(s).")
    write_report(frame, intro, args.out)


if __name__ == "__main__":
    main()
