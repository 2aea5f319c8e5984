"""ENN guidance for any PyTorch training loop: reward weights the ENN predicts to be accurate.

    guidance = ENNGuidance(ENN.load("enn.pt"), weight=0.01)
    for x, y in loader:
        loss = F.cross_entropy(model(x), y) + guidance(model)   # guidance(model) = -weight * ENN(image(model))
        optimizer.zero_grad(); loss.backward(); guidance.after_backward(model); optimizer.step()

`model` is any `nn.Module` whose `Linear` layers match the ENN's target MLP, or a `BatchedMLP`
(then every one of its N models is guided by its own prediction). The ENN's
gradient reaches the weights through the differentiable weight image. `after_backward` is
optional: it records how large the guidance gradient is against the task gradient, to test the
paper's claim that the guidance "dynamically adjusts gradient magnitudes according to the
training stage"; `write_history` saves that record as CSV and PNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agents.enn.network import ENN, linear_layers, matrices_of
from agents.report import write_curves
from gi_envs.batched_mlp import BatchedMLP

SCHEDULES = ("constant", "linear-decay", "cosine")


def linear_weights(model: nn.Module | BatchedMLP) -> list[torch.Tensor]:
    """The weight matrices the ENN reads: any module's `nn.Linear` weights (registration order), or a
    BatchedMLP's stacks."""
    if isinstance(model, BatchedMLP):
        return list(model.weights)
    return matrices_of(model, type(model).__name__)


class ENNGuidance:
    """`-weight * schedule(step) * ENN(weight_image(model))`, summed over models, as a loss term.

    The model is any `nn.Module` whose `nn.Linear` layers, in registration order, match the ENN's
    target MLP (a `Sequential`, or a class with ``fc1`` / ``fc2`` and `F.relu` in its forward), or a
    `BatchedMLP`. The caller's ENN is left as it is: its mode and `requires_grad` flags are not
    touched, and its parameters never collect gradients from the guidance term (it is evaluated on
    detached copies of them).

    :param enn: the ENN; its metadata says which MLP shapes it reads, checked at every call.
    :param weight: strength of the term (loss units per unit of predicted accuracy).
    :param schedule: ``constant``, ``linear-decay`` or ``cosine`` over `total_steps` calls, or a
        function of the call count returning a factor.
    :param total_steps: length of training in calls, for the decaying schedules.
    :param record_every: measure gradient sizes every this many calls in `after_backward` (0: never).
    """

    def __init__(self, enn: ENN, weight: float = 0.01, schedule: str | Callable[[int], float] = "constant",
                 total_steps: int | None = None, record_every: int = 10):
        if not callable(schedule) and schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r} is not known; expected one of {list(SCHEDULES)} or a function")
        if not callable(schedule) and schedule != "constant" and not total_steps:
            raise ValueError(f"schedule={schedule!r} needs total_steps")
        try:
            strength = float(weight)
        except (TypeError, ValueError):
            strength = math.nan
        if not math.isfinite(strength) or strength < 0:
            raise ValueError(f"weight={weight!r} must be a finite number (0 turns guidance off), and not negative: a "
                             "negative weight would push the MLP towards weights the ENN predicts to be bad")
        self.enn = enn
        self.weight = strength
        self.schedule = schedule
        self.total_steps = total_steps
        self.record_every = record_every
        self.calls = 0
        self.history: list[dict[str, float]] = []
        self._pending: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def predicted(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None = None
                  ) -> torch.Tensor:
        """The ENN's prediction for `weights` (and `biases`, which an ``nfn`` ENN reads), differentiable in them
        only: the ENN's own parameters enter as detached copies, so they collect no gradient and the caller's
        ENN is not changed."""
        frozen = {name: t.detach() for name, t in (*self.enn.named_parameters(), *self.enn.named_buffers())}
        # the ENN computes in float32: a float64 or bfloat16 model's weights are read as float32 (differentiably)
        weights = [w.float() for w in weights]
        biases = None if biases is None else [b.float() for b in biases]
        return torch.func.functional_call(self.enn, frozen, (self.enn.inputs_of(weights, biases),))

    def _biases(self, model: nn.Module | BatchedMLP) -> list[torch.Tensor] | None:
        if not self.enn.reads_biases:
            return None
        if isinstance(model, BatchedMLP):
            return list(model.biases)
        return linear_layers(model, type(model).__name__, biases=True)[1]

    def current_weight(self) -> float:
        """The weight at this call, after the schedule."""
        if callable(self.schedule):
            return self.weight * float(self.schedule(self.calls))
        progress = min(1.0, self.calls / self.total_steps) if self.total_steps else 0.0
        factor = {"constant": 1.0, "linear-decay": 1.0 - progress,
                  "cosine": 0.5 * (1.0 + math.cos(math.pi * progress))}[self.schedule]
        return self.weight * factor

    def __call__(self, model: nn.Module | BatchedMLP) -> torch.Tensor:
        """The guidance loss term for `model`; differentiable in its weights."""
        weights = linear_weights(model)
        term = -self.current_weight() * self.predicted(weights, self._biases(model)).sum()
        if self.record_every and self.calls % self.record_every == 0 and term.requires_grad:
            grads = torch.autograd.grad(term, weights, retain_graph=True)
            self._pending = (weights, [g.detach().clone() for g in grads])
        self.calls += 1
        return term

    def weight_gradients(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None = None
                         ) -> list[torch.Tensor]:
        """The guidance term's gradient for each weight matrix, for trainers with their own backward
        (such as `BatchedMLP.loss_and_gradients`): add it to the task gradient before the update. `biases` are
        read (as constants) by an ENN whose encoder reads them."""
        leaves = [w.detach().requires_grad_(True) for w in weights]
        fixed = None if biases is None else [b.detach() for b in biases]
        with torch.enable_grad():
            term = -self.current_weight() * self.predicted(leaves, fixed).sum()
            grads = torch.autograd.grad(term, leaves)
        self.calls += 1
        return [g.detach() for g in grads]

    def record(self, guidance_grads: Sequence[torch.Tensor], task_grads: Sequence[torch.Tensor]) -> None:
        """Store |guidance gradient| / |task gradient| (whole-model L2 norms) for the current call."""
        g = math.sqrt(sum(float(t.pow(2).sum()) for t in guidance_grads))
        t = math.sqrt(sum(float(t.pow(2).sum()) for t in task_grads))
        self.history.append({"step": self.calls - 1, "weight": self.current_weight(), "guidance_norm": g,
                             "task_norm": t, "ratio": g / t if t > 0 else float("nan")})

    def after_backward(self, model: nn.Module | BatchedMLP) -> None:
        """After `loss.backward()`: split the weights' `.grad` into task and guidance parts and record."""
        if self._pending is None:
            return
        weights, guidance_grads = self._pending
        self._pending = None
        if any(w.grad is None for w in weights):
            raise RuntimeError("after_backward() needs loss.backward() to have filled the weights' .grad")
        self.record(guidance_grads, [w.grad - g for w, g in zip(weights, guidance_grads)])

    def write_history(self, path_stem: str | Path) -> list[Path]:
        """The recorded gradient-size ratio against training step, as `<stem>.csv` and `<stem>.png`."""
        if not self.history:
            raise ValueError("nothing recorded yet: call after_backward() (record_every > 0) during training")
        steps = np.array([h["step"] for h in self.history], dtype=float)
        ratios = np.array([[h["ratio"] for h in self.history]])
        return write_curves(Path(path_stem), {"|guidance grad| / |task grad|": ratios}, x=steps,
                            ylabel="gradient norm ratio", xlabel="training step")
