"""What the agent observes: the weight image, and opt-in parts a practitioner would look at too.

`OBSERVATION_PARTS` names them; the env's ``observation`` argument lists the ones it shows, the
weight image always first:

- ``weights``: the weight image of the design card (`gi_envs.weight_image`), always present;
- ``weight_change``: the image of the weights' change since the previous env step (zero at reset), in
  the same layout and statistics, times `CHANGE_SCALE`, as more channels of the same image. Its rms
  channels are each block's step size: the learning rate shows after one step;
- ``training_state``: a vector of the episode's progress (t / episode_length), the validation accuracy
  now and one step before, the log of 1 + the training loss now and one step before (at reset, the
  validation loss stands in: no training batch has been seen), then the last action (zero at reset).

With ``training_state`` the observation is a `Dict` of ``image`` and ``state``; without it, the image
`Box` alone, as the design card has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

OBSERVATION_PARTS = ("weights", "weight_change", "training_state")
CHANGE_SCALE = 20.0  # a step of lr 0.05 on digits gives change pixels of about 1 (rms channels)
OBS_LIMIT = 20.0  # image bounds; at init pixels have std ~0.6, so this only catches blow-ups
STATE_FIELDS = ("progress", "val_accuracy", "val_accuracy_before", "log_train_loss", "log_train_loss_before")
STATE_LIMIT = 1e3


def check_parts(parts: object) -> tuple[str, ...]:
    """`parts` as a tuple that starts with ``weights``, or a ValueError naming them and what is allowed."""
    ok = isinstance(parts, (tuple, list)) and len(parts) > 0 and parts[0] == "weights" and len(set(parts)) == len(
        parts) and all(p in OBSERVATION_PARTS for p in parts)
    if not ok:
        raise ValueError(f"observation={parts!r} is not allowed; expected 'weights' first, then any of "
                         f"{list(OBSERVATION_PARTS[1:])}, each once")
    return tuple(parts)


@dataclass(frozen=True)
class ObservationLayout:
    """The shape of an observation: image channels (weights, then their change) and the state vector's length."""

    parts: tuple[str, ...]
    weight_image_shape: tuple[int, int, int]  # (C, H, W) of the weight image alone
    action_dim: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.weight_image_shape
        return (channels * (2 if "weight_change" in self.parts else 1), height, width)

    @property
    def state_dim(self) -> int:
        return len(STATE_FIELDS) + self.action_dim if "training_state" in self.parts else 0

    @property
    def is_dict(self) -> bool:
        return self.state_dim > 0

    def single_space(self) -> spaces.Space:
        image = spaces.Box(-OBS_LIMIT, OBS_LIMIT, self.image_shape, np.float32)
        if not self.is_dict:
            return image
        state = spaces.Box(-STATE_LIMIT, STATE_LIMIT, (self.state_dim,), np.float32)
        return spaces.Dict({"image": image, "state": state})


def select(observation: np.ndarray | dict[str, np.ndarray], index: int | np.ndarray
           ) -> np.ndarray | dict[str, np.ndarray]:
    """Model `index`'s observation(s) out of a batch of (N, ...) arrays, or of a dict of them."""
    if isinstance(observation, dict):
        return {k: v[index] for k, v in observation.items()}
    return observation[index]


def flatten(observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """A batch of observations as one (N, features) array: the image, then the state (what `flat_space` says)."""
    if not isinstance(observation, dict):
        return observation.reshape(len(observation), -1)
    return np.concatenate([observation["image"].reshape(len(observation["image"]), -1), observation["state"]], axis=1)


def flat_space(space: spaces.Space) -> spaces.Box:
    """The Box of `flatten`'s rows for observations of `space`."""
    if not isinstance(space, spaces.Dict):
        return spaces.Box(space.low.reshape(-1), space.high.reshape(-1), dtype=np.float32)
    parts: Sequence[spaces.Box] = (space["image"], space["state"])
    return spaces.Box(np.concatenate([p.low.reshape(-1) for p in parts]),
                      np.concatenate([p.high.reshape(-1) for p in parts]), dtype=np.float32)


def state_vector(progress: np.ndarray, val_accuracy: np.ndarray, val_accuracy_before: np.ndarray,
                 train_loss: np.ndarray, train_loss_before: np.ndarray, last_action: np.ndarray) -> np.ndarray:
    """(N, state_dim) float32 training states from per-model arrays (N,) and last actions (N, action_dim)."""

    def log_loss(loss: np.ndarray) -> np.ndarray:
        return np.log1p(np.clip(np.nan_to_num(loss, nan=STATE_LIMIT, posinf=STATE_LIMIT), 0.0, STATE_LIMIT))

    columns = [progress, val_accuracy, val_accuracy_before, log_loss(train_loss), log_loss(train_loss_before)]
    return np.concatenate([np.stack(columns, axis=1), last_action], axis=1).astype(np.float32)
