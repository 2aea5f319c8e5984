"""The field's weight-space encoder: a permutation-equivariant neural functional (NFN, Zhou et al. 2023).

It reads an MLP's raw weights and biases (PyPI `nfn`, MIT): two `NPLinear` layers with input/output
position embeddings (the paper's NP-PosEmb), ReLU between them, then `NPPool`'s per-layer means and a
linear layer. Permuting an MLP's hidden units permutes the NPLinear features the same way and leaves
the pooled ones unchanged (a test checks it). Inputs are normalised as the paper's code does: every
layer's weights, and its biases, by one mean and one standard deviation over the fit set
(`NFNEncoder.standardize`); those statistics skip the blown-up values of diverged MLPs (beyond
`INPUT_CLIP`), and normalised inputs are clipped to +-`Z_CLIP`, as the statistics encoder's are.

Its input is one flat tensor per MLP (weights then biases, layer by layer: `pack`), so that an ENN's
forward takes one tensor whatever its encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NFN_CHANNELS = 32
INPUT_CLIP = 100.0  # weights beyond this (diverged MLPs) are left out of the normalising statistics
Z_CLIP = 20.0


def pack(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N, params) from N MLPs' weight matrices (N, out, in) and biases (N, out): layer by layer, weights then
    biases."""
    parts = []
    for w, b in zip(weights, biases):
        parts += [w.flatten(1), b.flatten(1)]
    return torch.cat(parts, dim=1)


class NFNEncoder(nn.Module):
    """Packed weights and biases -> per-layer standardization -> NPLinear -> ReLU -> NPLinear -> ReLU -> NPPool ->
    Linear -> ReLU.

    :param layer_shapes: (out, in) of each weight matrix of the MLPs it reads.
    :param features_dim: size of the feature vector.
    :param channels: channels of the two NPLinear layers.
    """

    def __init__(self, layer_shapes: Sequence[Sequence[int]], features_dim: int = 64, channels: int = NFN_CHANNELS):
        super().__init__()
        from nfn import layers
        from nfn.common import network_spec_from_wsfeat

        self.layer_shapes = [tuple(int(d) for d in s) for s in layer_shapes]
        n = len(self.layer_shapes)
        self.register_buffer("centre", torch.zeros(2 * n))  # per layer: weights, biases
        self.register_buffer("spread", torch.ones(2 * n))
        spec = network_spec_from_wsfeat(self._features(torch.zeros(1, self.n_params)))
        self.layers = nn.Sequential(layers.NPLinear(spec, 1, channels, io_embed=True), layers.TupleOp(nn.ReLU()),
                                    layers.NPLinear(spec, channels, channels, io_embed=True),
                                    layers.TupleOp(nn.ReLU()), layers.NPPool(spec))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 2 * n, features_dim), nn.ReLU())

    @property
    def n_params(self) -> int:
        return sum(out * fan_in + out for out, fan_in in self.layer_shapes)

    def _split(self, packed: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's weights (N, out, in) and biases (N, out), in order."""
        parts, start = [], 0
        for out, fan_in in self.layer_shapes:
            parts.append(packed[:, start : start + out * fan_in].view(-1, out, fan_in))
            start += out * fan_in
            parts.append(packed[:, start : start + out])
            start += out
        return parts

    def _features(self, packed: torch.Tensor, normalized: bool = False):
        from nfn.common import WeightSpaceFeatures

        parts = self._split(packed)
        if normalized:
            parts = [((p - self.centre[i]) / self.spread[i]).clamp(-Z_CLIP, Z_CLIP) for i, p in enumerate(parts)]
        return WeightSpaceFeatures([w.unsqueeze(1) for w in parts[0::2]], [b.unsqueeze(1) for b in parts[1::2]])

    @torch.no_grad()
    def standardize(self, packed: torch.Tensor) -> None:
        """Set each layer's weight and bias mean and standard deviation from the fit set (the NFN paper's
        normalisation); a spread below 1e-5 counts as 1."""
        for i, part in enumerate(self._split(packed)):
            values = part[part.abs() < INPUT_CLIP]
            self.centre[i] = values.mean() if len(values) else 0.0
            spread = values.std() if len(values) > 1 else torch.tensor(0.0)
            self.spread[i] = spread if spread > 1e-5 else 1.0

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self._features(packed, normalized=True)))
