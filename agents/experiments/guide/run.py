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
from agents.experiments.guide.config import LR_TUNED_ROWS, ROW_NAMES, Regime, check_rows, load_guide_config
from agents.experiments.guide.rows import RowResult, regime_enn, train_row, tuned_guidance_weight, tuned_lr
from agents.report import atomic_write_text, markdown_table, mean_std, welch_p, write_bars
from agents.rl import tracking
from agents.seeds import TUNING_SEEDS, quality_seeds

QUALITY_RUNS = 16  # unseen training runs of the regime on which the ENN's ranking is reported


def check_before_work(regimes: list[Regime], rows: list[str]) -> None:
    """Everything that can fail on the user's input, before anything trains: the baseline packages the
    rows need import, and every ENN file exists, loads and fits its regime's MLPs."""
    for row in rows:
        if row in TRAINERS:
            try:
                check_trainer(row)
            except MissingDependency as error:
                raise MissingDependency(f"row {row!r}: {error}") from error
    if any(r.startswith("enn") for r in rows):
        for regime in regimes:
            if "path" in regime.enn:
                try:
                    ENN.load(regime.enn["path"]).check_shapes(regime.mlp.layer_shapes)
                except (OSError, ValueError) as error:
                    raise type(error)(f"regime {regime.name!r}: {error}") from error


def prepare_enn(regime: Regime, out: Path) -> tuple[ENN, float, str]:
    """The regime's ENN (saved as `enn_<regime>.pt`), its guidance weight, and a line on both.

    The ranking quality is measured on the regime's own training runs, drawn as the ENN's own
    image (`ENN.image_spec`), so an ENN of ``("mean", "rms")`` images gets those; a ``stats`` ENN
    reads the runs' weights.
    """
    print(f"== {regime.name}: building the ENN ({regime.enn})", flush=True)
    enn = regime_enn(regime)
    enn.check_shapes(regime.mlp.layer_shapes)
    enn.save(out / f"enn_{regime.name}.pt")
    snapshots = collect_snapshots(regime.zoo_env_kwargs(enn.image_spec), quality_seeds(QUALITY_RUNS),
                                  keep_weights=enn.reads != "image")
    quality = quality_by_stage(enn, snapshots)
    line = (f"ENN ranking quality on {QUALITY_RUNS} unseen training runs of this regime: Kendall tau "
            f"{quality['all']['kendall_tau']:.2f} (late training {quality['late']['kendall_tau']:.2f}).")
    weight = tuned_guidance_weight(regime, enn)
    line += f" Guidance weight {weight:g}" + (
        f", chosen from {regime.guidance_weight} on validation accuracy of seeds {list(TUNING_SEEDS)}."
        if isinstance(regime.guidance_weight, list) else ".")
    return enn, weight, line


def train_rows(regime: Regime, rows: list[str], seeds: list[int], enn: ENN | None, weight: float,
               out: Path) -> dict[str, RowResult]:
    """Every row of one regime, each with its tuned learning rate; checkpoints in `out/mlps/`."""
    results = {}
    for row in rows:
        lr, lr_scores = tuned_lr(regime, row)
        if lr_scores:
            print(f"== {regime.name}: {ROW_NAMES[row]}: validation accuracy per lr "
                  + ", ".join(f"{k:g}: {100 * v:.2f}" for k, v in lr_scores.items()) + f" -> lr {lr:g}", flush=True)
        print(f"== {regime.name}: {ROW_NAMES[row]}, {len(seeds)} seeds x {regime.epochs} epochs", flush=True)
        results[row] = train_row(regime, row, seeds, enn, weight, lr)
        results[row].mlp.save(out / "mlps" / f"{regime.name}_{row}.pt", dataset=regime.mlp.dataset, seeds=seeds,
                              regime=regime.name, row=row, lr=lr)
    return results


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
            enn, weight, enn_line = None, 0.0, ""
            if any(r.startswith("enn") for r in rows):
                enn, weight, enn_line = prepare_enn(regime, out)
            results = train_rows(regime, rows, seeds, enn, weight, out)
            for row, result in results.items():
                frames.append(result.per_seed.assign(regime=regime.name, row=row, lr=result.lr,
                                                     seconds_per_epoch=result.seconds_per_epoch))
                bars.setdefault(regime.name, {})[ROW_NAMES[row]] = result.per_seed.test_accuracy.to_numpy()
            if "enn" in results and results["enn"].guidance is not None and results["enn"].guidance.history:
                results["enn"].guidance.write_history(out / f"guidance_ratio_{regime.name}")
            sections.append(regime_section(regime, rows, seeds, results, enn_line))
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
