"""The paper's Grad-CAM reading, measured: does the ENN look at large |w|, and do those weights matter?

The paper reads its Grad-CAM heatmaps as "the ENN looks at large-magnitude weights", support for
the strong lottery ticket hypothesis. Two measurements per MLP:

- Spearman correlation between a layer's heatmap and its |W|;
- pruning without retraining: keep the top k % of every weight matrix by Grad-CAM, by |W|, or
  at random (biases kept), and measure test accuracy. If the heatmap found the winning ticket,
  Grad-CAM pruning would match magnitude pruning and beat random.

Per-layer budgets (our choice): every layer keeps the same share, so a layer's scores are only
compared with each other. A heatmap is constant over the block of weights one image pixel
covers (and zero where Grad-CAM's ReLU cut it), so its ties are broken at random, seeded.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from agents.enn.gradcam import enn_gradcam
from agents.enn.network import ENN
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.datasets import Split

KEEP_PERCENTS = (5, 10, 25, 50)
CRITERIA = ("gradcam", "magnitude", "random")


def keep_top(scores: torch.Tensor, percent: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean mask keeping the top `percent` % entries of each (out, in) slice of (N, out, in) `scores`.

    Ties are broken by a random order drawn from `generator`.
    """
    n_models = scores.shape[0]
    flat = scores.reshape(n_models, -1)
    n_keep = max(1, math.ceil(flat.shape[1] * percent / 100))
    order = torch.randperm(flat.shape[1], generator=generator)
    ranked = torch.sort(flat[:, order], dim=1, descending=True, stable=True).indices[:, :n_keep]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, order[ranked], True)
    return mask.reshape(scores.shape)


def masked_copy(mlp: BatchedMLP, masks: list[torch.Tensor]) -> BatchedMLP:
    """A copy of `mlp` whose weight matrices are multiplied by `masks` (biases unchanged)."""
    pruned = BatchedMLP(mlp.layer_sizes, mlp.n_models, mlp.activation)
    with torch.no_grad():
        for dst, src, mask in zip(pruned.weights, mlp.weights, masks):
            dst.copy_(src * mask)
        for dst, src in zip(pruned.biases, mlp.biases):
            dst.copy_(src)
    return pruned


def lottery_study(enn: ENN, mlp: BatchedMLP, test: Split, keep_percents=KEEP_PERCENTS,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman(heatmap, |W|) per model and layer, and test accuracy after pruning per criterion and k.

    :return: ``spearman`` (model, layer, spearman per weight, and spearman_blocks: heatmap and
        mean |W| averaged over the blocks one image pixel covers, i.e. at the resolution the ENN
        reads) and ``pruning`` (model, criterion, keep_percent, test_accuracy; keep_percent 100 is
        the unpruned MLP).
    """
    heatmaps = enn_gradcam(enn, mlp.weights)
    magnitudes = [w.detach().abs() for w in mlp.weights]
    layout = enn.require_image("the lottery test").layout(enn.mlp_spec)
    rows = []
    for layer, (heat, mag, block) in enumerate(zip(heatmaps, magnitudes, layout.channel_sizes)):
        heat_blocks, mag_blocks = (F.adaptive_avg_pool2d(t.unsqueeze(1), block).flatten(1) for t in (heat, mag))
        for m in range(mlp.n_models):
            rows.append({"model": m, "layer": layer,
                         "spearman": float(spearmanr(heat[m].flatten(), mag[m].flatten()).statistic),
                         "spearman_blocks": float(spearmanr(heat_blocks[m], mag_blocks[m]).statistic)})
    spearman = pd.DataFrame(rows)
    generator = torch.Generator().manual_seed(seed)
    scores = {"gradcam": heatmaps, "magnitude": magnitudes,
              "random": [torch.rand(m.shape, generator=generator) for m in magnitudes]}
    full = mlp.evaluate(test.x, test.y)[1].numpy()
    rows = [{"model": m, "criterion": c, "keep_percent": 100, "test_accuracy": float(full[m])}
            for c in CRITERIA for m in range(mlp.n_models)]
    for criterion in CRITERIA:
        for percent in keep_percents:
            masks = [keep_top(s, percent, generator) for s in scores[criterion]]
            accuracy = masked_copy(mlp, masks).evaluate(test.x, test.y)[1].numpy()
            rows += [{"model": m, "criterion": criterion, "keep_percent": percent, "test_accuracy": float(accuracy[m])}
                     for m in range(mlp.n_models)]
    return spearman, pd.DataFrame(rows)


def lottery_report(spearman: pd.DataFrame, pruning: pd.DataFrame, title: str) -> str:
    """Markdown: the Spearman line per layer and the pruning table (mean ± std over MLPs)."""
    from agents.report import markdown_table, mean_std

    n_models = pruning.model.nunique()
    corr = ", ".join(f"layer {layer}: {mean_std(g.spearman.dropna(), scale=1.0, digits=2)} per weight, "
                     f"{mean_std(g.spearman_blocks.dropna(), scale=1.0, digits=2)} per image pixel"
                     for layer, g in spearman.groupby("layer"))
    percents = sorted(p for p in pruning.keep_percent.unique() if p != 100)
    full = pruning[(pruning.keep_percent == 100) & (pruning.criterion == CRITERIA[0])].test_accuracy
    rows = [[criterion, *(mean_std(pruning[(pruning.criterion == criterion) & (pruning.keep_percent == p)]
                                   .test_accuracy, digits=1) for p in percents)] for criterion in CRITERIA]
    table = markdown_table(["keep top k % by", *(f"k = {p:g}" for p in percents)], rows)
    return (f"{title}: {n_models} MLPs, unpruned test accuracy {mean_std(full)} %.\n\n"
            f"Spearman correlation of Grad-CAM heatmap and |W| (mean ± std over MLPs): {corr}.\n\n"
            f"Test accuracy (%) after pruning without retraining, each weight matrix keeping its top k %:\n\n{table}")


def write_pruning_figure(path: Path, pruning: pd.DataFrame, title: str) -> Path:
    """Test accuracy against the share of weights kept, one line per criterion (mean ± std); PNG + CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.report import atomic_write_text, save_figure

    summary = (pruning.groupby(["criterion", "keep_percent"]).test_accuracy.agg(["mean", "std"]).reset_index())
    atomic_write_text(path.with_suffix(".csv"), summary.to_csv(index=False))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for criterion in CRITERIA:
        s = summary[summary.criterion == criterion]
        ax.errorbar(s.keep_percent, 100 * s["mean"], yerr=100 * s["std"].fillna(0), marker="o", capsize=3,
                    label=criterion)
    ax.set_xscale("log")
    ax.set_xticks(sorted(summary.keep_percent.unique()), [f"{p:g}" for p in sorted(summary.keep_percent.unique())])
    ax.set_xlabel("weights kept per layer (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path.with_suffix(".png"))
