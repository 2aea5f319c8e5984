"""One ENN for any width and depth: how well do the any-shape encoders rank MLPs of each shape, seen and unseen?

For each data set, a shape-family zoo (`agents.enn.zoo_family.SHAPE_FAMILY`: widths 16 to 256, one to
three hidden layers, ``--runs`` runs per shape, any-optimizer regimes) fits one ENN per any-shape encoder
(``any-stats``, ``any-probe+stats``) on its fit runs. Each is scored, shape by shape, on:

- the family's held-out runs of every member shape;
- every run of zoos of `UNSEEN_SHAPES` (inside the family's range, never fitted on; family seed 1);
- every run of fresh zoos of the shapes the package ships a shape-specific ENN for (family seed 2), beside
  that shipped ENN: the any-shape ENN against the specialist on the specialist's own shape.

StatNN, which reads one shape only, is fitted on each member's own fit runs (in-family shapes only). The
shipped shape-specific ENNs are scored wherever their shape appears. With ``--specialist-zoos`` (plain zoos of
one shape, `grad-instructor zoo`), shape-specific ``stats`` and ``probe+stats`` ENNs are fitted on as many of
their fit runs as the family has and scored on the same MLPs of their shape: the specialist at the same zoo
budget. Zoos are kept in ``--zoo-dir`` and reused.

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/enn_any_shape.py --datasets digits --runs 200 \\
        --test-runs 50 --zoo-dir runs/zoos/family --specialist-zoos runs/zoos/digits-3200.npz \\
        --out runs/enn-any-shape-digits
    python bench/enn_any_shape.py --datasets digits --runs 6 --test-runs 4 --steps 100 --out /tmp/any-shape
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
from agents.enn.network import ENN, pretrained_name, pretrained_names
from agents.enn.zoo import Zoo
from agents.enn.zoo_family import SHAPE_FAMILY, UNSEEN_SHAPES, ZooFamilySpec, shape_label, train_zoo_family
from agents.experiments.enn_ranking import enn_predictions, held_out_scores, pooled_held_out_scores, statnn_predictions
from agents.report import atomic_write_text, markdown_table

ANY_SHAPE_ENCODERS = ("any-stats", "any-probe+stats")
STATNN = "StatNN, fitted on the shape's own fit runs"
SPECIALIST = "shipped shape-specific ENN"


def family(dataset: str, shapes: tuple[tuple[int, ...], ...], runs: int, steps: int, seed: int,
           zoo_dir: Path | None, what: str) -> list[Zoo]:
    """The zoos of one family (read from `zoo_dir` where they are there already)."""
    start = time.perf_counter()
    folder = zoo_dir / f"{dataset}-{what}-seed{seed}-{runs}x{steps}" if zoo_dir else None
    zoos = train_zoo_family(ZooFamilySpec(dataset, shapes, runs, steps, seed=seed), folder)
    print(f"{dataset}: {what} zoos ({len(shapes)} shapes x {runs} runs) in {time.perf_counter() - start:.0f} s",
          flush=True)
    return zoos


def specialist_for(zoo: Zoo) -> ENN | None:
    """The shipped shape-specific ENN for the zoo's MLPs, if the package ships one."""
    name = pretrained_name(zoo.spec.mlp)
    return ENN.pretrained(name) if name in pretrained_names() else None


def nested_subset(zoo: Zoo, size: int, seed: int) -> Zoo:
    """The zoo with the fit runs of a zoo of `size` runs only (the first of a fixed shuffle: nested), and every
    held-out run."""
    fit_runs = np.random.default_rng(seed).permutation(np.flatnonzero(~zoo.held_out_runs))
    n_fit = round(size * (1 - zoo.spec.held_out))
    return zoo.select_runs(np.concatenate([fit_runs[:n_fit], np.flatnonzero(zoo.held_out_runs)]))


def specialists(paths: list[Path], dataset: str, runs: int, epochs: int, seed: int) -> dict[tuple, dict[str, ENN]]:
    """Shape-specific ``stats`` and ``probe+stats`` ENNs, each fitted on `runs` fit runs of a plain zoo of `dataset`
    (a fixed shuffle of its fit runs), by the zoo's hidden widths."""
    found = {}
    for path in paths:
        zoo = Zoo.load(path)
        if zoo.spec.mlp.dataset != dataset:
            continue
        fit_runs = np.random.default_rng(seed).permutation(np.flatnonzero(~zoo.held_out_runs))
        if runs > len(fit_runs):
            raise ValueError(f"{path} has {len(fit_runs)} fit runs; the family's budget is {runs}")
        subset = zoo.select_runs(fit_runs[:runs])
        found[zoo.spec.mlp.hidden_sizes] = {
            f"shape-specific {encoder} ENN, {runs} runs of this shape": fit_zoo_enn(subset, encoder, epochs=epochs,
                                                                                   seed=seed, progress=False)
            for encoder in ("stats", "probe+stats")}
        print(f"  shape-specific ENNs fitted on {runs} runs of {path}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist", "fashion-mnist"],
                        choices=["digits", "mnist", "fashion-mnist"])
    parser.add_argument("--runs", type=int, default=200, help="runs per shape of the fitting family")
    parser.add_argument("--test-runs", type=int, default=50, help="runs per shape of the unseen and fresh zoos")
    parser.add_argument("--steps", type=int, default=1000, help="minibatch steps per run")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs of every ENN's fit (early-stopped)")
    parser.add_argument("--zoo-dir", type=Path, default=None, help="keep every zoo here, or reuse it")
    parser.add_argument("--out", type=Path, default=Path("runs/enn-any-shape"))
    parser.add_argument("--seed", type=int, default=0, help="the fitting family's seed (and the fits')")
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="smaller runs per shape for a curve of pooled tau against zoo size (nested fit runs)")
    parser.add_argument("--specialist-zoos", type=Path, nargs="*", default=[],
                        help="plain zoos (one shape each) for shape-specific ENNs at the family's zoo budget")
    args = parser.parse_args()
    records = []
    for dataset in args.datasets:
        fitting = family(dataset, SHAPE_FAMILY, args.runs, args.steps, args.seed, args.zoo_dir, "family")
        unseen = family(dataset, UNSEEN_SHAPES, args.test_runs, args.steps, args.seed + 1, args.zoo_dir, "unseen")
        shipped = tuple(sorted({tuple(ENN.pretrained(n).mlp_spec.hidden_sizes) for n in pretrained_names()
                                if n.startswith(f"{dataset}-") and not ENN.pretrained(n).any_shape}))
        fresh = family(dataset, shipped, args.test_runs, args.steps, args.seed + 2, args.zoo_dir, "fresh") \
            if shipped else []
        enns = {}
        for encoder in ANY_SHAPE_ENCODERS:
            start = time.perf_counter()
            enns[encoder] = fit_zoo_enn(fitting, encoder, epochs=args.epochs, seed=args.seed, progress=False)
            pooled = pooled_held_out_scores(enns[encoder], fitting)
            print(f"  {encoder}: fitted in {time.perf_counter() - start:.0f} s; pooled held-out tau "
                  f"{pooled['kendall_tau']:.3f}", flush=True)
            records.append({"data set": dataset, "MLPs": "family, held-out runs", "shape": "all",
                            "predictor": encoder, "runs per shape": args.runs, **pooled})
            for size in sorted(s for s in args.sizes if s < args.runs):  # the curve: fewer fit runs, same held-out
                smaller = [nested_subset(z, size, args.seed) for z in fitting]
                enn = fit_zoo_enn(smaller, encoder, epochs=args.epochs, seed=args.seed, progress=False)
                records.append({"data set": dataset, "MLPs": "family, held-out runs", "shape": "all",
                                "predictor": encoder, "runs per shape": size,
                                **pooled_held_out_scores(enn, smaller)})
        budget = specialists(args.specialist_zoos, dataset, args.runs * len(SHAPE_FAMILY), args.epochs, args.seed)
        groups = [("family, held-out runs", z, z.held_out) for z in fitting]
        groups += [("unseen shape, every run", z, np.ones(len(z), dtype=bool)) for z in unseen]
        groups += [("fresh zoo, every run", z, np.ones(len(z), dtype=bool)) for z in fresh]
        for what, zoo, mask in groups:
            measured, stage, optimizer = zoo.val_accuracy[mask], zoo.stage[mask], zoo.optimizer[mask]
            row = {"data set": dataset, "MLPs": what, "shape": shape_label(zoo.spec.mlp.hidden_sizes)}
            for encoder, enn in enns.items():
                records.append({**row, "predictor": encoder, **held_out_scores(
                    enn_predictions(enn, zoo, mask), measured, stage, optimizer)})
            if what.startswith("family"):
                records.append({**row, "predictor": STATNN, **held_out_scores(
                    statnn_predictions(zoo, "current", args.seed), measured, stage, optimizer)})
            for label, enn in budget.get(zoo.spec.mlp.hidden_sizes, {}).items():
                records.append({**row, "predictor": label,
                                **held_out_scores(enn_predictions(enn, zoo, mask), measured, stage, optimizer)})
            specialist = specialist_for(zoo)
            if specialist is not None:
                records.append({**row, "predictor": f"{SPECIALIST} ({pretrained_name(zoo.spec.mlp)})",
                                **held_out_scores(enn_predictions(specialist, zoo, mask), measured, stage, optimizer)})
    frame = pd.DataFrame(records)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.csv", frame.to_csv(index=False))
    atomic_write_text(args.out / "args.json", json.dumps(vars(args), default=str, indent=2))
    frame["runs per shape"] = frame["runs per shape"].fillna(args.runs).astype(int)
    main_rows = frame[frame["runs per shape"] == args.runs]
    rows = [[r["data set"], r["shape"], r["MLPs"], r["predictor"], int(r["n"]), f"{r['kendall_tau']:.3f}",
             f"{r['kendall_tau_late']:.3f}", f"{100 * r['mae']:.1f}"] for _, r in main_rows.iterrows()]
    pooled = frame[frame["shape"] == "all"].pivot_table(index=["data set", "predictor"], columns="runs per shape",
                                                        values="kendall_tau")
    curve = markdown_table(["data set", "predictor", *[f"tau at {c} runs per shape" for c in pooled.columns]],
                           [[*key, *[f"{v:.3f}" for v in values]] for key, values in zip(pooled.index, pooled.values)])
    table = markdown_table(["data set", "hidden widths", "MLPs", "predictor", "snapshots", "Kendall tau", "tau, late",
                            "MAE (points)"], rows)
    report = (f"Fitting family: {len(SHAPE_FAMILY)} shapes x {args.runs} runs, {args.steps} steps each (seed "
              f"{args.seed}); unseen and fresh zoos: {args.test_runs} runs per shape; "
              f"{torch.get_num_threads()} torch thread(s).\n\n{table}\n\n"
              f"Pooled held-out tau against zoo size:\n\n{curve}")
    atomic_write_text(args.out / "results.md", report + "\n")
    print(f"\n{report}\n\nWritten: {args.out}/results.md")


if __name__ == "__main__":
    main()
