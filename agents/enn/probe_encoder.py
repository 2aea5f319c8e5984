"""The probing encoder: what an MLP outputs on a set of probe inputs, beside (or instead of) its weight statistics.

ProbeGen (Kahana et al., ICLR 2025) found that a model's outputs on a few probe inputs predict its
accuracy better than weight-space encoders, for far fewer FLOPs. `ProbeEncoder` runs every MLP it reads
(weights and biases, packed as `agents.enn.nfn_encoder.pack` packs them) on its probes and summarises
the outputs over the set of probes: the mean and spread of the ranked softmax probabilities, the ranked
class shares, the entropy, the top-two margin and the logit scale (`probe_summary`). Outputs do not
change when hidden units are permuted, and a summary over the set does not change when the probes are
reordered, so a user's own unlabeled inputs can stand in for the probes the ENN was fitted with
(`set_probe_inputs`). Everything is differentiable in the weights, so guidance and Grad-CAM work.

Probes (`PROBE_SOURCES`): ``data``, unlabeled inputs of the zoo's data set (set at fitting), ``gaussian``,
fixed N(0, 1) inputs, ``learned``, N(0, 1) inputs trained with the ENN (ProbeGen's idea), or ``inputs``,
a user's own. They travel inside the ENN's file (a buffer, or a parameter when learned).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gi_envs.batched_mlp import ACTIVATIONS
from gi_envs.weight_statistics import STATISTICS_PER_LAYER, robust_centre_spread

PROBE_SOURCES = ("data", "gaussian", "learned", "inputs")
N_PROBES = 128
SUMMARY_SCALARS = 6  # entropy, margin and logit scale: mean and std of each over the probes
STANDARDIZE_CHUNK = 256  # MLPs per chunk when the fit set's features are computed for standardization


def load_probe_inputs(path: str | os.PathLike) -> torch.Tensor:
    """(P, in) unlabeled inputs from a ``.npy`` array or a ``.csv`` of numbers (one input per row, no header), in
    the units the MLPs were trained on."""
    path = Path(path)
    if path.suffix not in (".npy", ".csv"):
        raise ValueError(f"{path}: probe inputs are read from a .npy or .csv file, not {path.suffix or 'no suffix'!r}")
    try:
        array = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",",
                                                                                           ndmin=2)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read probe inputs ({error})") from error
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ValueError(f"{path}: probe inputs must be a 2-D array of finite numbers (one input per row); got "
                         f"shape {array.shape}, dtype {array.dtype}")
    return torch.from_numpy(array.astype(np.float32))


def check_probe_settings(probes: str, allowed: Sequence[str], activation: str, n_probes: int) -> None:
    """A ValueError naming the setting and what is allowed, for a probing encoder's probes, activation or count."""
    if probes not in allowed:
        raise ValueError(f"probes={probes!r} is not known; expected one of {list(allowed)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not known; expected one of {list(ACTIVATIONS)}")
    if n_probes < 2:
        raise ValueError(f"n_probes={n_probes} is not allowed; expected at least 2 probe inputs")


def probe_summary(logits: torch.Tensor) -> torch.Tensor:
    """(N, P, C) logits of N MLPs on P probes -> (N, 3C + `SUMMARY_SCALARS`) features, invariant to the probes'
    order and to relabelling the classes: the mean and std over probes of the probabilities ranked per probe,
    the class shares of the probes ranked, and the mean and std of the entropy, the top-two margin and the
    logits' spread."""
    probabilities = logits.softmax(-1)
    ranked = probabilities.sort(-1, descending=True).values
    entropy = -(probabilities * logits.log_softmax(-1)).sum(-1)
    margin = ranked[..., 0] - ranked[..., 1]
    scale = logits.std(-1, unbiased=False)
    shares = probabilities.mean(1).sort(-1, descending=True).values
    scalars = [part for values in (entropy, margin, scale) for part in torch.std_mean(values, dim=1, unbiased=False)]
    return torch.cat([ranked.mean(1), ranked.std(1, unbiased=False), shares, torch.stack(scalars, dim=1)], dim=1)


class ProbeEncoder(nn.Module):
    """[weight statistics,] packed weights and biases -> [statistics,] `probe_summary` of the MLP's outputs on
    its probes -> standardization -> Linear -> ReLU -> Linear -> ReLU.

    :param layer_shapes: (out, in) of each weight matrix of the MLPs it reads.
    :param activation: the MLPs' hidden activation (a name of `gi_envs.batched_mlp.ACTIVATIONS`).
    :param n_probes: how many probe inputs.
    :param probes: where they come from (`PROBE_SOURCES`).
    :param statistics: its input starts with the MLP's `weight_statistics` (``probe+stats``), kept beside the
        probe summary.
    :param features_dim: size of the feature vector.
    :param hidden: width of the hidden layer.
    :param seed: draws the initial N(0, 1) probes.
    """

    def __init__(self, layer_shapes: Sequence[Sequence[int]], activation: str = "relu", n_probes: int = N_PROBES,
                 probes: str = "gaussian", statistics: bool = False, features_dim: int = 64, hidden: int = 128,
                 seed: int = 0):
        super().__init__()
        check_probe_settings(probes, PROBE_SOURCES, activation, n_probes)
        self.layer_shapes = [(int(o), int(i)) for o, i in layer_shapes]
        self.activation = ACTIVATIONS[activation]
        initial = torch.randn(n_probes, self.layer_shapes[0][1], generator=torch.Generator().manual_seed(seed))
        if probes == "learned":
            self.probes = nn.Parameter(initial)
        else:
            self.register_buffer("probes", initial)
        self.n_statistics = STATISTICS_PER_LAYER * len(self.layer_shapes) if statistics else 0
        n_features = self.n_statistics + 3 * self.layer_shapes[-1][0] + SUMMARY_SCALARS
        self.register_buffer("centre", torch.zeros(n_features))  # set by `standardize`, saved in the state_dict
        self.register_buffer("spread", torch.ones(n_features))
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, features_dim), nn.ReLU())

    @torch.no_grad()
    def set_probe_inputs(self, inputs: torch.Tensor) -> None:
        """Use `inputs` (P, in), unlabeled inputs of the MLPs' task, as the probes (P may differ from before)."""
        inputs = torch.as_tensor(inputs, dtype=torch.float32)
        width = self.layer_shapes[0][1]
        if inputs.ndim != 2 or inputs.shape[1] != width or inputs.shape[0] < 2:
            raise ValueError(f"probe inputs of shape {tuple(inputs.shape)} do not fit: expected (P, {width}) "
                             "with P >= 2, one row per unlabeled input of the MLPs' task")
        if isinstance(self.probes, nn.Parameter):
            self.probes = nn.Parameter(inputs.clone())
        else:
            self.probes = inputs.clone()

    def outputs(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, params) packed weights and biases -> (N, P, classes) logits of each MLP on every probe."""
        h, offset = None, 0
        for k, (out, width) in enumerate(self.layer_shapes):
            w = packed[:, offset : offset + out * width].view(-1, out, width)
            b = packed[:, offset + out * width : offset + out * width + out]
            offset += out * width + out
            h = torch.einsum("pi,noi->npo", self.probes, w) if h is None else torch.bmm(h, w.transpose(1, 2))
            h = h + b.unsqueeze(1)
            if k < len(self.layer_shapes) - 1:
                h = self.activation(h)
        assert h is not None
        return h

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The unstandardized features: the weight statistics (if read) beside the probe summary."""
        summary = probe_summary(self.outputs(inputs[:, self.n_statistics :]))
        return torch.cat([inputs[:, : self.n_statistics], summary], dim=1) if self.n_statistics else summary

    @torch.no_grad()
    def standardize(self, inputs: torch.Tensor) -> None:
        """Centre and scale every feature by its median and robust spread over the fit set's `inputs`."""
        features = torch.cat([self.features(inputs[i : i + STANDARDIZE_CHUNK])
                              for i in range(0, len(inputs), STANDARDIZE_CHUNK)])
        centre, spread = robust_centre_spread(features)
        self.centre.copy_(centre)
        self.spread.copy_(spread)

    def zoo_statistics(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fitting zoo's centre and spread of the weight statistics, where this encoder reads them."""
        if not self.n_statistics:
            return None
        return self.centre[: self.n_statistics], self.spread[: self.n_statistics]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z = ((self.features(inputs) - self.centre) / self.spread).clamp(-20.0, 20.0)
        return self.mlp(z)
