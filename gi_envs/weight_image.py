"""Weight matrices as a low-resolution, multi-channel image, and coarse action grids back to matrices.

The image is what the agent and the ENN see. Each weight matrix (out, in) is one channel,
area-downsampled (adaptive average pooling) to about `resolution` of each side, so that
``resolution=0.15`` keeps 0.15 x 0.15 of the pixels as in the paper. Channels of different sizes
sit in the top-left corner of one zero-padded (C, H, W) canvas.

Per-layer normalisation (our choice): each channel is multiplied by
``sqrt(fan_in * cell_area)``, where ``cell_area`` is the number of weights averaged into one
pixel. A matrix of i.i.d. weights with standard deviation ``s / sqrt(fan_in)`` then gives pixels
with standard deviation about ``s`` in every layer, whatever its size and the resolution: at
PyTorch's default init ``s = 1/sqrt(3)``, at He init ``s = sqrt(2)``. The factor is a constant of
the architecture, so the image stays a linear, differentiable function of the weights and keeps
how weights grow during training.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ImageLayout:
    """Where each weight matrix lands on the canvas, and its normalisation factor."""

    layer_shapes: tuple[tuple[int, int], ...]
    resolution: float
    channel_sizes: tuple[tuple[int, int], ...]
    scales: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the image."""
        return (
            len(self.channel_sizes),
            max(h for h, _ in self.channel_sizes),
            max(w for _, w in self.channel_sizes),
        )


@functools.lru_cache(maxsize=64)
def image_layout(layer_shapes: tuple[tuple[int, int], ...], resolution: float) -> ImageLayout:
    """The canvas for weight matrices of `layer_shapes` ((out, in) each) at `resolution` per side."""
    if not 0.0 < resolution <= 1.0:
        raise ValueError(f"resolution={resolution!r} must lie in (0, 1] (a share of each side)")
    sizes, scales = [], []
    for out, fan_in in layer_shapes:
        h, w = max(1, round(out * resolution)), max(1, round(fan_in * resolution))
        sizes.append((h, w))
        scales.append(math.sqrt(fan_in * (out * fan_in) / (h * w)))
    return ImageLayout(tuple(layer_shapes), float(resolution), tuple(sizes), tuple(scales))


IMAGE_STATS = ("mean", "rms")


def weight_image(
    weights: Sequence[torch.Tensor], resolution: float = 0.15, stats: Sequence[str] = ("mean",)
) -> torch.Tensor:
    """The (C, H, W) weight image of one MLP, or (N, C, H, W) for stacked (N, out, in) weights.

    :param stats: what each pixel says of the weights it covers, one group of channels (one per
        weight matrix) per entry: ``mean`` (area average, normalised as the module docstring says)
        and ``rms`` (root mean square, times sqrt(fan_in): about the init's std at any resolution,
        and it keeps the magnitude that averaging signed weights cancels).

    Differentiable with respect to `weights`: gradients of anything computed from the image
    (an ENN's prediction, say) flow back to every weight.
    """
    unknown = [s for s in stats if s not in IMAGE_STATS]
    if unknown or not stats:
        raise ValueError(f"stats={tuple(stats)!r} must be a non-empty selection of {list(IMAGE_STATS)}")
    batched = weights[0].dim() == 3
    mats = [w if batched else w.unsqueeze(0) for w in weights]
    layout = image_layout(tuple((w.shape[1], w.shape[2]) for w in mats), float(resolution))
    _, height, width = layout.shape
    channels = []
    for stat in stats:
        for w, (h, wd), scale in zip(mats, layout.channel_sizes, layout.scales):
            if stat == "mean":
                pooled = F.adaptive_avg_pool2d(w.unsqueeze(1), (h, wd)) * scale
            else:
                energy = F.adaptive_avg_pool2d(w.unsqueeze(1).square(), (h, wd))
                pooled = torch.sqrt(energy + 1e-12) * math.sqrt(w.shape[2])
            channels.append(F.pad(pooled, (0, width - wd, 0, height - h)))
    image = torch.cat(channels, dim=1)
    return image if batched else image.squeeze(0)


def block_scales(
    grid: torch.Tensor, layer_shapes: Sequence[tuple[int, int]], max_scale: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-block gradient multipliers `max_scale ** a` from coarse grids (N, C, gh, gw) of `a` in [-1, 1].

    :return: one (N, out, in) tensor per weight matrix, and one (N, out) tensor per bias: a bias gets
        the geometric mean of the multipliers along its row of weights (the weights of its output
        unit), so a uniform action scales weights and biases alike and is plain SGD at learning
        rate ``lr * max_scale ** a``.
    """
    exponents = upsample_action(grid, layer_shapes)
    log_scale = math.log(max_scale)
    weights = [torch.exp(e * log_scale) for e in exponents]
    biases = [torch.exp(e.mean(dim=2) * log_scale) for e in exponents]
    return weights, biases


def upsample_action(grid: torch.Tensor, layer_shapes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """Coarse per-layer grids (N, C, gh, gw) to one (N, out, in) tensor per weight matrix.

    Nearest-neighbour upsampling: each grid cell covers one block of its matrix, so one action
    value moves one block of weights together.
    """
    if grid.dim() != 4 or grid.shape[1] != len(layer_shapes):
        raise ValueError(
            f"action grid of shape {tuple(grid.shape)} does not fit (N, {len(layer_shapes)}, gh, gw)"
        )
    return [
        F.interpolate(grid[:, i : i + 1], size=shape, mode="nearest").squeeze(1)
        for i, shape in enumerate(layer_shapes)
    ]
