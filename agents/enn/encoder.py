"""The ENN body in plain PyTorch: a small CNN over weight images (no Stable-Baselines3 needed).

It keeps the spatial grid of a tiny, wide weight image with padded 3x3 convolutions, pools it to
a fixed (4, 8) grid whatever the input size, and adds per-channel summary statistics (mean, std,
mean |w|, max |w|) that pooling alone would blur. Every architectural choice here is ours.
"""

from __future__ import annotations

import torch
from torch import nn

POOLED_GRID = (4, 8)


class WeightImageEncoder(nn.Module):
    """Conv(3x3) -> ReLU -> Conv(3x3) -> ReLU -> adaptive pool to 4x8 -> concat channel stats -> Linear -> ReLU.

    :param in_channels: C, the number of weight matrices in the image.
    :param features_dim: size of the feature vector.
    :param channels: width of the two convolutions.
    """

    def __init__(self, in_channels: int, features_dim: int = 128, channels: int = 32):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(POOLED_GRID)
        n_flat = 2 * channels * POOLED_GRID[0] * POOLED_GRID[1] + 4 * in_channels
        self.head = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = self.pool(self.conv(images)).flatten(1)
        return self.head(torch.cat([flat, channel_statistics(images)], dim=1))


def channel_statistics(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4C): mean, std, mean |x|, max |x| of every channel (zero padding included)."""
    flat = images.flatten(2)
    return torch.cat([flat.mean(2), flat.std(2, unbiased=False), flat.abs().mean(2), flat.abs().amax(2)], dim=1)
