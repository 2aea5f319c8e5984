"""One description of a target MLP and one of its weight image, shared by every part of the project.

`MLPSpec` says which MLP is trained (data set, hidden widths, activation, init) and is the only
place that derives layer sizes and weight shapes from that. `ImageSpec` says how its weights are
drawn (resolution, statistics). The env's config, the guide's regimes, an ENN's metadata and the
quality snapshots all hold these two objects, so an ENN built on ``("mean", "rms")`` images is
fed such images everywhere it is used.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gi_envs.batched_mlp import ACTIVATION_MODULES, ACTIVATIONS, INITS, BatchedMLP
from gi_envs.datasets import dataset_dims, dataset_name
from gi_envs.weight_image import IMAGE_STATS, ImageLayout, image_layout, weight_image

BRIEF = reprlib.Repr()  # how a message shows a user's value: a YAML alias bomb must not take minutes to print
BRIEF.maxlevel, BRIEF.maxlist, BRIEF.maxtuple, BRIEF.maxdict, BRIEF.maxstring = 2, 8, 8, 8, 60


def positive_ints(name: str, value: object, length: int | None = None) -> tuple[int, ...]:
    """`value` as a tuple of positive integers (exactly `length` of them, if given), or a ValueError naming `name`."""
    ok = isinstance(value, (tuple, list)) and len(value) > 0 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok or (length is not None and len(value) != length):  # type: ignore[arg-type]
        shape = f"{length} positive integers" if length else "a non-empty sequence of positive integers"
        raise ValueError(f"{name}={BRIEF.repr(value)} is not allowed; expected {shape}")
    return tuple(int(v) for v in value)  # type: ignore[union-attr]


@dataclass(frozen=True)
class MLPSpec:
    """A target MLP: what it learns, its hidden widths, its activation and its initialisation.

    :param dataset: ``digits``, ``mnist``, ``fashion-mnist`` or ``synthetic-K`` (fixes the input and output widths).
    :param hidden_sizes: widths of the hidden layers.
    :param activation: ``relu``, ``tanh``, ``sigmoid`` or ``gelu``.
    :param init: ``default`` (PyTorch's `nn.Linear`) or ``he`` (He normal, zero biases).
    """

    dataset: str = "digits"
    hidden_sizes: tuple[int, ...] = (32,)
    activation: str = "relu"
    init: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_name(self.dataset))  # any case: ``MNIST`` is ``mnist``
        for name, allowed in (("activation", list(ACTIVATIONS)), ("init", INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected one of {list(allowed)}")
        object.__setattr__(self, "hidden_sizes", positive_ints("hidden_sizes", self.hidden_sizes))

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Widths from input to output, e.g. (64, 32, 10)."""
        n_features, n_classes = dataset_dims(self.dataset)
        return (n_features, *self.hidden_sizes, n_classes)

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """(out, in) of every weight matrix, input layer first (the `nn.Linear` convention)."""
        sizes = self.layer_sizes
        return tuple((fan_out, fan_in) for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))

    @property
    def n_parameters(self) -> int:
        """Weights and biases of one MLP."""
        return sum(fan_out * fan_in + fan_out for fan_out, fan_in in self.layer_shapes)

    def check_shapes(self, layer_shapes: Sequence[Sequence[int]], what: str = "this MLP") -> None:
        """Raise a ValueError naming both when weight shapes differ from this spec's."""
        shapes = tuple(tuple(int(d) for d in s) for s in layer_shapes)
        if shapes != self.layer_shapes:
            raise ValueError(f"{what} was made for an MLP with weight shapes {list(self.layer_shapes)} (out, in), "
                             f"got {list(shapes)}")

    def build(self, n_models: int) -> BatchedMLP:
        """`n_models` MLPs of this spec, all zero until `BatchedMLP.initialize` draws them (with `self.init`)."""
        return BatchedMLP(self.layer_sizes, n_models, activation=self.activation)

    def sequential(self) -> nn.Sequential:
        """A fresh `nn.Sequential` of this architecture with PyTorch's own `nn.Linear` init (global RNG)."""
        layers: list[nn.Module] = []
        for i, (fan_out, fan_in) in enumerate(self.layer_shapes):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(self.hidden_sizes):
                layers.append(ACTIVATION_MODULES[self.activation]())
        return nn.Sequential(*layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the four fields, plus the derived shapes for readers of the file."""
        return {**asdict(self), "hidden_sizes": list(self.hidden_sizes),
                "layer_shapes": [list(s) for s in self.layer_shapes]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MLPSpec:
        """Read `to_dict`'s output; files of version 1 stored only ``layer_shapes``, ``activation``, ``dataset``."""
        hidden = raw.get("hidden_sizes")
        if hidden is None:
            hidden = [int(out) for out, _ in raw["layer_shapes"][:-1]]
        spec = cls(raw["dataset"], tuple(hidden), raw.get("activation", "relu"), raw.get("init", "default"))
        if "layer_shapes" in raw:
            spec.check_shapes(raw["layer_shapes"], what=f"metadata {dict(raw)}")
        return spec


@dataclass(frozen=True)
class ImageSpec:
    """How an MLP's weights become an image: the share of each side kept, and what each pixel says.

    :param resolution: share of each side of a weight matrix kept, in (0, 1] (the paper: 0.15).
    :param stats: per pixel, ``mean`` (area average) and/or ``rms`` (root mean square); one group
        of channels, one channel per weight matrix, per entry.
    """

    resolution: float = 0.15
    stats: tuple[str, ...] = ("mean", "rms")

    def __post_init__(self) -> None:
        r = self.resolution
        if not isinstance(r, (int, float, np.integer, np.floating)) or isinstance(r, bool) or not 0.0 < r <= 1.0:
            raise ValueError(f"resolution={r!r} is not allowed; expected a number in (0.0, 1.0]")
        stats = self.stats
        if (not isinstance(stats, (tuple, list)) or not stats or len(set(stats)) != len(stats)
                or any(s not in IMAGE_STATS for s in stats)):
            raise ValueError(f"image_stats={stats!r} is not allowed; expected distinct entries of {list(IMAGE_STATS)}")
        object.__setattr__(self, "resolution", float(r))
        object.__setattr__(self, "stats", tuple(stats))

    def layout(self, mlp: MLPSpec) -> ImageLayout:
        """Where each weight matrix of `mlp` lands on the canvas."""
        return image_layout(mlp.layer_shapes, self.resolution)

    def shape(self, mlp: MLPSpec) -> tuple[int, int, int]:
        """(C, H, W) of the image of an MLP of `mlp`: one channel per weight matrix and statistic."""
        n_layers, height, width = self.layout(mlp).shape
        return (len(self.stats) * n_layers, height, width)

    def image(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """The differentiable weight image of (out, in) or (N, out, in) weights (see `weight_image`)."""
        return weight_image(weights, self.resolution, self.stats)

    def to_dict(self, mlp: MLPSpec | None = None) -> dict[str, Any]:
        """Plain JSON; with `mlp`, also the image's shape for readers of the file."""
        out: dict[str, Any] = {"resolution": self.resolution, "stats": list(self.stats)}
        if mlp is not None:
            out["shape"] = list(self.shape(mlp))
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ImageSpec:
        """Read `to_dict`'s output; files written before ``stats`` existed hold mean images."""
        return cls(float(raw["resolution"]), tuple(raw.get("stats", ("mean",))))
