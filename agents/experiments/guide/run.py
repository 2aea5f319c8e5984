"""The `guide` driver: for each regime, its ENN, its rows, its table; then the files and the W&B run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from agents.enn.network import ENN
from agents.enn.quality import collect_snapshots, quality_by_stage
from agents.errors import MissingDependency
from agents.experiments.baselines import TRAINERS, check_trainer
from agents.experiments.guide.config import (
    ENN_OF_ROW,
    LR_TUNED_ROWS,
    ROW_NAMES,
    TUNED_ON_ROW,
    Regime,
    check_rows,
    load_guide_config,
)
from agents.experiments.guide.rows import RowResult, build_enn, regime_zoo, train_row, tuned_enn_setting, tuned_lr
from agents.report import atomic_write_text, markdown_table, mean_std, welch_p, write_bars, write_curves
from agents.rl import tracking
from agents.seeds import TUNING_SEEDS, quality_seeds

QUALITY_RUNS = 16  # unseen training runs of the regime on which the ENN's ranking is reported
NORM_ROWS = ("bp", "he", "enn", "zoo-enn", "enn-init")  # rows whose weight norms are plotted side by side


def enn_families(rows: list[str]) -> list[str]:
    """The regime fields (`enn`, `zoo_enn`, `init_enn`) whose ENNs `rows` need, in row order."""
    return list(dict.fromkeys(ENN_OF_ROW[r] for r in rows if r in ENN_OF_ROW))


def check_before_work(regimes: list[Regime], rows: list[str]) -> None:
    """Everything that can fail on the user's input, before anything trains: the baseline packages the
    rows need import, and every ENN file exists, loads and fits its regime's MLPs."""
    for row in rows:
        if row in TRAINERS:
            try:
                check_trainer(row)
            except MissingDependency as error:
                raise MissingDependency(f"row {row!r}: {error}") from error
    for regime in regimes:
        for family in enn_families(rows):
            source = getattr(regime, family)
            try:
                if "path" in source:
                    ENN.load(source["path"]).check_shapes(regime.mlp.layer_shapes)
                if "zoo" in source:
                    regime_zoo(regime, source)
            except (OSError, ValueError) as error:
                raise type(error)(f"regime {regime.name!r}, {family}: {error}") from error


def prepare_enn(regime: Regime, family: str, out: Path) -> tuple[ENN, float, str]:
    """One of the regime's ENNs (saved as `<family>_<regime>.pt`), its tuned setting (guidance weight,
    or step size for ``enn-init``), and a line on both.

    The ranking quality is measured on the regime's own training runs, drawn as the ENN's own
    image (`ENN.image_spec`), so an ENN of ``("mean", "rms")`` images gets those; a ``stats`` ENN
    reads the runs' weights.
    """
    source = getattr(regime, family)
    print(f"== {regime.name}: building the ENN `{family}` ({source})", flush=True)
    enn = build_enn(regime, source)
    enn.check_shapes(regime.mlp.layer_shapes)
    enn.save(out / f"{family}_{regime.name}.pt")
    snapshots = collect_snapshots(regime.zoo_env_kwargs(enn.image_spec), quality_seeds(QUALITY_RUNS),
                                  keep_weights=enn.encoder_type != "image")
    quality = quality_by_stage(enn, snapshots)
    source_meta = enn.metadata.get("source", {})
    described = f"{enn.encoder_type} encoder, {source_meta.get('kind', 'file')}"
    aim = "the accuracy each run ends with" if source_meta.get("target") == "final" else "current accuracy"
    line = (f"ENN `{family}` ({described}): ranking quality ({aim}) on {QUALITY_RUNS} unseen training runs of this "
            f"regime, Kendall tau {quality['all']['kendall_tau']:.2f} (late training {quality['late']['kendall_tau']:.2f}).")
    found = tuned_enn_setting(regime, TUNED_ON_ROW[family], enn)
    what = "Step size" if family == "init_enn" else "Guidance weight"
    if isinstance(found, float):
        return enn, found, f"{line} {what} {found:g}."
    return enn, found.best, f"{line} {found.describe(what)}"


def train_rows(regime: Regime, rows: list[str], seeds: list[int], enns: dict[str, tuple[ENN, float]],
               out: Path) -> dict[str, RowResult]:
    """Every row of one regime, each with its tuned learning rate (and its ENN and setting from `enns`,
    by family); checkpoints in `out/mlps/`."""
    results = {}
    for row in rows:
        enn, weight = enns.get(ENN_OF_ROW.get(row, ""), (None, 0.0))
        lr, lr_scores = tuned_lr(regime, row)
        if lr_scores:
            print(f"== {regime.name}: {ROW_NAMES[row]}: validation accuracy per lr "
                  + ", ".join(f"{k:g}: {100 * v:.2f}" for k, v in lr_scores.items()) + f" -> lr {lr:g}", flush=True)
        print(f"== {regime.name}: {ROW_NAMES[row]}, {len(seeds)} seeds x {regime.epochs} epochs", flush=True)
        results[row] = train_row(regime, row, seeds, enn, weight, lr)
        results[row].mlp.save(out / "mlps" / f"{regime.name}_{row}.pt", dataset=regime.mlp.dataset, seeds=seeds,
                              regime=regime.name, row=row, lr=lr)
    return results


def write_weight_norms(path_stem: Path, results: dict[str, RowResult]) -> None:
    """Per-layer weight norms along training of the `NORM_ROWS` that ran, one CSV + PNG per layer."""
    shown = {row: results[row].weight_norms for row in NORM_ROWS if row in results}
    if not shown:
        return
    layers = sorted(next(iter(shown.values())).layer.unique())
    for layer in layers:
        curves = {ROW_NAMES[row]: norms[norms.layer == layer].norm.to_numpy()[None] for row, norms in shown.items()}
        steps = next(iter(shown.values()))
        write_curves(path_stem.with_name(f"{path_stem.name}_layer{layer}"), curves,
                     ylabel=f"|W{layer}| (Frobenius, mean over seeds)", xlabel="SGD step",
                     x=steps[steps.layer == layer].step.to_numpy())


def regime_section(regime: Regime, rows: list[str], seeds: list[int], results: dict[str, RowResult],
                   enn_line: str) -> str:
    """The Markdown section of one regime: header, table (Δ and Welch p against BP), notes."""
    bp = results["bp"].per_seed if "bp" in results else None
    table_rows = []
    for row, result in results.items():
        s = result.per_seed
        gap = s.train_accuracy - s.test_accuracy
        delta = "—" if bp is None or row == "bp" else f"{100 * (s.test_accuracy.mean() - bp.test_accuracy.mean()):+.2f}"
        p = float("nan") if bp is None or row == "bp" else welch_p(s.test_accuracy, bp.test_accuracy)
        table_rows.append([ROW_NAMES[row], mean_std(s.test_accuracy, digits=2), mean_std(s.train_accuracy, digits=2),
                           mean_std(gap, digits=2), delta, "—" if np.isnan(p) else f"{p:.3g}",
                           f"{result.lr:g}", f"{result.seconds_per_epoch:.3g}"])
    arch = "-".join(map(str, regime.layer_sizes))
    header = (f"### {regime.mlp.dataset}, regime `{regime.name}`: {arch} MLP, SGD lr {regime.lr}, batch "
              f"{regime.batch_size}, {regime.epochs} epoch(s), {len(seeds)} seeds"
              + (f" ({regime.note})" if regime.note else ""))
    table = markdown_table(["row", "test acc (%)", "train acc (%)", "train − test (points)",
                            "Δ test vs BP (points)", "Welch p vs BP", "lr", "s / epoch"], table_rows)
    lr_line = ""
    if regime.lr_grid and set(rows) & set(LR_TUNED_ROWS):
        lr_line = (f"Learning rates of the lr-tuned rows chosen from {regime.lr_grid} on validation accuracy "
                   f"of seeds {list(TUNING_SEEDS)}.")
        ends = [f"{ROW_NAMES[r]} ({results[r].lr:g})" for r in LR_TUNED_ROWS
                if r in results and results[r].lr in (min(regime.lr_grid), max(regime.lr_grid))]
        if ends:
            lr_line += f" At an end of that grid, so the best rate may lie beyond it: {', '.join(ends)}."
    return "\n\n".join(x for x in [header, table, enn_line, lr_line] if x)


def run_guide(config_path: str | Path, out: Path, wandb_mode: str = "offline", seeds: list[int] | None = None,
              rows: list[str] | None = None, regime_names: list[str] | None = None) -> str:
    """Run every regime of a guide config; write results.csv, results.md, PNGs and a W&B run.

    Also kept: each regime's ENN (`enn_<regime>.pt`) and each row's trained MLPs
    (`mlps/<regime>_<row>.pt`, a `BatchedMLP` checkpoint), e.g. for `grad-instructor inspect`.

    `seeds`, `rows` and `regime_names` narrow or override the config's (e.g. to add baseline rows
    to an earlier run's table: a row depends only on its regime and the seeds, never on which
    other rows ran).

    :return: the Markdown report.
    """
    regimes, config_seeds, config_rows = load_guide_config(config_path)
    seeds = list(seeds or config_seeds)
    rows = check_rows(list(rows or config_rows), "--rows")
    if regime_names:
        unknown = sorted(set(regime_names) - {r.name for r in regimes})
        if unknown:
            raise ValueError(f"--regimes: unknown regime(s) {unknown}; {config_path} has {[r.name for r in regimes]}")
        regimes = [r for r in regimes if r.name in regime_names]
    check_before_work(regimes, rows)
    out.mkdir(parents=True, exist_ok=True)
    run = tracking.start_run(out, wandb_mode, name=f"guide-{out.name}", job_type="guide",
                             config={"config": str(config_path), "seeds": seeds, "rows": rows,
                                     "regimes": [asdict(r) for r in regimes]})
    frames, sections, bars = [], [], {}
    try:
        for regime in regimes:
            enns, enn_lines = {}, []
            for family in enn_families(rows):
                enn, weight, line = prepare_enn(regime, family, out)
                enns[family] = (enn, weight)
                enn_lines.append(line)
            results = train_rows(regime, rows, seeds, enns, out)
            for row, result in results.items():
                frames.append(result.per_seed.assign(regime=regime.name, row=row, lr=result.lr,
                                                     seconds_per_epoch=result.seconds_per_epoch))
                bars.setdefault(regime.name, {})[ROW_NAMES[row]] = result.per_seed.test_accuracy.to_numpy()
            for row in ("enn", "zoo-enn"):
                if row in results and results[row].guidance is not None and results[row].guidance.history:
                    suffix = "" if row == "enn" else f"_{row}"
                    results[row].guidance.write_history(out / f"guidance_ratio_{regime.name}{suffix}")
            write_weight_norms(out / f"weight_norms_{regime.name}", results)
            sections.append(regime_section(regime, rows, seeds, results, "\n\n".join(enn_lines)))
        report = "\n\n".join(sections)
        results_frame = pd.concat(frames, ignore_index=True)
        atomic_write_text(out / "results.csv", results_frame.to_csv(index=False))
        atomic_write_text(out / "results.md", report + "\n")
        png = write_bars(out / "test_accuracy", bars, ylabel="test accuracy")
        tracking.log_table(run, "results", results_frame)
        tracking.log_image(run, "test_accuracy", png)
    finally:
        run.finish()
    return report
