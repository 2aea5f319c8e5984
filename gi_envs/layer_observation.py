"""Shape-free observation parts: per-layer statistics in a fixed number of layer slots, whatever the widths.

The weight image has the MLP's shape, so an agent that reads it acts on one MLP shape only. These parts give
every MLP of up to ``max_hidden_layers`` hidden layers the same vector: each weight matrix's statistics land in
a slot (`layer_slots`: the input layer in the first, the output layer in the last, hidden-to-hidden layers
between, so an output layer is always read as one), and a slot the MLP lacks is zero beside a zero ``present``
flag. The any-shape ENN (`agents.enn.any_shape`) reads MLPs the same way.

- ``layer_stats``: per slot, ``present``, log2 of the matrix's rows and columns / 8, then the 18 statistics of
  `gi_envs.weight_statistics.weight_statistics` of the weights times sqrt(fan_in) (about 0.58 rms at PyTorch's
  default init for every width), with row and column norms as root mean squares, so no statistic grows with
  the widths (quantiles of a layer of more than 4,096 weights from an evenly strided sample of about 4,096); all
  through a signed log, sign(x) log(1 + |x|).
- ``layer_change_stats``: the same 18 statistics of the weights' change since the previous env step (zero at
  reset), times `CHANGE_SCALE` too: each layer's step size, which shows the learning rate after one step.

Both are `ObservationPart` entries that join the state vector (`gi_envs.observation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from gi_envs.weight_statistics import STATISTICS_PER_LAYER, weight_statistics

SHAPE_COLUMNS = 3  # present, log2 rows / 8, log2 columns / 8
LOG2_SCALE = 8.0  # log2 of a width of 256
QUANTILE_SAMPLE = 4096  # a layer's quantiles come from about this many of its weights (`weight_statistics`)
ROW_NORM_COLUMNS = slice(3, 7)  # mean, std, min, max of the row norms, in `weight_statistics`' order
COLUMN_NORM_COLUMNS = slice(7, 11)


def layer_slots(n_layers: int, slots: int) -> list[int]:
    """The slot of each of an MLP's `n_layers` weight matrices: first, then the hidden-to-hidden ones, last in the
    last slot (so an output layer is always read as one)."""
    if not 2 <= n_layers <= slots:
        raise ValueError(f"an MLP of {n_layers - 1} hidden layer(s) does not fit {slots} layer slots (at most "
                         f"{slots - 1} hidden layers)")
    return [0, *range(1, n_layers - 1), slots - 1]


def symlog(values: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|): keeps small values, tames blow-ups of diverged MLPs."""
    return torch.sign(values) * torch.log1p(values.abs())


def shape_free_statistics(matrices: Sequence[torch.Tensor], scale: float = 1.0) -> torch.Tensor:
    """(N, L, 18) statistics of L matrices (each (N, out, in)) times `scale` * sqrt(fan_in), with the row and column
    norms as root mean squares: numbers of about the same size for every width."""
    per_layer = []
    for m in matrices:
        out, fan_in = m.shape[1], m.shape[2]
        finite = torch.nan_to_num(m, nan=0.0, posinf=1e6, neginf=-1e6)
        stats = weight_statistics([finite * (scale * math.sqrt(fan_in))], QUANTILE_SAMPLE)
        stats[:, ROW_NORM_COLUMNS] /= math.sqrt(fan_in)
        stats[:, COLUMN_NORM_COLUMNS] /= math.sqrt(out)
        per_layer.append(stats)
    return symlog(torch.stack(per_layer, dim=1))


def slotted(values: torch.Tensor, slots: int) -> torch.Tensor:
    """(N, L, K) per-layer values in (N, slots, K), each layer in its `layer_slots` slot, the others zero."""
    n, n_layers, k = values.shape
    out = values.new_zeros((n, slots, k))
    out[:, layer_slots(n_layers, slots)] = values
    return out


def shape_columns(layer_shapes: Sequence[tuple[int, int]], n_models: int, slots: int) -> torch.Tensor:
    """(N, slots, 3): present, log2 rows / 8 and log2 columns / 8 of the matrix in each slot (zeros where none)."""
    rows = [[1.0, math.log2(out) / LOG2_SCALE, math.log2(fan_in) / LOG2_SCALE] for out, fan_in in layer_shapes]
    return slotted(torch.tensor(rows, dtype=torch.float32).expand(n_models, -1, -1), slots)


def layer_stats(task: Any) -> torch.Tensor:
    """The ``layer_stats`` part of every model of `task`: (N, slots * (3 + 18))."""
    weights = [w.detach() for w in task.mlp.weights]
    stats = slotted(shape_free_statistics(weights), task.observation_layout.slots)
    shapes = shape_columns(task.mlp.layer_shapes, len(weights[0]), task.observation_layout.slots)
    return torch.cat([shapes, stats], dim=2).flatten(1)


def layer_change_stats(task: Any, change_scale: float) -> torch.Tensor:
    """The ``layer_change_stats`` part of every model of `task`: (N, slots * 18)."""
    assert task.previous_weights is not None
    change = [w.detach() - p for w, p in zip(task.mlp.weights, task.previous_weights)]
    return slotted(shape_free_statistics(change, change_scale), task.observation_layout.slots).flatten(1)


LAYER_STATS_COLUMNS = SHAPE_COLUMNS + STATISTICS_PER_LAYER
LAYER_CHANGE_COLUMNS = STATISTICS_PER_LAYER
