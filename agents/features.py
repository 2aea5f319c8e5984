"""The ENN body: a small CNN over weight images, shared by every agent's actor and critic.

Weight images are tiny and wide ((2, 5, 10) for a 64-32-10 MLP at resolution 0.15, (2, 15, 118)
for 784-100-10), far below the 36x36 that SB3's `NatureCNN` needs. This extractor keeps the
spatial grid with padded 3x3 convolutions, pools it to a fixed (4, 8) grid whatever the input
size, and adds per-channel summary statistics (mean, std, mean |w|, max |w|) that pooling alone
would blur. Every architectural choice here is ours.

Use it through `policy_kwargs`:

    policy_kwargs = {"features_extractor_class": WeightImageCNN, "normalize_images": False,
                     "features_extractor_kwargs": {"features_dim": 128}}
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

POOLED_GRID = (4, 8)


class WeightImageCNN(BaseFeaturesExtractor):
    """Conv(3x3) -> ReLU -> Conv(3x3) -> ReLU -> adaptive pool to 4x8 -> concat channel stats -> Linear.

    :param observation_space: a (C, H, W) `Box` of weight images.
    :param features_dim: size of the feature vector handed to the policy and value heads.
    :param channels: width of the two convolutions.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, channels: int = 32):
        if len(observation_space.shape) != 3:
            raise ValueError(f"WeightImageCNN needs (C, H, W) observations, got shape {observation_space.shape}")
        super().__init__(observation_space, features_dim)
        n_input = observation_space.shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(n_input, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(POOLED_GRID)
        n_flat = 2 * channels * POOLED_GRID[0] * POOLED_GRID[1] + 4 * n_input
        self.head = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        maps = self.conv(observations)
        flat = self.pool(maps).flatten(1)
        return self.head(torch.cat([flat, channel_statistics(observations)], dim=1))


def channel_statistics(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4C): mean, std, mean |x|, max |x| of every channel (zero padding included)."""
    flat = images.flatten(2)
    return torch.cat([flat.mean(2), flat.std(2, unbiased=False), flat.abs().mean(2), flat.abs().amax(2)], dim=1)


def enn_policy_kwargs(features_dim: int = 128, channels: int = 32, **extra: object) -> dict:
    """`policy_kwargs` that put `WeightImageCNN` under an SB3 policy (floats, so no /255 scaling)."""
    return {
        "features_extractor_class": WeightImageCNN,
        "features_extractor_kwargs": {"features_dim": features_dim, "channels": channels},
        "normalize_images": False,
        **extra,
    }
