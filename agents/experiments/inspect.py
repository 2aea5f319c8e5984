"""`grad-instructor inspect`: Grad-CAM heatmaps of an ENN over MLP weights, and the lottery-ticket test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.enn.gradcam import enn_gradcam, save_heatmap_figure
from agents.enn.network import ENN
from agents.experiments.guide import Regime, train_row
from agents.experiments.lottery import KEEP_PERCENTS, lottery_report, lottery_study, write_pruning_figure
from agents.report import atomic_write_text
from agents.rl import tracking
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.datasets import load_dataset

FRESH_LR, FRESH_BATCH = 0.1, 32  # plain SGD of the fresh MLPs trained when no checkpoint is given


@dataclass
class InspectResult:
    report: str  # Markdown: the Spearman line and the pruning table
    heatmap_png: Path  # the Grad-CAM figure of the chosen MLP
    written: list[Path]


def mlps_to_inspect(enn: ENN, mlp_path: Path | None, n_mlps: int, epochs: int,
                    seed: int) -> tuple[BatchedMLP, str, str]:
    """The MLPs, their data set and a line saying where they came from: a checkpoint (`guide` writes
    them to `mlps/REGIME_ROW.pt`) or `n_mlps` fresh MLPs of the ENN's own spec trained by plain SGD."""
    if mlp_path is not None:
        mlp, info = BatchedMLP.load(mlp_path)
        source = f"{mlp_path} ({info.get('row', 'MLPs')}, seeds {info.get('seeds', '?')})"
        return mlp, info.get("dataset", enn.mlp_spec.dataset), source
    regime = Regime(name="inspect", mlp=enn.mlp_spec, lr=FRESH_LR, batch_size=FRESH_BATCH, epochs=epochs)
    print(f"training {n_mlps} fresh {enn.mlp_spec.dataset} MLPs for the ENN's architecture ({epochs} epochs of SGD)")
    mlp = train_row(regime, "bp", list(range(seed, seed + n_mlps)), None).mlp
    return mlp, enn.mlp_spec.dataset, f"{n_mlps} fresh MLPs, seeds {seed}..{seed + n_mlps - 1}"


def run_inspect(enn_path: Path, mlp_path: Path | None, out: Path, wandb_mode: str = "offline", *, model: int = 0,
                n_mlps: int = 5, epochs: int = 10, seed: int = 0,
                keep_percents: list[float] | None = None) -> InspectResult:
    """Grad-CAM figure of MLP `model`, Spearman(heatmap, |W|) and the pruning study; files and a W&B run."""
    if mlp_path is None and not 0 <= model < n_mlps:
        raise ValueError(f"--model {model} is out of range: --mlps {n_mlps} fresh MLPs are trained")
    if keep_percents is not None and not all(0 < k < 100 for k in keep_percents):
        raise ValueError(f"--keep {keep_percents} must be percentages in (0, 100)")
    enn = ENN.load(enn_path)
    enn.require_image(f"inspect (Grad-CAM of {enn_path})")  # before any MLP trains
    mlp, dataset, source = mlps_to_inspect(enn, mlp_path, n_mlps, epochs, seed)
    enn.check_shapes(mlp.layer_shapes)
    target = enn.mlp_spec
    if (dataset, mlp.activation) != (target.dataset, target.activation):
        raise ValueError(f"the ENN was made for {target.activation} MLPs on {target.dataset!r}, "
                         f"the checkpoint holds {mlp.activation} MLPs on {dataset!r}")
    if not 0 <= model < mlp.n_models:
        raise ValueError(f"--model {model} is out of range: the checkpoint holds {mlp.n_models} MLPs")

    title = f"{dataset} {'-'.join(map(str, mlp.layer_sizes))} MLPs, ENN {enn_path.name}"
    chosen = [w[model] for w in mlp.weights]
    heatmap_png = save_heatmap_figure(out / f"gradcam_model{model}.png", chosen, enn_gradcam(enn, chosen),
                                      title=f"{title}: MLP {model} of {source}")
    spearman, pruning = lottery_study(enn, mlp, load_dataset(dataset).test, keep_percents or KEEP_PERCENTS, seed)
    atomic_write_text(out / "spearman.csv", spearman.to_csv(index=False))
    atomic_write_text(out / "pruning.csv", pruning.to_csv(index=False))
    report = lottery_report(spearman, pruning, f"{title} ({source})")
    atomic_write_text(out / "lottery.md", report + "\n")
    pruning_png = write_pruning_figure(out / "pruning", pruning, title)
    run = tracking.start_run(out, wandb_mode, name=f"inspect-{out.name}", job_type="inspect",
                             config={"enn": str(enn_path), "mlp": str(mlp_path), "source": source, "model": model})
    try:
        tracking.log_image(run, "gradcam", heatmap_png)
        tracking.log_image(run, "pruning_curve", pruning_png)
        tracking.log_table(run, "spearman", spearman)
        tracking.log_table(run, "pruning", pruning)
    finally:
        run.finish()
    written = [out / name for name in ("spearman.csv", "pruning.csv", "pruning.png", "lottery.md")]
    return InspectResult(report, heatmap_png, written + [heatmap_png.with_suffix(".npz")])
