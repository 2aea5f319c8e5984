"""Grad-CAM of the ENN over a weight image, mapped back onto every weight matrix.

We use Captum's `LayerGradCam` on the last rectified convolution of the ENN's encoder
(`encoder.conv[-1]`), not pytorch-grad-cam, knowingly:

- the ENN is a regression net with one scalar output; Captum takes ``target=None`` for it,
  pytorch-grad-cam wants per-class targets;
- pytorch-grad-cam min-max scales every map to [0, 1] and calls `model.eval()`; we need raw
  magnitudes (to compare layers and MLPs) and must leave the caller's module as it is;
- Captum keeps the sign unless asked (``relu_attributions``) and stays differentiable.

Grad-CAM as defined (Selvaraju et al.) rectifies the map; we do too, so heatmaps are
non-negative. The map lives on the (H, W) canvas of the weight image, where weight matrix i
occupies the top-left (h_i, w_i) block (`gi_envs.weight_image.image_layout`); its crop is
upsampled bilinearly to (out_i, in_i). Grad-CAM is spatial: the channels that share a pixel
share its heat, so a layer's heatmap says where on its own block the ENN looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from agents.enn.network import ENN


def enn_gradcam(enn: ENN, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Grad-CAM heatmaps of `enn` for MLP weights, one per weight matrix, each of that matrix's shape.

    :param weights: one (out, in) tensor per layer, or (N, out, in) for N MLPs.
    :return: per layer a non-negative tensor shaped like the layer's weights (detached).
    """
    from captum.attr import LayerGradCam

    image_spec = enn.require_image("Grad-CAM")  # a stats ENN has no convolution to explain
    batched = weights[0].dim() == 3
    image = enn.image_of([w.detach() for w in weights]).detach()  # checks the shapes against the ENN's
    cam = LayerGradCam(enn, enn.encoder.conv[-1]).attribute(image, relu_attributions=True)  # (N, 1, H, W)
    layout = image_spec.layout(enn.mlp_spec)
    heatmaps = []
    for (h, w), shape in zip(layout.channel_sizes, enn.layer_shapes):
        heat = F.interpolate(cam[:, :, :h, :w], size=shape, mode="bilinear", align_corners=False).squeeze(1)
        heat = heat.clamp_min(0.0).detach()  # bilinear weights are convex: this only removes -0.0
        heatmaps.append(heat if batched else heat[0])
    return heatmaps


def save_heatmap_figure(path: Path, weights: Sequence[torch.Tensor], heatmaps: Sequence[torch.Tensor],
                        title: str = "") -> Path:
    """One row per weight matrix: |W|, the Grad-CAM heatmap, and the heatmap over |W|; PNG plus NPZ."""
    import matplotlib

    from agents.report import save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(weights), 3, figsize=(12, 2.2 * len(weights) + 0.6), squeeze=False)
    arrays = {}
    for i, (w, heat) in enumerate(zip(weights, heatmaps)):
        magnitude = w.detach().abs().numpy()
        heat = heat.numpy()
        arrays[f"abs_w_{i}"], arrays[f"gradcam_{i}"] = magnitude, heat
        shown_heat = heat / heat.max() if heat.max() > 0 else heat
        panels = [(magnitude, "gray", f"layer {i}: |W| {magnitude.shape}"),
                  (shown_heat, "inferno", f"layer {i}: Grad-CAM (max {heat.max():.2g})")]
        for ax, (data, cmap, label) in zip(axes[i], panels):
            ax.imshow(data, cmap=cmap, aspect="auto", interpolation="nearest")
            ax.set_title(label, fontsize=9)
        axes[i, 2].imshow(magnitude / max(magnitude.max(), 1e-12), cmap="gray", aspect="auto", interpolation="nearest")
        axes[i, 2].imshow(shown_heat, cmap="inferno", alpha=0.5, aspect="auto", interpolation="nearest")
        axes[i, 2].set_title(f"layer {i}: overlay", fontsize=9)
        for ax in axes[i]:
            ax.set_xlabel("input unit", fontsize=8)
            ax.set_ylabel("output unit", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".npz"), **arrays)
    return save_figure(fig, path.with_suffix(".png"))
