"""ENNs fitted on a zoo's fit runs and ranked on its held-out runs beside StatNN (`fit-enn`, `evaluate-enn`).

Every predictor is judged on the same snapshots, those of the zoo's held-out runs, which no fit
ever saw (the zoo is split by run): Kendall tau over all of them, over late ones (`is_late`: past the
middle of their run) and within each optimizer's runs, Spearman rho and mean absolute error. StatNN,
the field's bar, is fitted on the zoo's fit runs each time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agents.enn.fit import fit_zoo_enn, inputs_of_arrays
from agents.enn.network import ENN, resolve_enn
from agents.enn.quality import LATE_TRAINING, enn_outputs, is_late, ranking_quality
from agents.enn.statnn import StatNN
from agents.enn.zoo import Zoo
from agents.enn.zoo_family import load_zoos
from agents.errors import parameter_error
from agents.report import atomic_write_text, correlation_text, markdown_table, write_scatter
from gi_envs.spec import ImageSpec

COLUMNS = ["predictor", "encoder", "Kendall tau", "tau, late training", "Spearman rho", "MAE (points)", "snapshots"]
STATNN = "StatNN (GBM on layer statistics)"


def held_out_scores(predicted: np.ndarray, measured: np.ndarray, stage: np.ndarray,
                    groups: np.ndarray | None = None) -> dict[str, float]:
    """Ranking quality of predictions on held-out snapshots: over all of them, over late ones and, with
    `groups` (each snapshot's optimizer, say), within each group (``kendall_tau_<group>``)."""
    whole = ranking_quality(predicted, measured)
    late = is_late(stage)
    scores = {"kendall_tau": whole["kendall_tau"],
              "kendall_tau_late": ranking_quality(predicted[late], measured[late])["kendall_tau"],
              "spearman_rho": whole["spearman_rho"], "mae": whole["mae"], "n": whole["n"]}
    for group in [] if groups is None else sorted(set(groups)):
        inside = groups == group
        scores[f"kendall_tau_{group}"] = ranking_quality(predicted[inside], measured[inside])["kendall_tau"]
    return scores


def encoder_label(enn: ENN) -> str:
    """What an ENN reads, in a table cell: ``stats``, or ``image mean+rms @ 0.15``."""
    if enn.image_spec is None:
        return enn.encoder_type
    return f"image {'+'.join(enn.image_spec.stats)} @ {enn.image_spec.resolution:g}"


def enn_predictions(enn: ENN, zoo: Zoo, mask: np.ndarray) -> np.ndarray:
    """The ENN's calibrated predictions for the zoo's snapshots in `mask`."""
    enn.check_shapes(zoo.spec.mlp.layer_shapes)
    return enn_outputs(enn, inputs_of_arrays(enn, [w[mask] for w in zoo.weights], [b[mask] for b in zoo.biases]))


def statnn_predictions(zoo: Zoo, target: str, seed: int = 0) -> np.ndarray:
    """StatNN fitted on the zoo's fit runs, predicting every held-out snapshot."""
    fit, held = ~zoo.held_out, zoo.held_out
    model = StatNN(seed).fit([w[fit] for w in zoo.weights], [b[fit] for b in zoo.biases], zoo.targets(target)[fit])
    return model.estimated_accuracy([w[held] for w in zoo.weights], [b[held] for b in zoo.biases])


@dataclass
class FittedENN:
    """An ENN fitted on a zoo, with its held-out scores and the seconds the fit took."""

    enn: ENN
    scores: dict[str, float]
    seconds: float
    fit_runs: int


def fit_enn_on_zoo(zoo_path: Path | Sequence[Path], encoder: str, target: str, out: Path, epochs: int = 200,
                   seed: int = 0, image: ImageSpec | None = None, encoder_options: dict | None = None,
                   probe_inputs: np.ndarray | None = None) -> FittedENN:
    """Fit an ENN on the zoo's fit runs, score it on the held-out ones, and save it (with the scores) to `out`.

    :param zoo_path: a zoo file, or several zoo files or folders of them (`load_zoos`) of one data set: their fit
        runs fit one ENN (an any-shape one where their shapes differ), their held-out runs score it, pooled and per
        shape.
    """
    if out.is_dir():
        raise parameter_error(IsADirectoryError, "{out} is a folder; give the ENN file's path, e.g. "
                              + str(out / "enn.pt"), out=out)
    paths = [zoo_path] if isinstance(zoo_path, (str, Path)) else list(zoo_path)
    zoos = load_zoos(paths)
    for zoo in zoos:
        zoo.targets(target)  # a bad target fails before any fitting
    start = time.perf_counter()
    named = str(paths[0]) if len(paths) == 1 else ", ".join(map(str, paths))
    enn = fit_zoo_enn(zoos if len(zoos) > 1 else zoos[0], encoder, target, image, epochs=epochs, seed=seed,
                      zoo_path=named, encoder_options=encoder_options, probe_inputs=probe_inputs)
    seconds = time.perf_counter() - start
    scores = pooled_held_out_scores(enn, zoos, target)
    enn.metadata["quality"] = {"zoo": named, "target": target, **scores}
    if len(zoos) > 1:  # per shape of a shape family (a task-family zoo's members are a run or a few: not scored)
        enn.metadata["quality"]["per_shape"] = {
            "-".join(map(str, z.spec.mlp.layer_sizes)): pooled_held_out_scores(enn, [z], target) for z in zoos
            if z.spec.tasks is None}
    enn.save(out)
    return FittedENN(enn, scores, seconds, sum(int((~z.held_out_runs).sum()) for z in zoos))


def pooled_held_out_scores(enn: ENN, zoos: Sequence[Zoo], target: str = "current", every_run: bool = False
                           ) -> dict[str, float]:
    """`held_out_scores` of `enn` over the held-out runs of all `zoos` together (a task-family zoo's member may
    hold none), or with `every_run` over all their snapshots (zoos it was never fitted on)."""
    masks = [np.ones(len(z), dtype=bool) if every_run else z.held_out for z in zoos]
    parts = [(enn_predictions(enn, z, m), z.targets(target)[m], z.stage[m], z.optimizer[m])
             for z, m in zip(zoos, masks) if m.any()]
    return held_out_scores(*(np.concatenate(column) for column in zip(*parts)))


def load_checked(zoo: Zoo, enn_paths: list[Path]) -> list[tuple[Path, ENN]]:
    """Every ENN (a file, or the name of a shipped one), loaded and checked against the zoo's MLPs (before
    anything is fitted)."""
    enns = []
    for path in enn_paths:
        enn = resolve_enn(path)
        try:
            enn.check_shapes(zoo.spec.mlp.layer_shapes)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        enns.append((path, enn))
    return enns


def evaluate_on_zoo(zoo_path: Path, enn_paths: list[Path], out: Path, target: str = "current",
                    seed: int = 0) -> str:
    """Score every ENN and StatNN on the zoo's held-out runs; write results.csv, results.md, scatter.png.

    :return: the Markdown report.
    """
    zoo = Zoo.load(zoo_path)
    measured_all = zoo.targets(target)
    enns = load_checked(zoo, enn_paths)  # every file is checked before StatNN spends its minute
    held = zoo.held_out
    measured, stage, optimizer = measured_all[held], zoo.stage[held], zoo.optimizer[held]
    predictions = {(STATNN, "—"): statnn_predictions(zoo, target, seed)}
    for path, enn in enns:
        predictions[(path.name, encoder_label(enn))] = enn_predictions(enn, zoo, held)
    records = [{"predictor": name, "encoder": encoder, **held_out_scores(predicted, measured, stage, optimizer)}
               for (name, encoder), predicted in predictions.items()]
    table = pd.DataFrame(records)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    groups = sorted(set(optimizer))
    rows = [[r["predictor"], r["encoder"], correlation_text(r["kendall_tau"]), correlation_text(r["kendall_tau_late"]),
             *[correlation_text(r[f"kendall_tau_{g}"]) for g in groups], correlation_text(r["spearman_rho"]),
             f"{100 * r['mae']:.1f}",
             r["n"]] for r in records]
    columns = [*COLUMNS[:4], *[f"tau, {g} runs" for g in groups], *COLUMNS[4:]]
    arch = "-".join(map(str, zoo.spec.mlp.layer_sizes))
    notes = "".join(f"Note: {path.name} was made for {enn.mlp_spec.dataset} MLPs and is scored here on "
                    f"{zoo.spec.mlp.dataset} ones (same weight shapes).\n" for path, enn in enns
                    if enn.mlp_spec.dataset != zoo.spec.mlp.dataset)
    report = (f"Held-out runs of {zoo_path} ({zoo.spec.mlp.dataset} {arch}, {int(zoo.held_out_runs.sum())} runs, "
              f"{int(held.sum())} snapshots), predicting {target} validation accuracy; late training = stage > "
              f"{LATE_TRAINING:g}.\n{notes}\n" + markdown_table(columns, rows))
    atomic_write_text(out / "results.md", report + "\n")
    write_scatter(out / "scatter.png", {name: (measured, predicted) for (name, _), predicted in predictions.items()},
                  xlabel=f"measured {target} val accuracy", ylabel="predicted")
    return report
