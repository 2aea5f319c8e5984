"""N MLPs of one architecture as stacked tensors, and each one's data order.

Every weight matrix is one tensor of shape (N, out, in) (the `nn.Linear` convention with a
leading model axis), every bias one tensor of shape (N, out). A minibatch's loss and gradients
for all N models are a handful of batched matmuls, which is what makes many small MLPs per
process cheap. `gi_envs.training.Training`, the one training core, steps them with each
model's own optimizer; everything that trains MLPs goes through it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gi_envs.files import atomic_torch_save, load_torch_payload
from gi_envs.memory import FLOAT_BYTES, check_memory

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}
ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
INITS = ("default", "he")
SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
MLP_FORMAT = "grad-instructor-mlps/1"
TRAINING_COPIES = 4  # weights, gradients and up to two optimizer states (Adam) per parameter
EVAL_CHUNK = 4096  # samples per evaluation chunk: bounds memory at (N, chunk, widest layer)


class BatchedMLP:
    """N multilayer perceptrons of one architecture, stored as stacked tensors.

    :param layer_sizes: widths from input to output, e.g. ``(64, 32, 10)``.
    :param n_models: N, the number of MLPs held and trained together.
    :param activation: hidden activation, one of ``relu``, ``tanh``, ``sigmoid``, ``gelu``.
    """

    def __init__(self, layer_sizes: Sequence[int], n_models: int, activation: str = "relu"):
        sizes = tuple(int(s) for s in layer_sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes={layer_sizes!r} needs at least two positive widths")
        if n_models < 1:
            raise ValueError(f"n_models={n_models!r} must be at least 1")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not known; expected one of {list(ACTIVATIONS)}")
        n_parameters = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        check_memory(n_models * n_parameters * FLOAT_BYTES * TRAINING_COPIES,
                     f"{n_models:,} MLP(s) of layer sizes {'-'.join(map(str, sizes))} ({n_parameters:,} parameters "
                     f"each, held {TRAINING_COPIES} times: weights, gradients, optimizer state)")
        self.layer_sizes = sizes
        self.n_models = n_models
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        self.weights = [
            torch.zeros(n_models, fan_out, fan_in, requires_grad=True)
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
        ]
        self.biases = [torch.zeros(n_models, fan_out, requires_grad=True) for fan_out in sizes[1:]]

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every weight matrix, input layer first."""
        return [(w.shape[1], w.shape[2]) for w in self.weights]

    def parameters(self) -> Iterator[torch.Tensor]:
        """Weights and biases interleaved, in the order of `nn.Sequential.parameters()` (as `nn.Module` has it)."""
        for weight, bias in zip(self.weights, self.biases):
            yield weight
            yield bias

    @torch.no_grad()
    def initialize(self, index: int, generator: torch.Generator, init: str = "default") -> None:
        """Draw fresh parameters for MLP `index` from its own generator.

        ``default`` is PyTorch's `nn.Linear` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        for weights and biases; ``he`` is He et al.'s N(0, 2/fan_in) for weights, zero biases.
        """
        if init not in INITS:
            raise ValueError(f"init={init!r} is not known; expected one of {list(INITS)}")
        for w, b in zip(self.weights, self.biases):
            fan_in = w.shape[2]
            if init == "default":
                bound = 1.0 / math.sqrt(fan_in)
                w[index].uniform_(-bound, bound, generator=generator)
                b[index].uniform_(-bound, bound, generator=generator)
            else:
                w[index].normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                b[index].zero_()

    def forward(self, x: torch.Tensor, models: Sequence[int] | None = None) -> torch.Tensor:
        """Logits of all N models: `x` is (N, B, in), one batch per model, or (M, in), shared.

        Returns (N, B, classes) or (N, M, classes). `models` restricts it to some models
        (then N is their count).
        """
        weights, biases = self.weights, self.biases
        if models is not None:
            weights, biases = [w[models] for w in weights], [b[models] for b in biases]
        last = len(weights) - 1
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            if h.dim() == 2:  # one shared input for all models: a single GEMM over N*out columns
                n, fan_out, fan_in = w.shape
                h = (h @ w.reshape(n * fan_out, fan_in).T).view(-1, n, fan_out).transpose(0, 1)
                h = h + b.unsqueeze(1)
            else:
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if i < last:
                h = self._act(h)
        return h

    @torch.no_grad()
    def loss_and_gradients(
        self, x: torch.Tensor, y: torch.Tensor, sample_weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Mean cross-entropy of each model on its own batch, and the gradients of each.

        The backward pass is written out (a few batched matmuls) rather than left to autograd:
        on small MLPs autograd's bookkeeping costs more than the arithmetic. A test checks it
        against autograd and against `torch.optim.SGD` on an `nn.Sequential`.

        :param x: (N, B, in) inputs, one batch per model.
        :param y: (N, B) labels.
        :param sample_weights: (N, B) weights of each model's samples, for batches of different sizes
            padded to one B (`MinibatchSampler.sample_weights`: 1 / batch size, 0 on padding);
            ``None``: every sample weighs 1 / B.
        :return: per-model loss (N,), weight gradients, bias gradients (each model's gradient is
            that of its own mean loss, as `torch.optim.SGD` on one `nn.Sequential` would see).
        """
        last = len(self.weights) - 1
        inputs, pre_activations = [], []
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if i < last:
                pre_activations.append(h)
                h = self._act(h)
        log_probs = torch.log_softmax(h, dim=2)
        target = y.unsqueeze(2)
        per_sample = -log_probs.gather(2, target).squeeze(2)
        loss = per_sample.mean(dim=1) if sample_weights is None else (per_sample * sample_weights).sum(dim=1)

        # d loss / d logits = (softmax - onehot) / B, for each model's own mean loss
        delta = log_probs.exp_().scatter_add_(2, target, torch.full_like(target, -1, dtype=h.dtype))
        if sample_weights is None:
            delta /= y.shape[1]
        else:
            delta *= sample_weights.unsqueeze(2)
        weight_grads: list[torch.Tensor] = [torch.empty(0)] * len(self.weights)
        bias_grads: list[torch.Tensor] = [torch.empty(0)] * len(self.weights)
        for i in range(last, -1, -1):
            weight_grads[i] = torch.bmm(delta.transpose(1, 2), inputs[i])
            bias_grads[i] = delta.sum(dim=1)
            if i > 0:
                delta = torch.bmm(delta, self.weights[i]) * self._act_grad(pre_activations[i - 1], inputs[i])
        return loss, weight_grads, bias_grads

    def _act_grad(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """Derivative of the activation at `pre`, reusing its output `post` where that is cheaper."""
        if self.activation == "relu":
            return (pre > 0).to(pre.dtype)
        if self.activation == "tanh":
            return 1.0 - post * post
        if self.activation == "sigmoid":
            return post * (1.0 - post)
        cdf = 0.5 * (1.0 + torch.erf(pre * SQRT_HALF))  # exact GELU: x * Phi(x)
        return cdf + pre * torch.exp(-0.5 * pre * pre) * INV_SQRT_2PI

    @torch.no_grad()
    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, models: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and accuracy of all N models (or of `models`) on one shared split.

        :param x: (M, in) inputs; :param y: (M,) labels.
        :return: loss and accuracy in [0, 1], one per model; a diverged model gets loss inf or nan.
        """
        n = self.n_models if models is None else len(models)
        loss_sum = torch.zeros(n)
        correct = torch.zeros(n)
        for start in range(0, len(y), EVAL_CHUNK):
            xs, ys = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = self.forward(xs, models)  # (n, m, classes)
            targets = ys.expand(n, -1)
            loss_sum += F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(1)
            correct += (logits.argmax(dim=2) == targets).sum(dim=1)
        return loss_sum / len(y), correct / len(y)

    @torch.no_grad()
    def to_sequential(self, index: int = 0) -> nn.Sequential:
        """A standalone `nn.Sequential` of `Linear` layers holding a copy of MLP `index`."""
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            linear = nn.Linear(w.shape[2], w.shape[1])
            linear.weight.copy_(w[index])
            linear.bias.copy_(b[index])
            layers.append(linear)
            if i < len(self.weights) - 1:
                layers.append(ACTIVATION_MODULES[self.activation]())
        return nn.Sequential(*layers)

    @torch.no_grad()
    def load_sequential(self, index: int, sequential: nn.Sequential) -> None:
        """Copy the `Linear` layers of `sequential` into MLP `index`; shapes must match."""
        linears = [m for m in sequential if isinstance(m, nn.Linear)]
        shapes = [tuple(m.weight.shape) for m in linears]
        if shapes != self.layer_shapes:
            raise ValueError(f"the Sequential's Linear shapes {shapes} differ from {self.layer_shapes}")
        for w, b, linear in zip(self.weights, self.biases, linears):
            w[index].copy_(linear.weight)
            b[index].copy_(linear.bias)

    def save(self, path: str | os.PathLike, **info: Any) -> None:
        """Write all N MLPs (tensors) and `info` (JSON: dataset, seeds, ...) to `path`, atomically."""
        atomic_torch_save({"format": MLP_FORMAT, "layer_sizes": list(self.layer_sizes), "activation": self.activation,
                           "weights": [w.detach() for w in self.weights], "biases": [b.detach() for b in self.biases],
                           "info": json.dumps(info)}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[BatchedMLP, dict[str, Any]]:
        """The MLPs and the info dict of a file written by `save` (tensors and JSON only, no pickle)."""
        payload = load_torch_payload(path, MLP_FORMAT, "MLP checkpoint", "BatchedMLP.save")
        mlp = cls(payload["layer_sizes"], payload["weights"][0].shape[0], payload["activation"])
        with torch.no_grad():
            stored = [p for pair in zip(payload["weights"], payload["biases"]) for p in pair]
            for dst, src in zip(mlp.parameters(), stored):
                if dst.shape != src.shape:
                    raise ValueError(f"{path}: parameter of shape {tuple(src.shape)} where {tuple(dst.shape)} was "
                                     "expected")
                dst.copy_(src)
        return mlp, json.loads(payload["info"])


def gradient_rms(grad: torch.Tensor) -> torch.Tensor:
    """Root-mean-square of each model's gradient: (N, ...) -> (N,)."""
    return grad.flatten(1).pow(2).mean(dim=1).sqrt()


class MinibatchSampler:
    """Each model's own data order: shuffled epochs without replacement, the last partial batch dropped.

    Every model draws its permutations from its own `torch.Generator`, so a model's data order
    does not depend on how many other models share the batch. A model may see only a subset of
    the training split (its regime's data share, drawn from its generator) and have its own batch
    size; batches of different sizes are padded to the largest, and `sample_weights` says which
    samples count. The cursor is per model because models are reset at different times.

    :param n_samples: size of the training split.
    :param batch_size: samples per minibatch of a model reset without its own (at most `n_samples`).
    :param n_models: N.
    """

    def __init__(self, n_samples: int, batch_size: int, n_models: int):
        if not 1 <= batch_size <= n_samples:
            raise ValueError(f"batch_size={batch_size!r} must lie in [1, {n_samples}] (the training split's size)")
        check_memory(n_models * n_samples * 8, f"the data order of {n_models:,} MLP(s) over {n_samples:,} samples")
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.permutations = torch.zeros(n_models, n_samples, dtype=torch.long)
        self.cursors = np.full(n_models, n_samples, dtype=np.int64)
        self.sizes = np.full(n_models, n_samples, dtype=np.int64)  # samples each model sees
        self.batch_sizes = np.full(n_models, batch_size, dtype=np.int64)
        self.subsets: list[torch.Tensor | None] = [None] * n_models  # None: the whole split
        self.generators: list[torch.Generator | None] = [None] * n_models
        self._weights: torch.Tensor | None = None

    def reset(self, index: int, generator: torch.Generator, batch_size: int | None = None,
              subset_size: int | None = None) -> None:
        """Start MLP `index`'s data order afresh from `generator` (which the sampler keeps).

        :param batch_size: the MLP's own batch size (default the sampler's).
        :param subset_size: see only this many samples, the first of a permutation drawn from `generator`
            before the first epoch's (default, or the whole split: every sample, and no draw).
        """
        batch_size = self.batch_size if batch_size is None else int(batch_size)
        size = self.n_samples if subset_size is None else int(subset_size)
        if not 1 <= batch_size <= size <= self.n_samples:
            raise ValueError(f"batch_size={batch_size} must lie in [1, {size}] (the samples MLP {index} sees, "
                             f"of {self.n_samples})")
        self.generators[index] = generator
        self.subsets[index] = (None if size == self.n_samples
                               else torch.randperm(self.n_samples, generator=generator)[:size])
        self.sizes[index] = size
        if self.batch_sizes[index] != batch_size:
            self.batch_sizes[index] = batch_size
            self._weights = None
        self._shuffle(index)

    def _shuffle(self, index: int) -> None:
        generator = self.generators[index]
        if generator is None:
            raise RuntimeError(f"MLP {index} has no generator: call reset(index, generator) first")
        size = int(self.sizes[index])
        order = torch.randperm(size, generator=generator)
        subset = self.subsets[index]
        self.permutations[index, :size] = order if subset is None else subset[order]
        self.cursors[index] = 0

    @property
    def uniform(self) -> bool:
        """Whether every model has the same batch size (then no padding, no sample weights)."""
        return bool((self.batch_sizes == self.batch_sizes[0]).all())

    def sample_weights(self) -> torch.Tensor | None:
        """(N, largest batch size): 1 / batch size on each model's own samples, 0 on the padding; None when
        every model has the same batch size."""
        if self.uniform:
            return None
        if self._weights is None:
            sizes = torch.from_numpy(self.batch_sizes)
            valid = torch.arange(int(sizes.max()))[None, :] < sizes[:, None]
            self._weights = valid.float() / sizes[:, None].float()
        return self._weights

    def next_indices(self) -> torch.Tensor:
        """The next minibatch of training-set indices for every model, shape (N, largest batch size); a model
        with a smaller batch gets padding after its own indices (weighted 0 by `sample_weights`)."""
        for model in np.flatnonzero(self.cursors + self.batch_sizes > self.sizes):
            self._shuffle(int(model))
        widest = int(self.batch_sizes.max())
        start = int(self.cursors[0])
        if self.uniform and (self.cursors == start).all():  # models in step (the usual case): a plain slice
            idx = self.permutations[:, start : start + widest]
        else:
            positions = torch.from_numpy(self.cursors)[:, None] + torch.arange(widest)
            idx = self.permutations.gather(1, positions.clamp_(max=self.n_samples - 1))
        self.cursors += self.batch_sizes
        return idx
