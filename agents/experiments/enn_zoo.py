"""`fit-enn` and `evaluate-enn`: supervised ENNs fitted on a zoo, scored on its held-out runs beside StatNN.

Every predictor is judged on the same snapshots, those of the zoo's held-out runs, which no fit
ever saw (the zoo is split by run): Kendall tau over all of them and over late ones (the second
half of training), Spearman rho and mean absolute error. StatNN, the field's bar, is fitted on the
zoo's fit runs each time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from agents.enn.fit import fit_zoo_enn, inputs_of_arrays
from agents.enn.network import ENN
from agents.enn.quality import predict, ranking_quality
from agents.enn.statnn import StatNN
from agents.enn.zoo import Zoo
from agents.report import atomic_write_text, markdown_table, write_scatter
from gi_envs.spec import ImageSpec

LATE = 0.5  # snapshots at or after this share of their run count as late training
COLUMNS = ["predictor", "encoder", "Kendall tau", "tau, late training", "Spearman rho", "MAE (points)", "snapshots"]


def held_out_scores(predicted: np.ndarray, measured: np.ndarray, stage: np.ndarray) -> dict[str, float]:
    """Ranking quality of predictions on held-out snapshots, over all of them and over late ones."""
    whole = ranking_quality(predicted, measured)
    late = stage >= LATE
    return {"kendall_tau": whole["kendall_tau"], "kendall_tau_late": ranking_quality(predicted[late],
                                                                                      measured[late])["kendall_tau"],
            "spearman_rho": whole["spearman_rho"], "mae": whole["mae"], "n": whole["n"]}


def encoder_label(enn: ENN) -> str:
    """What an ENN reads, in a table cell: ``stats``, or ``image mean+rms @ 0.15``."""
    if enn.image_spec is None:
        return enn.encoder_type
    return f"image {'+'.join(enn.image_spec.stats)} @ {enn.image_spec.resolution:g}"


def enn_predictions(enn: ENN, zoo: Zoo, mask: np.ndarray) -> np.ndarray:
    """The ENN's calibrated predictions for the zoo's snapshots in `mask`."""
    enn.check_shapes(zoo.spec.mlp.layer_shapes)
    return predict(enn, inputs_of_arrays(enn, [w[mask] for w in zoo.weights]))


def statnn_predictions(zoo: Zoo, target: str, seed: int = 0) -> np.ndarray:
    """StatNN fitted on the zoo's fit runs, predicting every held-out snapshot."""
    fit, held = ~zoo.held_out, zoo.held_out
    model = StatNN(seed).fit([w[fit] for w in zoo.weights], [b[fit] for b in zoo.biases], zoo.targets(target)[fit])
    return model.predict([w[held] for w in zoo.weights], [b[held] for b in zoo.biases])


def run_fit_enn(zoo_path: Path, encoder: str, target: str, out: Path, epochs: int = 200, seed: int = 0,
                image: ImageSpec | None = None) -> dict[str, float]:
    """Fit an ENN on the zoo's fit runs, save it to `out`, and print its held-out scores."""
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give the ENN file's path, e.g. {out / 'enn.pt'}")
    zoo = Zoo.load(zoo_path)
    zoo.targets(target)  # a bad target fails before any fitting
    start = time.perf_counter()
    enn = fit_zoo_enn(zoo, encoder, target, image, epochs=epochs, seed=seed, zoo_path=str(zoo_path))
    held = zoo.held_out
    scores = held_out_scores(enn_predictions(enn, zoo, held), zoo.targets(target)[held], zoo.stage[held])
    enn.metadata["quality"] = {"zoo": str(zoo_path), "target": target, **scores}
    enn.save(out)
    print(f"{encoder} ENN fitted on {int((~zoo.held_out_runs).sum())} runs of {zoo_path} ({target} accuracy) in "
          f"{time.perf_counter() - start:.0f} s, best epoch {enn.metadata['source']['best_epoch'] + 1} of "
          f"{enn.metadata['source']['epochs_run']} run (at most {epochs}). "
          f"On the {int(zoo.held_out_runs.sum())} held-out runs: Kendall tau {scores['kendall_tau']:.3f} "
          f"(late {scores['kendall_tau_late']:.3f}), MAE {100 * scores['mae']:.1f} points. Written: {out}")
    return scores


def run_evaluate_enn(zoo_path: Path, enn_paths: list[Path], out: Path, target: str = "current",
                     seed: int = 0) -> str:
    """Score every ENN and StatNN on the zoo's held-out runs; write results.csv, results.md, scatter.png.

    :return: the Markdown table.
    """
    zoo = Zoo.load(zoo_path)
    measured_all = zoo.targets(target)
    enns = []
    for path in enn_paths:  # every file is checked before StatNN spends its minute
        enn = ENN.load(path)
        try:
            enn.check_shapes(zoo.spec.mlp.layer_shapes)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        enns.append((path, enn))
    held = zoo.held_out
    measured, stage = measured_all[held], zoo.stage[held]
    predictions = {("StatNN (GBM on layer statistics)", "—"): statnn_predictions(zoo, target, seed)}
    for path, enn in enns:
        predictions[(path.name, encoder_label(enn))] = enn_predictions(enn, zoo, held)
    records = []
    for (name, encoder), predicted in predictions.items():
        records.append({"predictor": name, "encoder": encoder, **held_out_scores(predicted, measured, stage)})
    table = pd.DataFrame(records)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    rows = [[r["predictor"], r["encoder"], f"{r['kendall_tau']:.3f}", f"{r['kendall_tau_late']:.3f}",
             f"{r['spearman_rho']:.3f}", f"{100 * r['mae']:.1f}", r["n"]] for r in records]
    arch = "-".join(map(str, zoo.spec.mlp.layer_sizes))
    report = (f"Held-out runs of {zoo_path} ({zoo.spec.mlp.dataset} {arch}, {int(zoo.held_out_runs.sum())} runs, "
              f"{int(held.sum())} snapshots), predicting {target} validation accuracy; late training = stage >= "
              f"{LATE:g}.\n\n" + markdown_table(COLUMNS, rows))
    atomic_write_text(out / "results.md", report + "\n")
    write_scatter(out / "scatter.png", {name: (measured, predicted) for (name, _), predicted in predictions.items()},
                  xlabel=f"measured {target} val accuracy", ylabel="predicted")
    print(report)
    print(f"\nWritten: {out / 'results.csv'}, results.md, scatter.png")
    return report
