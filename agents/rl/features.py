"""The ENN body as an SB3 features extractor, shared by every agent's actor and critic.

Weight images are tiny and wide ((4, 5, 10) for a 64-32-10 MLP at resolution 0.15, (4, 15, 118)
for 784-100-10), far below the 36x36 that SB3's `NatureCNN` needs; `agents.enn.encoder` has the
network made for them. Use it through `policy_kwargs`:

    policy_kwargs = {"features_extractor_class": WeightImageCNN, "normalize_images": False,
                     "features_extractor_kwargs": {"features_dim": 128}}
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from agents.enn.encoder import WeightImageEncoder


class WeightImageCNN(BaseFeaturesExtractor):
    """`WeightImageEncoder` as an SB3 features extractor.

    :param observation_space: a (C, H, W) `Box` of weight images.
    :param features_dim: size of the feature vector handed to the policy and value heads.
    :param channels: width of the two convolutions.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, channels: int = 32):
        if len(observation_space.shape) != 3:
            raise ValueError(f"WeightImageCNN needs (C, H, W) observations, got shape {observation_space.shape}")
        super().__init__(observation_space, features_dim)
        self.encoder = WeightImageEncoder(observation_space.shape[0], features_dim, channels)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(observations)


def enn_policy_kwargs(features_dim: int = 128, channels: int = 32, **extra: object) -> dict:
    """`policy_kwargs` that put `WeightImageCNN` under an SB3 policy (floats, so no /255 scaling)."""
    return {
        "features_extractor_class": WeightImageCNN,
        "features_extractor_kwargs": {"features_dim": features_dim, "channels": channels},
        "normalize_images": False,
        **extra,
    }
