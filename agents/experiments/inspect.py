"""`grad-instructor inspect`: Grad-CAM heatmaps of an ENN over MLP weights, and the lottery-ticket test."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from agents.enn.gradcam import enn_gradcam, save_heatmap_figure
from agents.enn.network import ENN
from agents.errors import parameter_error
from agents.experiments.lottery import KEEP_PERCENTS, lottery_report, lottery_study, write_pruning_figure
from agents.report import atomic_write_text
from agents.rl import tracking
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.training import train_mlps

FRESH_REGIME = Regime(lr=0.1, batch_size=32)  # plain SGD of the fresh MLPs trained when no checkpoint is given

log = logging.getLogger(__name__)  # progress lines; the command line prints them (`agents.cli`)


@dataclass
class InspectResult:
    report: str  # Markdown: the Spearman line and the pruning table
    heatmap_png: Path  # the Grad-CAM figure of the chosen MLP
    written: list[Path]


def mlps_to_inspect(enn: ENN, mlp_path: Path | None, n_mlps: int, epochs: int,
                    seed: int) -> tuple[BatchedMLP, str, str]:
    """The MLPs, their data set and a line saying where they came from: a checkpoint (`guide` writes
    them to `mlps/SETTING_ROW.pt`) or `n_mlps` fresh MLPs of the ENN's own spec trained by plain SGD in the
    training core (`FRESH_REGIME`)."""
    if mlp_path is not None:
        mlp, info = BatchedMLP.load(mlp_path)
        source = f"{mlp_path} ({info.get('row', 'MLPs')}, seeds {info.get('seeds', '?')})"
        return mlp, info.get("dataset", enn.mlp_spec.dataset), source
    log.info(f"training {n_mlps} fresh {enn.mlp_spec.dataset} MLPs for the ENN's architecture ({epochs} epochs of SGD)")
    seeds = list(range(seed, seed + n_mlps))
    mlp = train_mlps(enn.mlp_spec, load_dataset(enn.mlp_spec.dataset), FRESH_REGIME, seeds, epochs)
    return mlp, enn.mlp_spec.dataset, f"{n_mlps} fresh MLPs, seeds {seed}..{seed + n_mlps - 1}"


def run_inspect(enn_path: Path, mlp_path: Path | None, out: Path, wandb_mode: str = "offline", *, mlp_index: int = 0,
                n_mlps: int = 5, epochs: int = 10, seed: int = 0,
                keep_percents: list[float] | None = None) -> InspectResult:
    """Grad-CAM figure of MLP `mlp_index`, Spearman(heatmap, |W|) and the pruning study; files and a W&B run."""
    if mlp_path is None and not 0 <= mlp_index < n_mlps:
        raise parameter_error(ValueError, "{mlp_index} is out of range: {n_mlps} fresh MLPs are trained",
                              mlp_index=mlp_index, n_mlps=n_mlps)
    if keep_percents is not None and not all(0 < k < 100 for k in keep_percents):
        raise parameter_error(ValueError, "{keep_percents} must be percentages in (0, 100)",
                              keep_percents=keep_percents)
    enn = ENN.load(enn_path)
    enn.require_image(f"inspect (Grad-CAM of {enn_path})")  # before any MLP trains
    mlp, dataset, source = mlps_to_inspect(enn, mlp_path, n_mlps, epochs, seed)
    enn.check_shapes(mlp.layer_shapes)
    target = enn.mlp_spec
    if (dataset, mlp.activation) != (target.dataset, target.activation):
        raise ValueError(f"the ENN was made for {target.activation} MLPs on {target.dataset!r}, "
                         f"the checkpoint holds {mlp.activation} MLPs on {dataset!r}")
    if not 0 <= mlp_index < mlp.n_models:
        raise parameter_error(ValueError, f"{{mlp_index}} is out of range: the checkpoint holds {mlp.n_models} MLPs",
                              mlp_index=mlp_index)

    title = f"{dataset} {'-'.join(map(str, mlp.layer_sizes))} MLPs, ENN {enn_path.name}"
    chosen = [w[mlp_index] for w in mlp.weights]
    heatmap_png = save_heatmap_figure(out / f"gradcam_model{mlp_index}.png", chosen, enn_gradcam(enn, chosen),
                                      title=f"{title}: MLP {mlp_index} of {source}")
    spearman, pruning = lottery_study(enn, mlp, load_dataset(dataset).test, keep_percents or KEEP_PERCENTS, seed)
    atomic_write_text(out / "spearman.csv", spearman.to_csv(index=False))
    atomic_write_text(out / "pruning.csv", pruning.to_csv(index=False))
    report = lottery_report(spearman, pruning, f"{title} ({source})")
    atomic_write_text(out / "lottery.md", report + "\n")
    pruning_png = write_pruning_figure(out / "pruning", pruning, title)
    run = tracking.start_run(out, wandb_mode, name=f"inspect-{out.name}", job_type="inspect",
                             config={"enn": str(enn_path), "mlp": str(mlp_path), "source": source,
                                     "mlp_index": mlp_index})
    try:
        tracking.log_image(run, "gradcam", heatmap_png)
        tracking.log_image(run, "pruning_curve", pruning_png)
        tracking.log_table(run, "spearman", spearman)
        tracking.log_table(run, "pruning", pruning)
    finally:
        run.finish()
    written = [out / name for name in ("spearman.csv", "pruning.csv", "pruning.png", "lottery.md")]
    return InspectResult(report, heatmap_png, written + [heatmap_png.with_suffix(".npz")])
