"""The any-shape encoder: one ENN for a data set's MLPs of any hidden widths and of one to three hidden layers.

The weight statistics (`gi_envs.weight_statistics`) are per layer and do not depend on the widths, and an
MLP's outputs on probe inputs depend only on its input and output sizes. So `AnyShapeEncoder` reads an
MLP of any shape into one fixed-size vector: its layers' statistics in `MAX_HIDDEN_LAYERS` + 1 slots
(the first layer in the first slot, the output layer in the last, hidden-to-hidden layers in between;
a slot no layer fills is zero and masked), each slot beside a present flag and the log2 of its matrix's
sizes (a row norm grows with the fan-in: the ENN must know the widths to read it), and, with probes,
the summary of the MLP's outputs on its probe inputs (`agents.enn.probe_encoder.probe_summary`). It is
differentiable in the weights and biases, so guidance works for any shape.

Unlike `ProbeEncoder`, the features are computed before the encoder's network (`inputs_of`), for each
shape on its own, so that one tensor holds MLPs of every shape; probes are therefore fixed, not learned.
The widths and depths of the fitting zoo are recorded at fitting (`standardize`), and
`ENN.zoo_distance` flags an MLP of a shape outside them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from agents.enn.probe_encoder import N_PROBES, SUMMARY_SCALARS, check_probe_settings, probe_summary
from gi_envs.batched_mlp import ACTIVATIONS
from gi_envs.layer_observation import layer_slots
from gi_envs.weight_statistics import STATISTIC_NAMES, STATISTICS_PER_LAYER, robust_centre_spread, weight_statistics

MAX_HIDDEN_LAYERS = 3
SHAPE_COLUMNS = 3  # per slot: present, log2 of the matrix's rows (out), log2 of its columns (in)
SLOT_COLUMNS = STATISTICS_PER_LAYER + SHAPE_COLUMNS
ANY_SHAPE_PROBES = ("none", "data", "gaussian", "inputs")


def layer_name(layer: int, n_layers: int) -> str:
    """How a flag names a weight matrix: the input layer, hidden layer k, or the output layer."""
    return "the input layer" if layer == 0 else "the output layer" if layer == n_layers - 1 else f"hidden layer {layer}"


class AnyShapeEncoder(nn.Module):
    """Slotted per-layer statistics [and the probe summary] of an MLP of any shape -> masked standardization ->
    Linear -> ReLU -> Linear -> ReLU.

    :param in_features: the MLPs' input width (the data set's).
    :param classes: their output width.
    :param activation: their hidden activation (a name of `gi_envs.batched_mlp.ACTIVATIONS`).
    :param probes: ``none`` (statistics only), or where the probe inputs come from: ``data`` (unlabeled inputs of
        the data set, set at fitting), ``gaussian`` (fixed N(0, 1)) or ``inputs`` (a user's own).
    :param n_probes: how many probe inputs.
    :param max_hidden_layers: the deepest MLP it reads.
    :param features_dim: size of the feature vector.
    :param hidden: width of the hidden layer.
    :param seed: draws the initial N(0, 1) probes.
    :param zoo_members: how many shapes the fitting zoo held (set by `standardize`, recorded in the ENN's metadata
        through `fitted_spec`): each one's centre and spread of the statistics are kept for `zoo_scores`.
    """

    def __init__(self, in_features: int, classes: int, activation: str = "relu", probes: str = "none",
                 n_probes: int = N_PROBES, max_hidden_layers: int = MAX_HIDDEN_LAYERS, features_dim: int = 64,
                 hidden: int = 128, seed: int = 0, zoo_members: int = 0):
        super().__init__()
        if probes == "learned":
            raise ValueError("probes='learned' is not allowed for an any-shape encoder: it computes the probe summary "
                             f"before its network, for each shape apart; expected one of {list(ANY_SHAPE_PROBES)}")
        check_probe_settings(probes, ANY_SHAPE_PROBES, activation, n_probes)
        if not 1 <= max_hidden_layers <= 8:
            raise ValueError(f"max_hidden_layers={max_hidden_layers} is not allowed; expected 1 to 8")
        self.in_features, self.classes, self.slots = int(in_features), int(classes), max_hidden_layers + 1
        self.activation = ACTIVATIONS[activation]
        self.reads_probes = probes != "none"
        self.n_statistics = self.slots * SLOT_COLUMNS
        n_features = self.n_statistics + (3 * self.classes + SUMMARY_SCALARS if self.reads_probes else 0)
        if self.reads_probes:
            generator = torch.Generator().manual_seed(seed)
            self.register_buffer("probes", torch.randn(n_probes, self.in_features, generator=generator))
        self.register_buffer("centre", torch.zeros(n_features))  # set by `standardize`, saved in the state_dict
        self.register_buffer("spread", torch.ones(n_features))
        # the fitting zoo's smallest and largest hidden width and depth, set by `standardize` (0: not fitted yet)
        self.register_buffer("zoo_shapes", torch.zeros(4))
        self.register_members(torch.zeros(zoo_members, self.slots * SHAPE_COLUMNS),
                              torch.zeros(zoo_members, self.n_statistics), torch.ones(zoo_members, self.n_statistics))
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, features_dim), nn.ReLU())

    def register_members(self, shapes: torch.Tensor, centre: torch.Tensor, spread: torch.Tensor) -> None:
        """Keep each zoo shape's shape columns (its slots' present flags and log2 sizes) and the centre and spread of
        its MLPs' statistics (all slots' columns): what `zoo_scores` measures an MLP against."""
        self.register_buffer("member_shapes", shapes)
        self.register_buffer("member_centre", centre)
        self.register_buffer("member_spread", spread)

    def fitted_spec(self) -> dict:
        """What the ENN's metadata must add after `standardize` to rebuild this module: the zoo's number of shapes."""
        return {"zoo_members": len(self.member_shapes)}

    def check_shapes(self, layer_shapes: Sequence[Sequence[int]], what: str = "this ENN") -> None:
        """A ValueError naming what this encoder reads when `layer_shapes` ((out, in) per matrix) is no MLP of it."""
        shapes = [tuple(int(d) for d in s) for s in layer_shapes]
        chained = all(shapes[k][0] == shapes[k + 1][1] for k in range(len(shapes) - 1))
        if (not 2 <= len(shapes) <= self.slots or not chained or shapes[0][1] != self.in_features
                or shapes[-1][0] != self.classes):
            raise ValueError(f"{what} reads MLPs of {self.in_features} inputs and {self.classes} outputs with 1 to "
                             f"{self.slots - 1} hidden layers of any width; got weight shapes {shapes} (out, in)")

    def set_probe_inputs(self, inputs: torch.Tensor) -> None:
        """Use `inputs` (P, in), unlabeled inputs of the MLPs' task, as the probes (P may differ from before)."""
        inputs = torch.as_tensor(inputs, dtype=torch.float32)
        if not self.reads_probes:
            raise ValueError("this any-shape encoder reads no probes (probes='none')")
        if inputs.ndim != 2 or inputs.shape[1] != self.in_features or inputs.shape[0] < 2:
            raise ValueError(f"probe inputs of shape {tuple(inputs.shape)} do not fit: expected (P, {self.in_features})"
                             " with P >= 2, one row per unlabeled input of the MLPs' task")
        self.probes = inputs.clone()

    def inputs_of(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """(N, features) of N MLPs of one shape (weights (N, out, in) each, biases (N, out) each): differentiable."""
        statistics = self.statistics_of(weights)
        if not self.reads_probes:
            return statistics
        if biases is None:
            raise ValueError("an any-shape encoder with probes runs the MLPs: pass their biases beside the weights")
        return torch.cat([statistics, probe_summary(self.outputs(weights, biases))], dim=1)

    def statistics_of(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, slots * `SLOT_COLUMNS`): each slot's weight statistics, present flag and log2 sizes (zeros where no
        layer fills it)."""
        self.check_shapes([w.shape[-2:] for w in weights])
        n, columns = weights[0].shape[0], []
        by_slot = dict(zip(layer_slots(len(weights), self.slots), weights))
        for slot in range(self.slots):
            w = by_slot.get(slot)
            if w is None:
                columns.append(weights[0].new_zeros(n, SLOT_COLUMNS))
                continue
            sizes = w.new_tensor([1.0, math.log2(w.shape[1]), math.log2(w.shape[2])]).expand(n, SHAPE_COLUMNS)
            columns += [weight_statistics([w]), sizes]
        return torch.cat(columns, dim=1)

    def outputs(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, P, classes) logits of each MLP on every probe."""
        h = torch.einsum("pi,noi->npo", self.probes, weights[0]) + biases[0].unsqueeze(1)
        for w, b in zip(weights[1:], biases[1:]):
            h = torch.baddbmm(b.unsqueeze(1), self.activation(h), w.transpose(1, 2))
        return h

    def mask(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, features): 1 where a feature is read (its slot holds a layer, or it is the probe summary), else 0."""
        flags = inputs[:, STATISTICS_PER_LAYER : self.n_statistics : SLOT_COLUMNS]
        present = flags.repeat_interleave(SLOT_COLUMNS, dim=1)
        return torch.cat([present, present.new_ones(len(inputs), inputs.shape[1] - self.n_statistics)], dim=1)

    @torch.no_grad()
    def standardize(self, inputs: torch.Tensor) -> None:
        """Centre and scale every feature by its median and robust spread over the fit MLPs whose slot it is in
        (the present flags stay 0/1), and record the fitting zoo's widths and depths."""
        mask = self.mask(inputs).bool()
        for k in range(inputs.shape[1]):
            values = inputs[mask[:, k], k]
            if k < self.n_statistics and k % SLOT_COLUMNS == STATISTICS_PER_LAYER or not len(values):
                self.centre[k], self.spread[k] = 0.0, 1.0
                continue
            centre = values.median()
            spread = (values - centre).abs().median() * 1.4826
            self.centre[k], self.spread[k] = centre, spread if spread > 1e-8 else 1.0
        present = inputs[:, STATISTICS_PER_LAYER : self.n_statistics : SLOT_COLUMNS] > 0.5
        outs = inputs[:, STATISTICS_PER_LAYER + 1 : self.n_statistics : SLOT_COLUMNS].exp2().round()
        hidden = outs[:, :-1][present[:, :-1]]
        depths = present.sum(1) - 1
        self.zoo_shapes.copy_(torch.stack([hidden.min(), hidden.max(), depths.min(), depths.max()]).float())
        shapes = self.shape_columns(inputs)
        members, which = shapes.unique(dim=0, return_inverse=True)
        centres, spreads = [], []
        for k in range(len(members)):
            centre, spread = robust_centre_spread(inputs[which == k, : self.n_statistics])
            centres.append(centre)
            spreads.append(spread)
        self.register_members(members, torch.stack(centres), torch.stack(spreads))

    def shape_columns(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, slots * 3): each slot's present flag and log2 sizes, which say an MLP's shape."""
        columns = [inputs[:, slot * SLOT_COLUMNS + STATISTICS_PER_LAYER : (slot + 1) * SLOT_COLUMNS]
                   for slot in range(self.slots)]
        return torch.cat(columns, dim=1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z = ((inputs - self.centre) / self.spread).clamp(-20.0, 20.0) * self.mask(inputs)
        return self.mlp(z)

    def shapes_read(self) -> str:
        """What the fitting zoo held: '1 to 3 hidden layers of widths 16 to 256'."""
        low, high, shallow, deep = (int(v) for v in self.zoo_shapes.tolist())
        if not high:
            return f"1 to {self.slots - 1} hidden layers of any width (not fitted yet)"
        return f"{shallow} to {deep} hidden layers of widths {low} to {high}"

    @torch.no_grad()
    def zoo_scores(self, weights: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[str], str]:
        """How MLPs of one shape lie against the fitting zoo: (N, K) robust z-scores of their layers' statistics
        against the zoo's shape nearest theirs (of the same depth, the closest log2 widths; a statistic's spread
        depends on the widths: a 16-row layer's row-norm spread is noisier than a 256-row one's), the name of each
        of the K, and why their shape itself lies outside the zoo ('' when it does not)."""
        n_layers = len(weights)
        inputs = self.statistics_of(weights)
        shapes = self.shape_columns(inputs[:1])[0]
        same_depth = [k for k in range(len(self.member_shapes)) if torch.equal(
            self.member_shapes[k, 0::SHAPE_COLUMNS], shapes[0::SHAPE_COLUMNS])]
        columns = [c for slot in layer_slots(n_layers, self.slots)
                   for c in range(slot * SLOT_COLUMNS, slot * SLOT_COLUMNS + STATISTICS_PER_LAYER)]
        if same_depth:
            nearest = min(same_depth, key=lambda k: float((self.member_shapes[k] - shapes).abs().sum()))
            centre, spread = self.member_centre[nearest, columns], self.member_spread[nearest, columns]
        else:  # no zoo shape of this depth: the pooled centre and spread
            centre, spread = self.centre[columns], self.spread[columns]
        z = ((inputs[:, columns] - centre) / spread).abs()
        names = [f"weight {statistic} of {layer_name(layer, n_layers)}" for layer in range(n_layers)
                 for statistic in STATISTIC_NAMES]
        low, high, shallow, deep = (int(v) for v in self.zoo_shapes.tolist())
        widths, depth = [w.shape[1] for w in weights[:-1]], n_layers - 1
        outside = [f"hidden width {v} lies outside the zoo's {low} to {high}" for v in widths
                   if high and not low <= v <= high]
        if high and not shallow <= depth <= deep:
            outside.append(f"{depth} hidden layers lie outside the zoo's {shallow} to {deep}")
        return z, names, "; ".join(outside)
