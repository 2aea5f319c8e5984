"""The `guide` driver: for each setting, its ENNs, its rows, its table; then the files and the W&B run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from agents.enn.network import ENN
from agents.enn.quality import collect_snapshots, quality_by_stage
from agents.errors import NAME_ONLY, MissingDependency, parameter_error
from agents.experiments.baselines import check_trainer
from agents.experiments.guide.config import GuideSetting, load_guide_config
from agents.experiments.guide.registry import GUIDE_ROWS, enn_families, tuning_row
from agents.experiments.guide.rows import RowResult, train_row, tuned_enn_setting, tuned_lr
from agents.experiments.guide.sources import ENN_SOURCES, build_enn, setting_zoo, zoo_cache
from agents.report import atomic_write_text, markdown_table, mean_std, welch_p, write_bars, write_curves
from agents.rl import tracking
from agents.seeds import TUNING_SEEDS, guide_seeds, quality_seeds

QUALITY_RUNS = 16  # unseen training runs of the setting on which the ENN's ranking is reported
OUTPUTS = "results.csv, results.md, test_accuracy.png, guidance_ratio_*.png, enn_*.pt, mlps/*.pt"

log = logging.getLogger(__name__)  # progress lines; the command line prints them (`agents.cli`)


def enn_path(out: Path, family: str, setting: str) -> Path:
    """Where a run of the guide keeps a setting's ENN of `family` (``enn``, ``zoo_enn``, ``init_enn``)."""
    return out / f"{family}_{setting}.pt"


def mlps_path(out: Path, setting: str, row: str) -> Path:
    """Where a run of the guide keeps the MLPs one row trained (a `BatchedMLP` checkpoint, one per seed)."""
    return out / "mlps" / f"{setting}_{row}.pt"


def describe_enn(enn: ENN) -> str:
    """What an ENN is, in a table cell: an agent's critic, or a supervised fit (on env episodes or a zoo)."""
    source = enn.metadata.get("source", {})
    if "published" in enn.metadata:
        return f"{enn.encoder_type} encoder, shipped ({enn.metadata['published']['name']})"
    kind = source.get("kind", "file")
    what = {"critic": f"{source.get('algo', 'RL').upper()} critic",
            "supervised": "supervised on env episodes", "zoo": "supervised on a zoo"}.get(kind, "from a file")
    return f"{enn.encoder_type} encoder, {what}"


def check_before_work(settings: list[GuideSetting], rows: list[str]) -> None:
    """Everything that can fail on the user's input, before anything trains: the baseline packages the
    rows need import, and every ENN file (or shipped ENN) exists, loads and fits its setting's MLPs."""
    for row in rows:
        trainer = GUIDE_ROWS[row].trainer
        if trainer:
            try:
                check_trainer(trainer)
            except MissingDependency as error:
                raise MissingDependency(f"row {row!r}: {error}") from error
    for setting in settings:
        for family in enn_families(rows):
            source = getattr(setting, family)
            try:
                if ENN_SOURCES[source.kind].made:  # loading costs nothing; fitted ones are checked as they are fitted
                    build_enn(setting, source).check_shapes(setting.mlp.layer_shapes)
                if source.kind == "zoo":
                    setting_zoo(setting, source)
            except (OSError, ValueError) as error:
                raise type(error)(f"setting {setting.name!r}, {family}: {error}") from error


def prepare_enn(setting: GuideSetting, family: str, out: Path) -> tuple[ENN, float, str]:
    """One of the setting's ENNs (saved to `enn_path`), its tuned setting (guidance weight, or step size for
    an ENN-shaped init), and a line on both.

    The ranking quality is measured on the setting's own training runs, drawn as the ENN's own
    image (`ENN.image_spec`), so an ENN of ``("mean", "rms")`` images gets those; a ``stats`` ENN
    reads the runs' weights.
    """
    source = getattr(setting, family)
    log.info(f"== {setting.name}: building the ENN `{family}` ({source.to_dict()})")
    enn = build_enn(setting, source)
    enn.check_shapes(setting.mlp.layer_shapes)
    enn.save(enn_path(out, family, setting.name))
    snapshots = collect_snapshots(setting.episode_env_kwargs(enn.image_spec), quality_seeds(QUALITY_RUNS),
                                  keep_weights=not enn.reads_image)
    quality = quality_by_stage(enn, snapshots)
    source_meta = enn.metadata.get("source", {})
    aim = "the accuracy each run ends with" if source_meta.get("target") == "final" else "current accuracy"
    line = (f"ENN `{family}` ({enn.encoder_type} encoder, {source_meta.get('kind', 'file')}): ranking quality ({aim}) "
            f"on {QUALITY_RUNS} unseen training runs of this setting, Kendall tau {quality['all']['kendall_tau']:.2f} "
            f"(late training {quality['late']['kendall_tau']:.2f}).")
    row = tuning_row(family)
    found = tuned_enn_setting(setting, row.name, enn)
    what = "Step size" if row.enn_use == "init" else "Guidance weight"
    if isinstance(found, float):
        return enn, found, f"{line} {what} {found:g}."
    return enn, found.best, f"{line} {found.describe(what)}"


def train_rows(setting: GuideSetting, rows: list[str], seeds: list[int], enns: dict[str, tuple[ENN, float]],
               out: Path) -> dict[str, RowResult]:
    """Every row of one setting, each with its tuned learning rate (and its ENN and setting from `enns`,
    by family); checkpoints at `mlps_path`."""
    results = {}
    for row in rows:
        label = GUIDE_ROWS[row].label
        enn, weight = enns.get(GUIDE_ROWS[row].enn or "", (None, 0.0))
        lr, lr_scores = tuned_lr(setting, row)
        if lr_scores:
            log.info(f"== {setting.name}: {label}: validation accuracy per lr "
                     + ", ".join(f"{k:g}: {100 * v:.2f}" for k, v in lr_scores.items()) + f" -> lr {lr:g}")
        log.info(f"== {setting.name}: {label}, {len(seeds)} seeds x {setting.epochs} epochs")
        results[row] = train_row(setting, row, seeds, enn, weight, lr)
        results[row].mlp.save(mlps_path(out, setting.name, row), dataset=setting.mlp.dataset, seeds=seeds,
                              setting=setting.name, row=row, lr=lr)
    return results


def write_weight_norms(path_stem: Path, results: dict[str, RowResult]) -> None:
    """Per-layer weight norms along training of the rows that ran and are plotted (`GuideRow.plot_norms`),
    one CSV + PNG per layer."""
    shown = {row: result.weight_norms for row, result in results.items()
             if GUIDE_ROWS[row].plot_norms and result.weight_norms is not None}
    if not shown:
        return
    layers = sorted(next(iter(shown.values())).layer.unique())
    for layer in layers:
        curves = {GUIDE_ROWS[row].label: norms[norms.layer == layer].norm.to_numpy()[None]
                  for row, norms in shown.items()}
        steps = next(iter(shown.values()))
        write_curves(path_stem.with_name(f"{path_stem.name}_layer{layer}"), curves,
                     ylabel=f"|W{layer}| (Frobenius, mean over seeds)", xlabel="SGD step",
                     x=steps[steps.layer == layer].step.to_numpy())


def setting_section(setting: GuideSetting, rows: list[str], seeds: list[int], results: dict[str, RowResult],
                    enns: dict[str, tuple[ENN, float]], enn_line: str) -> str:
    """The Markdown section of one setting: header, table (Δ and Welch p against BP, what each row's ENN is),
    notes."""
    bp = results["bp"].per_seed if "bp" in results else None
    table_rows = []
    for row, result in results.items():
        s = result.per_seed
        gap = s.train_accuracy - s.test_accuracy
        delta = "—" if bp is None or row == "bp" else f"{100 * (s.test_accuracy.mean() - bp.test_accuracy.mean()):+.2f}"
        p = float("nan") if bp is None or row == "bp" else welch_p(s.test_accuracy, bp.test_accuracy)
        family = GUIDE_ROWS[row].enn
        enn = describe_enn(enns[family][0]) if family in enns else "—"
        table_rows.append([GUIDE_ROWS[row].label, mean_std(s.test_accuracy, digits=2),
                           mean_std(s.train_accuracy, digits=2), mean_std(gap, digits=2), delta,
                           "—" if np.isnan(p) else f"{p:.3g}", f"{result.lr:g}",
                           f"{result.seconds_per_epoch:.3g}", enn])
    arch = "-".join(map(str, setting.layer_sizes))
    regime = setting.regime
    optimizer = "SGD" if regime.optimizer == "sgd" else regime.optimizer
    header = (f"### {setting.mlp.dataset}, setting `{setting.name}`: {arch} MLP, {optimizer} lr {regime.lr}, batch "
              f"{regime.batch_size}, {setting.epochs} epoch(s), {len(seeds)} seeds"
              + (f" ({setting.note})" if setting.note else ""))
    table = markdown_table(["row", "test acc (%)", "train acc (%)", "train − test (points)",
                            "Δ test vs BP (points)", "Welch p vs BP", "lr", "s / epoch", "ENN"], table_rows)
    lr_line = ""
    tuned_rows = [r for r in rows if GUIDE_ROWS[r].tune_lr]
    if setting.lr_grid and tuned_rows:
        lr_line = (f"Learning rates of the lr-tuned rows chosen from {list(setting.lr_grid)} on validation accuracy "
                   f"of seeds {list(TUNING_SEEDS)}.")
        ends = [f"{GUIDE_ROWS[r].label} ({results[r].lr:g})" for r in tuned_rows
                if r in results and results[r].lr in (min(setting.lr_grid), max(setting.lr_grid))]
        if ends:
            lr_line += f" At an end of that grid, so the best rate may lie beyond it: {', '.join(ends)}."
    return "\n\n".join(x for x in [header, table, enn_line, lr_line] if x)


def run_guide(config_path: str | Path, out: Path, wandb_mode: str = "offline", seeds: list[int] | None = None,
              rows: list[str] | None = None, setting_names: list[str] | None = None) -> str:
    """Run every setting of a guide config; write results.csv, results.md, PNGs and a W&B run.

    Also kept: each setting's ENNs (`enn_path`) and each row's trained MLPs (`mlps_path`, a `BatchedMLP`
    checkpoint), e.g. for `grad-instructor inspect`.

    `seeds`, `rows` and `setting_names` narrow or override the config's (e.g. to add baseline rows
    to an earlier run's table: a row depends only on its setting and the seeds, never on which
    other rows ran).

    :return: the Markdown report.
    """
    settings, config_seeds, config_rows = load_guide_config(config_path)
    seeds = guide_seeds(list(seeds or config_seeds))
    rows = list(rows or config_rows)
    unknown_rows = [r for r in rows if r not in GUIDE_ROWS]
    if unknown_rows:
        raise parameter_error(ValueError, f"{{rows}}: unknown row/trainer(s) {unknown_rows}; known: {list(GUIDE_ROWS)}",
                              rows=NAME_ONLY)
    if setting_names:
        unknown = sorted(set(setting_names) - {s.name for s in settings})
        if unknown:
            raise parameter_error(ValueError, f"{{setting_names}}: unknown setting(s) {unknown}; {config_path} has "
                                  f"{[s.name for s in settings]}", setting_names=NAME_ONLY)
        settings = [s for s in settings if s.name in setting_names]
    with zoo_cache():  # zoos trained on the spot live as long as this run
        check_before_work(settings, rows)
        out.mkdir(parents=True, exist_ok=True)
        run = tracking.start_run(out, wandb_mode, name=f"guide-{out.name}", job_type="guide",
                                 config={"config": str(config_path), "seeds": seeds, "rows": rows,
                                         "settings": [s.to_dict() for s in settings]})
        frames, sections, bars = [], [], {}
        try:
            for setting in settings:
                enns, enn_lines = {}, []
                for family in enn_families(rows):
                    enn, weight, line = prepare_enn(setting, family, out)
                    enns[family] = (enn, weight)
                    enn_lines.append(line)
                results = train_rows(setting, rows, seeds, enns, out)
                for row, result in results.items():
                    frames.append(result.per_seed.assign(setting=setting.name, row=row, lr=result.lr,
                                                         seconds_per_epoch=result.seconds_per_epoch))
                    bars.setdefault(setting.name, {})[GUIDE_ROWS[row].label] = result.per_seed.test_accuracy.to_numpy()
                for row, result in results.items():
                    spec = GUIDE_ROWS[row]
                    if spec.tunes_enn and result.guidance is not None and result.guidance.history:
                        suffix = "" if row == "enn" else f"_{row}"
                        result.guidance.write_history(out / f"guidance_ratio_{setting.name}{suffix}")
                write_weight_norms(out / f"weight_norms_{setting.name}", results)
                sections.append(setting_section(setting, rows, seeds, results, enns, "\n\n".join(enn_lines)))
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
