"""What the agent observes: the weight image, and opt-in parts a practitioner would look at too.

Each part is one `ObservationPart` in `OBSERVATION_PARTS`: what it joins (more channels of the ``image``, or
more entries of the ``state`` vector), its size, how it is read off the training task, and whether the task
must keep the weights of the step before. The env's ``observation`` argument lists the parts it shows (the
weight image first where it is shown); `ObservationLayout` turns that list into the space, the observation itself and
each part's slice of a flat observation (image first, then state, each in the order listed), which
`flatten`, `gi_envs.SB3VecEnv` and the agents' features extractor all read from it. `register_observation_part`
adds one.

- ``weights``: the weight image of the design card (`gi_envs.weight_image`), the default;
- ``weight_change``: the image of the weights' change since the previous env step (zero at reset), in
  the same layout and statistics, times `CHANGE_SCALE`, as more channels of the same image. Its rms
  channels are each block's step size: the learning rate shows after one step;
- ``training_state``: a vector of the episode's progress (t / episode_length), the validation accuracy
  now and one step before, the log of 1 + the training loss now and one step before (at reset, the
  validation loss stands in: no training batch has been seen), then the last action (zero at reset).

With a ``state`` part the observation is a `Dict` of ``image`` and ``state``; without one, the image
`Box` alone, as the design card has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gi_envs.layer_observation import LAYER_CHANGE_COLUMNS, LAYER_STATS_COLUMNS, layer_change_stats, layer_stats

TrainingTask = Any  # a `gi_envs.task.TrainingTask`, which parts read (named, not imported: it imports this module)

CHANGE_SCALE = 20.0  # a step of lr 0.05 on digits gives change pixels of about 1 (rms channels)
OBS_LIMIT = 20.0  # image bounds; at init pixels have std ~0.6, so this only catches blow-ups
STATE_FIELDS = ("progress", "val_accuracy", "val_accuracy_before", "log_train_loss", "log_train_loss_before")
STATE_LIMIT = 1e3
JOINS = ("image", "state")  # what a part adds to: channels of the weight image, or entries of the state vector


@dataclass(frozen=True)
class ObservationPart:
    """One part of an observation.

    :param name: what the env's ``observation`` argument calls it.
    :param joins: ``image`` (more channels, of the weight image's height and width) or ``state`` (more
        entries of the state vector).
    :param size: its channels (``image``) or entries (``state``), from the layout (the weight image's shape,
        the number of weight matrices, the action's length).
    :param observe: its values for every model of a `TrainingTask`: (N, channels, H, W) or (N, entries).
    :param description: one line for docs and errors.
    :param tracks_previous_weights: the task keeps each model's weights of the step before for it.
    """

    name: str
    joins: str
    size: Callable[[ObservationLayout], int]
    observe: Callable[[TrainingTask], torch.Tensor | np.ndarray]
    description: str
    tracks_previous_weights: bool = False

    def __post_init__(self) -> None:
        if self.joins not in JOINS:
            raise ValueError(f"observation part {self.name!r}: joins={self.joins!r} is not allowed; expected one of "
                             f"{list(JOINS)}")


def _weights(task: TrainingTask) -> torch.Tensor:
    return task.image_spec.image([w.detach() for w in task.mlp.weights])


def _weight_change(task: TrainingTask) -> torch.Tensor:
    assert task.previous_weights is not None
    change = [w.detach() - p for w, p in zip(task.mlp.weights, task.previous_weights)]
    return task.image_spec.image(change) * CHANGE_SCALE


def _training_state(task: TrainingTask) -> np.ndarray:
    progress = task.steps / task.config.episode_length
    return state_vector(progress, task.last_val_accuracy, task.val_accuracy_before, task.train_loss,
                        task.train_loss_before, task.last_action)


OBSERVATION_PARTS: dict[str, ObservationPart] = {}


def register_observation_part(part: ObservationPart) -> ObservationPart:
    """Add `part` to `OBSERVATION_PARTS` (replacing one of the same name): the env, its spaces, the SB3 adapter
    and the agents' features extractor then take it."""
    OBSERVATION_PARTS[part.name] = part
    return part


for _part in (
    ObservationPart("weights", "image", lambda layout: layout.weight_image_shape[0], _weights,
                    "the weight image (mean and rms of each block of each weight matrix)"),
    ObservationPart("weight_change", "image", lambda layout: layout.weight_image_shape[0], _weight_change,
                    f"the image of the weights' change since the last step, x{CHANGE_SCALE:g}",
                    tracks_previous_weights=True),
    ObservationPart("training_state", "state", lambda layout: len(STATE_FIELDS) + layout.action_dim,
                    _training_state, "progress, validation accuracy and log train loss (now and a step before), "
                    "the last action"),
    ObservationPart("layer_stats", "state", lambda layout: layout.slots * LAYER_STATS_COLUMNS, layer_stats,
                    "per layer slot: present, log2 sizes and 18 shape-free statistics of the weights"),
    ObservationPart("layer_change_stats", "state", lambda layout: layout.slots * LAYER_CHANGE_COLUMNS,
                    lambda task: layer_change_stats(task, CHANGE_SCALE),
                    f"per layer slot: 18 shape-free statistics of the weights' change since the last step, "
                    f"x{CHANGE_SCALE:g}", tracks_previous_weights=True),
):
    register_observation_part(_part)


def check_parts(parts: object) -> tuple[str, ...]:
    """`parts` as a tuple of known parts, each once, ``weights`` first where it is shown (the image's first channels
    are the weights: an ENN exported from the critic reads them there), or a ValueError naming them."""
    ok = isinstance(parts, (tuple, list)) and len(parts) > 0 and len(set(parts)) == len(parts) and all(
        isinstance(p, str) and p in OBSERVATION_PARTS for p in parts) and (
        "weights" not in parts or parts[0] == "weights")
    if not ok:
        raise ValueError(f"observation={parts!r} is not allowed; expected some of {list(OBSERVATION_PARTS)}, each "
                         "once, 'weights' first if shown")
    return tuple(parts)


@dataclass(frozen=True)
class ObservationLayout:
    """The observation of a list of parts: its space, its values, and each part's place in it."""

    parts: tuple[str, ...]
    weight_image_shape: tuple[int, int, int]  # (C, H, W) of the weight image alone
    action_dim: int
    n_layers: int  # weight matrices of the MLP
    slots: int = 0  # layer slots of the shape-free parts (0: one per weight matrix)

    def __post_init__(self) -> None:
        if not self.slots:
            object.__setattr__(self, "slots", self.n_layers)

    def _sizes(self, joins: str) -> list[tuple[ObservationPart, int]]:
        entries = [OBSERVATION_PARTS[name] for name in self.parts]
        return [(p, p.size(self)) for p in entries if p.joins == joins]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        _, height, width = self.weight_image_shape
        return (sum(size for _, size in self._sizes("image")), height, width)

    @property
    def state_dim(self) -> int:
        return sum(size for _, size in self._sizes("state"))

    @property
    def has_image(self) -> bool:
        return self.image_shape[0] > 0

    @property
    def is_dict(self) -> bool:
        """Image and state both: a `Dict` observation."""
        return self.has_image and self.state_dim > 0

    @property
    def tracks_previous_weights(self) -> bool:
        return any(OBSERVATION_PARTS[name].tracks_previous_weights for name in self.parts)

    def single_space(self) -> spaces.Space:
        image = spaces.Box(-OBS_LIMIT, OBS_LIMIT, self.image_shape, np.float32)
        state = spaces.Box(-STATE_LIMIT, STATE_LIMIT, (self.state_dim,), np.float32)
        if not self.has_image:
            return state
        return spaces.Dict({"image": image, "state": state}) if self.is_dict else image

    def flat_slices(self) -> dict[str, slice]:
        """Each part's slice of a `flatten`ed observation: the image's parts first, then the state's."""
        _, height, width = self.weight_image_shape
        slices, start = {}, 0
        for joins, unit in (("image", height * width), ("state", 1)):
            for part, size in self._sizes(joins):
                slices[part.name] = slice(start, start + size * unit)
                start += size * unit
        return slices

    def observe(self, task: TrainingTask) -> np.ndarray | dict[str, np.ndarray]:
        """Every model's observation: the image parts as channels, finite and inside the bounds; with state parts,
        a dict of that image and the state vector (the state vector alone without image parts)."""
        if not self.has_image:
            return self._state(task)
        channels = [torch.as_tensor(part.observe(task)) for part, _ in self._sizes("image")]
        image = channels[0] if len(channels) == 1 else torch.cat(channels, dim=1)
        image = torch.nan_to_num(image, nan=0.0, posinf=OBS_LIMIT, neginf=-OBS_LIMIT)
        image = image.clamp_(-OBS_LIMIT, OBS_LIMIT).numpy()
        if not self.is_dict:
            return image
        return {"image": image, "state": self._state(task)}

    def _state(self, task: TrainingTask) -> np.ndarray:
        entries = [np.asarray(part.observe(task), dtype=np.float32) for part, _ in self._sizes("state")]
        state = np.nan_to_num(np.concatenate(entries, axis=1), nan=0.0, posinf=STATE_LIMIT, neginf=-STATE_LIMIT)
        return np.clip(state, -STATE_LIMIT, STATE_LIMIT)


def select(observation: np.ndarray | dict[str, np.ndarray], index: int | np.ndarray
           ) -> np.ndarray | dict[str, np.ndarray]:
    """Model `index`'s observation(s) out of a batch of (N, ...) arrays, or of a dict of them."""
    if isinstance(observation, dict):
        return {k: v[index] for k, v in observation.items()}
    return observation[index]


def flatten(observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """A batch of observations as one (N, features) array: the image, then the state (`ObservationLayout.flat_slices`
    says where each part lies)."""
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
    """(N, len(STATE_FIELDS) + action_dim) float32 training states from per-model arrays (N,) and last actions
    (N, action_dim)."""

    def log_loss(loss: np.ndarray) -> np.ndarray:
        return np.log1p(np.clip(np.nan_to_num(loss, nan=STATE_LIMIT, posinf=STATE_LIMIT), 0.0, STATE_LIMIT))

    columns = [progress, val_accuracy, val_accuracy_before, log_loss(train_loss), log_loss(train_loss_before)]
    return np.concatenate([np.stack(columns, axis=1), last_action], axis=1).astype(np.float32)

