"""The ENN bodies in plain PyTorch (no Stable-Baselines3 needed): what turns an MLP's weights into features.

Seven encoders, one `EncoderKind` each in `ENCODERS`, named in an ENN's metadata
(``architecture.encoder.type``):

- ``image`` (`WeightImageEncoder`): the paper's representation, a small CNN over the downsampled
  weight image. It keeps the spatial grid of a tiny, wide image with padded 3x3 convolutions, pools
  it to a fixed (4, 8) grid whatever the input size, and adds per-channel summary statistics (mean,
  std, mean |w|, max |w|) that pooling alone would blur. A CNN over the image is not invariant to
  permuting hidden units, which leaves the MLP's function unchanged.
- ``stats`` (`StatsEncoder`): permutation-invariant, differentiable per-layer statistics of the
  weight matrices (`weight_statistics`: moments, row and column norms, quantiles), standardized and
  fed to a small MLP. The differentiable cousin of StatNN (`agents.enn.statnn`).
- ``nfn`` (`agents.enn.nfn_encoder.NFNEncoder`): the field's permutation-equivariant encoder over raw
  weights and biases (PyPI `nfn`).
- ``probe`` and ``probe+stats`` (`agents.enn.probe_encoder.ProbeEncoder`): the MLP's outputs on a set of
  probe inputs, summarised over the set (ProbeGen's idea), alone or beside the weight statistics.
- ``any-stats`` and ``any-probe+stats`` (`agents.enn.any_shape.AnyShapeEncoder`): the same features for MLPs
  of any hidden widths and of one to three hidden layers, one ENN for all of a data set's shapes.

Every architectural choice here is ours, but for the NFN's layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gi_envs.spec import ImageSpec
from gi_envs.weight_statistics import STATISTICS_PER_LAYER, robust_centre_spread, weight_statistics

POOLED_GRID = (4, 8)


class WeightImageEncoder(nn.Module):
    """Conv(3x3) -> ReLU -> Conv(3x3) -> ReLU -> adaptive pool to 4x8 -> concat channel stats -> Linear -> ReLU.

    :param in_channels: C, the number of channels of the weight image.
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


class StatsEncoder(nn.Module):
    """`weight_statistics` -> per-feature standardization -> Linear -> ReLU -> Linear -> ReLU.

    Its input is the statistics vector, not the weights, so that an ENN's forward takes one tensor
    whatever its encoder (`ENN.inputs_of` computes it, differentiably).

    :param in_features: length of the statistics vector (layers * `STATISTICS_PER_LAYER`).
    :param features_dim: size of the feature vector.
    :param hidden: width of the hidden layer.
    """

    def __init__(self, in_features: int, features_dim: int = 64, hidden: int = 128):
        super().__init__()
        # set from the fit data by `standardize`; saved with the state_dict like any parameter
        self.register_buffer("centre", torch.zeros(in_features))
        self.register_buffer("spread", torch.ones(in_features))
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, features_dim), nn.ReLU())

    @torch.no_grad()
    def standardize(self, statistics: torch.Tensor) -> None:
        """Centre and scale every input feature by its median and spread over `statistics`."""
        centre, spread = robust_centre_spread(statistics)
        self.centre.copy_(centre)
        self.spread.copy_(spread)

    def zoo_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fitting zoo's centre and spread of the weight statistics (what `ENN.zoo_distance` measures against)."""
        return self.centre, self.spread

    def forward(self, statistics: torch.Tensor) -> torch.Tensor:
        z = ((statistics - self.centre) / self.spread).clamp(-20.0, 20.0)
        return self.mlp(z)


@dataclass(frozen=True)
class FitSettings:
    """How an ENN is fitted by regression (`agents.enn.fit.fit_regressor`).

    :param epochs: at most this many passes over the fit data.
    :param lr: Adam's learning rate.
    :param batch_size: minibatch size.
    :param seed: draws the early-stopping groups (and seeds torch's global generator, which the minibatch
        order and a new ENN's init draw from).
    :param val_share: share of the groups (episodes, runs) held out for early stopping.
    :param patience: stop after this many epochs without a better early-stopping loss (None: run them all).
    """

    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    val_share: float = 0.1
    patience: int | None = None


ZOO_FIT = FitSettings(epochs=200, batch_size=32, patience=30)  # chosen on the early-stopping loss of fit runs only

EncoderInputs = Callable[[Sequence[torch.Tensor], "Sequence[torch.Tensor] | None", "ImageSpec | None"], torch.Tensor]
"""(weights (N, out, in) each, biases (N, out) each or None, the ENN's image settings) -> what the encoder reads."""


@dataclass(frozen=True)
class EncoderKind:
    """One encoder: what it reads of an MLP and how to compute that, how to build it, how a zoo fits it.

    :param name: what an ENN's metadata (``architecture.encoder.type``) and `fit_zoo_enn` call it.
    :param build: the module from its metadata (without ``type``).
    :param new_spec: the metadata of a new encoder for MLPs of these (out, in) layer shapes and image channels.
    :param inputs: what the encoder reads, from the weights (and biases, and image settings), differentiably;
        ``None`` for an `any_shape` encoder, whose module computes it (``inputs_of``).
    :param description: one line for help texts.
    :param reads_image: it reads the weight image, so its ENN carries image settings (`ImageSpec`).
    :param reads_biases: it reads biases too, so every caller hands them over.
    :param reads_probes: it runs the MLP on probe inputs (``n_probes``, ``probes``; `set_probe_inputs`), so a new
        one's metadata also gets the MLP's ``activation``.
    :param zoo_fit: how ``fit-enn`` fits it to a zoo.
    :param any_shape: it reads MLPs of any hidden widths and depth (of the data set its ENN was made for): its
        module checks their shapes (``check_shapes``) and computes what it reads (``inputs_of``), and a zoo of many
        shapes fits it.
    """

    name: str
    build: Callable[..., nn.Module]
    new_spec: Callable[[Sequence[tuple[int, int]], int], dict]
    inputs: EncoderInputs | None
    description: str
    reads_image: bool = False
    reads_biases: bool = False
    reads_probes: bool = False
    zoo_fit: FitSettings = ZOO_FIT
    any_shape: bool = False


def _nfn(**spec: object) -> nn.Module:
    from agents.enn.nfn_encoder import NFNEncoder

    return NFNEncoder(**spec)  # type: ignore[arg-type]


def _probe(**spec: object) -> nn.Module:
    from agents.enn.probe_encoder import ProbeEncoder

    return ProbeEncoder(**spec)  # type: ignore[arg-type]


def _any_shape(**spec: object) -> nn.Module:
    from agents.enn.any_shape import AnyShapeEncoder

    return AnyShapeEncoder(**spec)  # type: ignore[arg-type]


def _any_shape_spec(probes: str) -> Callable[[Sequence[tuple[int, int]], int], dict]:
    def spec(shapes: Sequence[tuple[int, int]], channels: int) -> dict:
        from agents.enn.probe_encoder import N_PROBES

        return {"in_features": shapes[0][1], "classes": shapes[-1][0], "probes": probes,
                **({"n_probes": N_PROBES} if probes != "none" else {}), "features_dim": 64, "hidden": 128}
    return spec


def _probe_spec(statistics: bool) -> Callable[[Sequence[tuple[int, int]], int], dict]:
    def spec(shapes: Sequence[tuple[int, int]], channels: int) -> dict:
        from agents.enn.probe_encoder import N_PROBES

        return {"layer_shapes": [list(s) for s in shapes], "n_probes": N_PROBES, "probes": "data",
                "statistics": statistics, "features_dim": 64, "hidden": 128}
    return spec


def _statistics_and_packed(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None,
                           image: ImageSpec | None) -> torch.Tensor:
    return torch.cat([weight_statistics(weights), _packed_inputs(weights, biases, image)], dim=1)


def _image_inputs(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None,
                  image: ImageSpec | None) -> torch.Tensor:
    assert image is not None, "an image encoder's ENN carries its image settings"
    return image.image(weights)


def _packed_inputs(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None,
                   image: ImageSpec | None) -> torch.Tensor:
    from agents.enn.nfn_encoder import pack

    assert biases is not None, "ENN.inputs_of hands biases to an encoder that reads them"
    return pack(weights, biases)


ENCODERS: dict[str, EncoderKind] = {}


def register_encoder(kind: EncoderKind) -> EncoderKind:
    """Add `kind` to `ENCODERS` (replacing one of the same name): ENNs, ``fit-enn`` and the guide then take it."""
    ENCODERS[kind.name] = kind
    return kind


for _kind in (
    EncoderKind("image", WeightImageEncoder,
                lambda shapes, channels: {"in_channels": channels, "features_dim": 128, "channels": 32},
                _image_inputs, "the paper's weight-image CNN", reads_image=True),
    EncoderKind("stats", StatsEncoder,
                lambda shapes, channels: {"in_features": STATISTICS_PER_LAYER * len(shapes), "features_dim": 64,
                                          "hidden": 128},
                lambda weights, biases, image: weight_statistics(weights),
                "permutation-invariant weight statistics into an MLP"),
    # the NFN's epochs cost ~50x the statistics encoder's, and it early-stops sooner at minibatches of 64
    EncoderKind("nfn", _nfn, lambda shapes, channels: {"layer_shapes": [list(s) for s in shapes], "features_dim": 64},
                _packed_inputs, "a permutation-equivariant neural functional (NFN-NP) over raw weights and biases",
                reads_biases=True, zoo_fit=FitSettings(epochs=200, batch_size=64, patience=15)),
    EncoderKind("probe", _probe, _probe_spec(statistics=False), _packed_inputs,
                "the MLP's outputs on probe inputs (unlabeled inputs of the data set), summarised over the probes",
                reads_biases=True, reads_probes=True),
    EncoderKind("probe+stats", _probe, _probe_spec(statistics=True), _statistics_and_packed,
                "the probe summary beside the weight statistics", reads_biases=True, reads_probes=True),
    EncoderKind("any-stats", _any_shape, _any_shape_spec("none"), None,
                "weight statistics of MLPs of any width and of 1 to 3 hidden layers", any_shape=True),
    EncoderKind("any-probe+stats", _any_shape, _any_shape_spec("data"), None,
                "probe summary and weight statistics of MLPs of any width and of 1 to 3 hidden layers",
                reads_biases=True, reads_probes=True, any_shape=True),
):
    register_encoder(_kind)


def encoder_kind(name: str) -> EncoderKind:
    """The entry of `ENCODERS` called `name`, or a ValueError naming the known ones."""
    if name not in ENCODERS:
        raise ValueError(f"encoder={name!r} is not known; expected one of {list(ENCODERS)}")
    return ENCODERS[name]




def build_encoder(spec: dict) -> nn.Module:
    """The encoder an ENN's metadata describes: ``{"type": NAME, ...its arguments}`` (no ``type``: ``image``, as in
    files written before there was a choice)."""
    spec = dict(spec)
    kind = spec.pop("type", "image")
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder type {kind!r} in ENN metadata; expected one of {list(ENCODERS)}")
    return ENCODERS[kind].build(**spec)
