"""Each of N models' own optimizer (SGD, SGD + momentum, AdamW, Schedule-Free AdamW), stepped together on stacked
tensors.

Every parameter is one tensor with a leading model axis, as `BatchedMLP` stores it. Model i follows
its own `Regime`: optimizer, learning rate and weight decay, with state that `reset` clears when the
model is redrawn. Each optimizer computes what its `torch.optim` counterpart computes on one
`nn.Sequential` (`OPTIMIZERS` names it; tests compare them to float tolerance).

`update_scales` multiply each element's update, i.e. its learning rate: per-block learning rates, the
env's ``scale`` actions. For SGD that is the same as scaling the gradient; for momentum and Adam the
scale acts on the step, not on the optimizer's state, as a per-parameter-group learning rate does in
`torch.optim`. Scales of one leave every optimizer exactly as it is.

An optimizer may take its gradient at another point than the model's weights: Schedule-Free AdamW keeps
the model at its average x and takes gradients at y, between x and its base sequence z. Its
`OptimizerKind.gradient_point` moves the weights to y before the gradient (`BatchedOptimizer.to_gradient_point`,
which `gi_envs.training.Training.step` calls), and its update leaves them at x again, so that the weights
everything else reads (the env's image, its accuracy, the zoo's checkpoints) are always the model's own: what
the library's ``optimizer.eval()`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

MOMENTUM = 0.9  # the momentum of the ``momentum`` optimizer (torch.optim.SGD's `momentum`)
ADAM_BETAS = (0.9, 0.999)  # the ``adam`` optimizer's (torch.optim.AdamW's defaults)
ADAM_EPS = 1e-8

class OptimizerSettings(Protocol):
    """What a model's optimizer is set from: a `gi_envs.Regime` (named here, not imported: regimes check their
    optimizer against `OPTIMIZERS`)."""

    optimizer: str
    lr: float
    weight_decay: float


Scales = Sequence[torch.Tensor] | None  # per parameter, a tensor of its shape (N, ...) multiplying its update


def per_model(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n,) values shaped to broadcast over a parameter (n, ...)."""
    return values.view(-1, *([1] * (like.dim() - 1)))


@dataclass
class ModelGroup:
    """The models of one optimizer kind, with what their update needs, worked out once per reset."""

    kind: OptimizerKind
    models: torch.Tensor | None  # None: every model
    lr: torch.Tensor  # (n,)
    shared_lr: float | None  # the one learning rate all n share, if they do: applied as plain SGD always was
    decay: torch.Tensor  # (n,)
    decayed: bool  # whether any of them has weight decay
    steps: torch.Tensor  # (n,) updates since each model's reset, this one included (Adam's bias correction)

    def apply(self, p: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor | None) -> None:
        """p -= lr * scale * direction; one learning rate for all models is applied as plain SGD always was."""
        if scale is not None:
            direction = direction.mul_(scale)  # a fresh tensor (or the caller's gradient, which step may change)
        if self.shared_lr is not None:
            p.sub_(direction, alpha=self.shared_lr)
        else:
            p.sub_(direction * per_model(self.lr, p))


UpdateRule = Callable[[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], "torch.Tensor | None", ModelGroup],
                      tuple[torch.Tensor, ...]]
"""(parameter (n, ...), its gradient, its state tensors, update scales or None, the group) -> the new state.
It updates the parameter in place; the gradient may be changed in place."""


GradientPoint = Callable[[torch.Tensor, tuple[torch.Tensor, ...], "ModelGroup"], torch.Tensor]
"""(the models' weights (n, ...), their state, the group) -> the point their gradient is taken at (a new tensor)."""


@dataclass(frozen=True)
class OptimizerKind:
    """One optimizer the training core runs, per model, beside the others.

    :param name: what a `Regime` calls it.
    :param lr_scale: its learning rate relative to plain SGD's for updates of about the same size; a
        `RegimeDistribution` draws an optimizer's learning rate from its ``lr_range`` times this.
    :param update: one parameter's update for a group of models (`UpdateRule`).
    :param state_slots: state tensors per parameter (a momentum buffer: 1; Adam's moments: 2), zero at reset.
    :param torch_optimizer: the `torch.optim` optimizer it equals on one `nn.Sequential`, from (parameters,
        learning rate, weight decay); tests compare the two to float tolerance (one with ``train()`` and
        ``eval()`` is compared in eval mode).
    :param gradient_point: where the gradient is taken when that is not at the weights (`GradientPoint`, for
        models that have stepped at least once); the update then starts there and must end at the weights.
    """

    name: str
    lr_scale: float
    update: UpdateRule
    state_slots: int
    torch_optimizer: Callable[[Iterable[torch.nn.Parameter], float, float], torch.optim.Optimizer]
    gradient_point: GradientPoint | None = None


def _sgd(p: torch.Tensor, g: torch.Tensor, state: tuple[torch.Tensor, ...], scale: torch.Tensor | None,
         group: ModelGroup) -> tuple[torch.Tensor, ...]:
    if group.decayed:
        g = g + per_model(group.decay, p) * p
    group.apply(p, g, scale)
    return ()


def _momentum(p: torch.Tensor, g: torch.Tensor, state: tuple[torch.Tensor, ...], scale: torch.Tensor | None,
              group: ModelGroup) -> tuple[torch.Tensor, ...]:
    if group.decayed:
        g = g + per_model(group.decay, p) * p
    first_step = per_model(group.steps == 1, p)
    buffer = torch.where(first_step, g, state[0] * MOMENTUM + g)  # torch.optim.SGD: the first buffer is the gradient
    group.apply(p, buffer.clone(), scale)
    return (buffer,)


def _adamw(p: torch.Tensor, g: torch.Tensor, state: tuple[torch.Tensor, ...], scale: torch.Tensor | None,
           group: ModelGroup) -> tuple[torch.Tensor, ...]:
    beta1, beta2 = ADAM_BETAS
    step_lr = per_model(group.lr, p) if scale is None else per_model(group.lr, p) * scale
    if group.decayed:  # decoupled, as torch.optim.AdamW: p *= 1 - lr * weight_decay
        p.mul_(1 - step_lr * per_model(group.decay, p))
    first = state[0].lerp(g, 1 - beta1)
    second = state[1].mul(beta2).addcmul_(g, g, value=1 - beta2)
    correction1 = per_model(1 - beta1**group.steps, p)
    correction2_sqrt = per_model((1 - beta2**group.steps).sqrt(), p)
    denominator = (second.sqrt() / correction2_sqrt).add_(ADAM_EPS)
    p.sub_(step_lr / correction1 * first / denominator)
    return (first, second)


SCHEDULE_FREE_BETAS = ADAM_BETAS  # schedulefree.AdamWScheduleFree's defaults, as are its eps and its r = 0


def _schedule_free_y(x: torch.Tensor, state: tuple[torch.Tensor, ...], group: ModelGroup) -> torch.Tensor:
    """y, kept in the state as the library keeps it in the parameters (not recomputed from x, which would add a
    rounding at every update); a model that has not stepped has y = x."""
    return torch.where(per_model(group.steps > 0, x), state[2], x)


def _schedule_free_adamw(p: torch.Tensor, g: torch.Tensor, state: tuple[torch.Tensor, ...],
                         scale: torch.Tensor | None, group: ModelGroup) -> tuple[torch.Tensor, ...]:
    """`schedulefree.AdamWScheduleFree` without warm-up: p arrives at y and leaves at x (its ``eval()`` point).

    With a constant learning rate and no warm-up the library's averaging weight c = lr_max**2 / sum is 1 / k at
    update k; update scales multiply the steps of y and z, as a per-block learning rate, and leave c as it is.
    """
    beta1, beta2 = SCHEDULE_FREE_BETAS
    z = torch.where(per_model(group.steps == 1, p), p, state[0])  # the library starts z at the first y
    second = state[1].mul(beta2).addcmul_(g, g, value=1 - beta2)
    denominator = (second / per_model(1 - beta2**group.steps, p)).sqrt_().add_(ADAM_EPS)
    normalized = g / denominator
    if group.decayed:
        normalized = normalized + per_model(group.decay, p) * p
    c = per_model(1 / group.steps, p)
    step_lr = per_model(group.lr, p) if scale is None else per_model(group.lr, p) * scale
    y = p.lerp(z, c) + step_lr * (beta1 * (1 - c) - 1) * normalized
    z = z - step_lr * normalized
    p.copy_(y.lerp(z, 1 - 1 / beta1))  # x, the library's eval()
    return (z, second, y)


def _library_schedule_free(params: Iterable[torch.nn.Parameter], lr: float, decay: float) -> torch.optim.Optimizer:
    from schedulefree import AdamWScheduleFree  # the `competitors` extra: tests compare with it

    return AdamWScheduleFree(params, lr, betas=SCHEDULE_FREE_BETAS, eps=ADAM_EPS, weight_decay=decay)


OPTIMIZERS: dict[str, OptimizerKind] = {}


def register_optimizer(kind: OptimizerKind) -> OptimizerKind:
    """Add `kind` to `OPTIMIZERS` (replacing one of the same name): regimes, the env and the zoo then take it."""
    OPTIMIZERS[kind.name] = kind
    return kind


for _kind in (
    OptimizerKind("sgd", 1.0, _sgd, 0, lambda params, lr, decay: torch.optim.SGD(params, lr, weight_decay=decay)),
    # with momentum 0.9 an SGD step is about 10 plain ones
    OptimizerKind("momentum", 0.1, _momentum, 1,
                  lambda params, lr, decay: torch.optim.SGD(params, lr, momentum=MOMENTUM, weight_decay=decay)),
    # Adam's steps are about lr per weight whatever the gradient's size: 1e-3 is its usual rate, 0.05 SGD's
    OptimizerKind("adam", 0.02, _adamw, 2,
                  lambda params, lr, decay: torch.optim.AdamW(params, lr, betas=ADAM_BETAS, eps=ADAM_EPS,
                                                              weight_decay=decay)),
    # Schedule-Free AdamW's default lr, 2.5e-3, is 2.5 times Adam's usual one
    OptimizerKind("schedule-free-adamw", 0.05, _schedule_free_adamw, 3, _library_schedule_free,
                  gradient_point=_schedule_free_y),
):
    register_optimizer(_kind)


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
        self._state: list[list[torch.Tensor]] = []  # slot -> parameter -> (N, ...) state, allocated on first use
        self._groups: list[ModelGroup] = []
        self._regroup()

    def reset(self, index: int, regime: OptimizerSettings) -> None:
        """MLP `index` starts `regime`'s optimizer afresh (empty state)."""
        self.kinds[index] = regime.optimizer
        self.lr[index] = regime.lr
        self.weight_decay[index] = regime.weight_decay
        self.steps[index] = 0
        while len(self._state) < OPTIMIZERS[regime.optimizer].state_slots:
            self._state.append([torch.zeros_like(p, requires_grad=False) for p in self.params])
        for slot in self._state:
            for s in slot:
                s[index].zero_()
        self._regroup()

    def _regroup(self) -> None:
        names = [k for k in OPTIMIZERS if (self.kinds == k).any()]
        self._groups = []
        for name in names:
            models = None if len(names) == 1 else torch.from_numpy(np.flatnonzero(self.kinds == name))
            lr = self.lr if models is None else self.lr[models]
            decay = self.weight_decay if models is None else self.weight_decay[models]
            shared = float(lr[0]) if bool((lr == lr[0]).all()) else None
            self._groups.append(ModelGroup(OPTIMIZERS[name], models, lr, shared, decay, bool((decay > 0).any()),
                                           self.steps))

    @torch.no_grad()
    def to_gradient_point(self) -> None:
        """Move the weights of models whose optimizer takes its gradient elsewhere to that point (the next `step`
        brings them back); a no-op for SGD, momentum and Adam."""
        for group in self._groups:
            point = group.kind.gradient_point
            if point is None:
                continue
            models = group.models
            group.steps = self.steps if models is None else self.steps[models]
            slots = self._state[:group.kind.state_slots]
            for i, p in enumerate(self.params):
                if models is None:
                    p.copy_(point(p, tuple(slot[i] for slot in slots), group))
                else:
                    p.index_copy_(0, models, point(p[models], tuple(slot[i][models] for slot in slots), group))

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], update_scales: Scales = None) -> None:
        """One update of every model from its gradients (the same order as `params`; they may be changed in place)."""
        self.steps += 1
        for group in self._groups:
            models = group.models
            group.steps = self.steps if models is None else self.steps[models]
            slots = self._state[:group.kind.state_slots]
            for i, (p, g) in enumerate(zip(self.params, grads)):
                scale = None if update_scales is None else update_scales[i]
                if models is None:
                    new_state = group.kind.update(p, g, tuple(slot[i] for slot in slots), scale, group)
                    for slot, value in zip(slots, new_state):
                        slot[i].copy_(value)
                else:  # a mixed batch: this kind's models, updated on a copy and written back
                    part = p[models]
                    new_state = group.kind.update(part, g[models], tuple(slot[i][models] for slot in slots),
                                                  None if scale is None else scale[models], group)
                    p.index_copy_(0, models, part)
                    for slot, value in zip(slots, new_state):
                        slot[i].index_copy_(0, models, value)
