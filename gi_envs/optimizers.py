"""Each of N models' own optimizer (SGD, SGD + momentum, AdamW), stepped together on stacked tensors.

Every parameter is one tensor with a leading model axis, as `BatchedMLP` stores it. Model i follows
its own `Regime`: optimizer, learning rate and weight decay, with state that `reset` clears when the
model is redrawn. Each optimizer computes what its `torch.optim` counterpart computes on one
`nn.Sequential` (`OPTIMIZERS` names it; tests compare them to float tolerance).

`update_scales` multiply each element's update, i.e. its learning rate: per-block learning rates, the
env's ``scale`` actions. For SGD that is the same as scaling the gradient; for momentum and Adam the
scale acts on the step, not on the optimizer's state, as a per-parameter-group learning rate does in
`torch.optim`. Scales of one leave every optimizer exactly as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gi_envs.regime import ADAM_BETAS, ADAM_EPS, MOMENTUM, OPTIMIZERS, Regime

Scales = Sequence[torch.Tensor] | None  # per parameter, a tensor of its shape (N, ...) multiplying its update


def _per_model(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n,) values shaped to broadcast over a parameter (n, ...)."""
    return values.view(-1, *([1] * (like.dim() - 1)))


@dataclass
class _Group:
    """The models of one optimizer kind, with what their update needs, worked out once per reset."""

    kind: str
    models: torch.Tensor | None  # None: every model
    lr: torch.Tensor  # (n,)
    shared_lr: float | None  # the one learning rate all n share, if they do: applied as plain SGD always was
    decay: torch.Tensor  # (n,)
    decayed: bool  # whether any of them has weight decay


class BatchedOptimizer:
    """The optimizers of N models over stacked parameters.

    :param params: parameters, each (N, ...), in a fixed order (`step` takes gradients in the same order).
    """

    def __init__(self, params: Sequence[torch.Tensor]):
        self.params = list(params)
        self.n_models = self.params[0].shape[0]
        self.kinds = np.array(["sgd"] * self.n_models, dtype=object)
        self.lr = torch.zeros(self.n_models)
        self.weight_decay = torch.zeros(self.n_models)
        self.steps = torch.zeros(self.n_models)  # updates since each model's reset (Adam's bias correction)
        self._first: list[torch.Tensor] | None = None  # momentum buffer, or Adam's first moment
        self._second: list[torch.Tensor] | None = None  # Adam's second moment
        self._groups: list[_Group] = []
        self._regroup()

    def reset(self, model: int, regime: Regime) -> None:
        """Model `model` starts `regime`'s optimizer afresh (empty state)."""
        self.kinds[model] = regime.optimizer
        self.lr[model] = regime.lr
        self.weight_decay[model] = regime.weight_decay
        self.steps[model] = 0
        if regime.optimizer != "sgd" and self._first is None:
            self._first = [torch.zeros_like(p, requires_grad=False) for p in self.params]
        if regime.optimizer == "adam" and self._second is None:
            self._second = [torch.zeros_like(p, requires_grad=False) for p in self.params]
        for state in (self._first, self._second):
            if state is not None:
                for s in state:
                    s[model].zero_()
        self._regroup()

    def _regroup(self) -> None:
        kinds = [k for k in OPTIMIZERS if (self.kinds == k).any()]
        self._groups = []
        for kind in kinds:
            models = None if len(kinds) == 1 else torch.from_numpy(np.flatnonzero(self.kinds == kind))
            lr = self.lr if models is None else self.lr[models]
            decay = self.weight_decay if models is None else self.weight_decay[models]
            shared = float(lr[0]) if bool((lr == lr[0]).all()) else None
            self._groups.append(_Group(kind, models, lr, shared, decay, bool((decay > 0).any())))

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], update_scales: Scales = None) -> None:
        """One update of every model from its gradients (the same order as `params`; they may be changed in place)."""
        self.steps += 1
        for group in self._groups:
            update = {"sgd": self._sgd, "momentum": self._momentum, "adam": self._adam}[group.kind]
            steps = self.steps if group.models is None else self.steps[group.models]
            for i, (p, g) in enumerate(zip(self.params, grads)):
                scale = None if update_scales is None else update_scales[i]
                if group.models is None:
                    update(i, p, g, scale, group, steps)
                else:  # a mixed batch: this kind's models, updated on a copy and written back
                    part = p[group.models]
                    update(i, part, g[group.models], None if scale is None else scale[group.models], group, steps)
                    p.index_copy_(0, group.models, part)

    @staticmethod
    def _apply(p: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor | None, group: _Group) -> None:
        """p -= lr * scale * direction; one learning rate for all models is applied as plain SGD always was."""
        if scale is not None:
            direction = direction.mul_(scale)  # a fresh tensor (or the caller's gradient, which step may change)
        if group.shared_lr is not None:
            p.sub_(direction, alpha=group.shared_lr)
        else:
            p.sub_(direction * _per_model(group.lr, p))

    def _sgd(self, i: int, p: torch.Tensor, g: torch.Tensor, scale: torch.Tensor | None, group: _Group,
             steps: torch.Tensor) -> None:
        if group.decayed:
            g = g + _per_model(group.decay, p) * p
        self._apply(p, g, scale, group)

    def _momentum(self, i: int, p: torch.Tensor, g: torch.Tensor, scale: torch.Tensor | None, group: _Group,
                  steps: torch.Tensor) -> None:
        assert self._first is not None
        if group.decayed:
            g = g + _per_model(group.decay, p) * p
        buffer = self._first[i] if group.models is None else self._first[i][group.models]
        first_step = _per_model(steps == 1, p)
        buffer = torch.where(first_step, g, buffer * MOMENTUM + g)  # torch.optim.SGD: the first buffer is the gradient
        self._store(self._first[i], buffer, group.models)
        self._apply(p, buffer.clone(), scale, group)

    def _adam(self, i: int, p: torch.Tensor, g: torch.Tensor, scale: torch.Tensor | None, group: _Group,
              steps: torch.Tensor) -> None:
        assert self._first is not None and self._second is not None
        beta1, beta2 = ADAM_BETAS
        step_lr = _per_model(group.lr, p) if scale is None else _per_model(group.lr, p) * scale
        if group.decayed:  # decoupled, as torch.optim.AdamW: p *= 1 - lr * weight_decay
            p.mul_(1 - step_lr * _per_model(group.decay, p))
        first = self._first[i] if group.models is None else self._first[i][group.models]
        second = self._second[i] if group.models is None else self._second[i][group.models]
        first = first.lerp(g, 1 - beta1)
        second = second.mul(beta2).addcmul_(g, g, value=1 - beta2)
        self._store(self._first[i], first, group.models)
        self._store(self._second[i], second, group.models)
        correction1 = _per_model(1 - beta1**steps, p)
        correction2_sqrt = _per_model((1 - beta2**steps).sqrt(), p)
        denominator = (second.sqrt() / correction2_sqrt).add_(ADAM_EPS)
        p.sub_(step_lr / correction1 * first / denominator)

    @staticmethod
    def _store(state: torch.Tensor, value: torch.Tensor, models: torch.Tensor | None) -> None:
        if models is None:
            state.copy_(value)
        else:
            state.index_copy_(0, models, value)
