"""The ENN body as an SB3 features extractor, shared by every agent's actor and critic.

Weight images are tiny and wide ((4, 5, 10) for a 64-32-10 MLP at resolution 0.15, (4, 15, 118)
for 784-100-10), far below the 36x36 that SB3's `NatureCNN` needs; `agents.enn.encoder` has the
network made for them. Use it through `policy_kwargs`:

    policy_kwargs = {"features_extractor_class": WeightImageCNN, "normalize_images": False,
                     "features_extractor_kwargs": {"features_dim": 128}}
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.enn.encoder import WeightImageEncoder
from gi_envs.observation import ObservationLayout

STATE_FEATURES = 64  # width of the training state's own layer


class WeightImageCNN(BaseFeaturesExtractor):
    """`WeightImageEncoder` as an SB3 features extractor, with the training state beside it when the env shows it.

    The observation is the (C, H, W) weight image (with the ``weight_change`` part: its change as more
    channels), or, with the ``training_state`` part, one flat vector of the image then the state
    (`gi_envs.SB3VecEnv(flatten_observation=True)`); then `image_shape` and `state_dim` say where it splits,
    and the state goes through its own layer before both meet.

    :param observation_space: a (C, H, W) `Box` of weight images, or a flat `Box` of image and state.
    :param features_dim: size of the feature vector handed to the policy and value heads.
    :param channels: width of the two convolutions.
    :param image_shape: (C, H, W) of the image inside a flat observation.
    :param state_dim: length of the state after it (0: no state).
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, channels: int = 32,
                 image_shape: tuple[int, int, int] | None = None, state_dim: int = 0):
        shape = observation_space.shape
        if len(shape) == 3:
            image_shape, state_dim = tuple(shape), 0
        elif len(shape) != 1 or image_shape is None or int(np.prod(image_shape)) + state_dim != shape[0]:
            raise ValueError(f"WeightImageCNN needs (C, H, W) observations, or flat ones of image_shape={image_shape} "
                             f"and state_dim={state_dim}; got shape {shape}")
        super().__init__(observation_space, features_dim)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.state_dim = int(state_dim)
        self.encoder = WeightImageEncoder(self.image_shape[0], features_dim, channels)
        if self.state_dim:
            self.state_net = nn.Sequential(nn.Linear(self.state_dim, STATE_FEATURES), nn.ReLU())
            self.joint = nn.Sequential(nn.Linear(features_dim + STATE_FEATURES, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if not self.state_dim:
            return self.encoder(observations)
        n_image = int(np.prod(self.image_shape))
        image = observations[:, :n_image].reshape(-1, *self.image_shape)
        state = observations[:, n_image:]
        return self.joint(torch.cat([self.encoder(image), self.state_net(state)], dim=1))


class ShapeFreeMLP(BaseFeaturesExtractor):
    """The body for shape-free observations (`gi_envs.layer_observation`: per-layer statistics and the training state,
    one flat vector of the same length for every MLP): Linear -> ReLU -> Linear -> ReLU.

    :param observation_space: a flat `Box`.
    :param features_dim: size of the feature vector handed to the policy and value heads.
    :param hidden: width of the hidden layer.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, hidden: int = 256):
        if len(observation_space.shape) != 1:
            raise ValueError(f"ShapeFreeMLP needs flat observations, got shape {observation_space.shape}")
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Linear(observation_space.shape[0], hidden), nn.ReLU(),
                                 nn.Linear(hidden, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


def enn_policy_kwargs(features_dim: int = 128, channels: int = 32, layout: ObservationLayout | None = None,
                      **extra: object) -> dict:
    """`policy_kwargs` that put `WeightImageCNN` under an SB3 policy (floats, so no /255 scaling); with the
    env's observation `layout`, one that reads its training state too, and for a layout without an image (the
    shape-free parts) `ShapeFreeMLP`."""
    if layout is not None and not layout.has_image:
        return {"features_extractor_class": ShapeFreeMLP, "features_extractor_kwargs": {"features_dim": features_dim},
                "normalize_images": False, **extra}
    kwargs: dict = {"features_dim": features_dim, "channels": channels}
    if layout is not None and layout.is_dict:
        kwargs |= {"image_shape": layout.image_shape, "state_dim": layout.state_dim}
    return {
        "features_extractor_class": WeightImageCNN,
        "features_extractor_kwargs": kwargs,
        "normalize_images": False,
        **extra,
    }
