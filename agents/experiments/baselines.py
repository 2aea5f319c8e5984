"""Literature baselines as trainers of one `nn.Sequential` MLP: RMSGD and LFP, through their own packages.

Both come from PyPI and install with the `[baselines]` extra:

- **RMSGD** (Hosseini et al., CVPR 2022; `rmsgd`): SGD whose per-layer learning rate follows
  the layer's "knowledge gain", an EVBMF low-rank metric of the weight matrix, updated once per
  epoch by `epoch_step()`. It needs `linear=True` to look at `Linear` weights at all (the
  default adapts only 4-D convolution kernels) and one parameter group (its per-layer rates
  index `model.parameters()` in order). Biases inherit their layer's rate.
- **LFP** (Weber et al., arXiv 2308.12053; `lfprop`): Layer-wise Feedback Propagation. Inside
  `LFPEpsilonComposite().context(model)` a "reward" (`SoftmaxLossReward`: logits times
  one-hot minus softmax) is propagated backwards like an LRP relevance, leaving a `.feedback`
  on every parameter; the update is `w += lr * feedback`. On a ReLU MLP this equals gradient
  descent with each weight's step scaled by |w| (Theorem 1 of the paper; tested here). The
  feedback is summed over the batch: we divide it by the batch size (our choice) so that one
  learning-rate grid means the same step size for BP, RMSGD and LFP.

The guided-training comparison (`agents.experiments.guide`) keeps initialisation, data order and
evaluation in the shared `BatchedMLP` and hands each seed's MLP to one of these trainers as a
`Sequential` (`BatchedMLP.to_sequential`), then loads it back.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from agents.errors import MissingDependency

EXTRA = "baselines"


class SequentialTrainer(Protocol):
    """Trains one `nn.Sequential` MLP: one call per minibatch, one per finished epoch."""

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def end_epoch(self) -> None: ...


def _require(module: str):
    """Import an optional baseline module, or say in one line what is missing or broken and how to fix it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and module.split(".")[0] == error.name.split(".")[0]:
            raise MissingDependency(f"the {module.split('.')[0]!r} package is not installed; it comes with the "
                              f"[{EXTRA}] extra: pip install -e '.[{EXTRA}]'") from error
        raise MissingDependency(f"{module!r} is installed but cannot import {error.name!r}; reinstall the "
                          f"[{EXTRA}] extra: pip install -e '.[{EXTRA}]'") from error
    except ImportError as error:
        detail = " ".join(str(error).split())[:200]
        raise MissingDependency(f"{module!r} is installed but fails to import ({detail}); another package changed what "
                          f"it depends on: pip install -e '.[{EXTRA}]' restores it (see README, companions)") from error


def check_trainer(name: str) -> None:
    """Import everything trainer `name` needs now, so that a missing or broken package fails before any work."""
    for module in trainer_kind(name).modules:
        _require(module)


class RMSGDTrainer:
    """Minibatch cross-entropy with `rmsgd.RMSGD(linear=True)`; `epoch_step()` after every epoch."""

    def __init__(self, model: nn.Sequential, lr: float):
        rmsgd = _require("rmsgd")
        self.model = model
        self.optimizer = rmsgd.RMSGD(list(model.parameters()), lr=lr, linear=True)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(x), y).backward()
        self.optimizer.step()

    def end_epoch(self) -> None:
        self.optimizer.epoch_step()

    @property
    def layer_lrs(self) -> list[float]:
        """The current learning rate of each weight matrix (biases share their layer's)."""
        params = list(self.model.parameters())
        return [float(lr) for lr, p in zip(self.optimizer.lr_vector, params) if p.dim() == 2]


class LFPTrainer:
    """LFP-epsilon feedback (`lfprop`) with the softmax-loss reward, applied by plain SGD."""

    def __init__(self, model: nn.Sequential, lr: float):
        check_trainer("lfp")
        from lfprop.propagation.propagator_lxt import LFPEpsilonComposite
        from lfprop.rewards.reward_functions import SoftmaxLossReward

        self.model = model
        self.composite = LFPEpsilonComposite()
        self.reward = SoftmaxLossReward(torch.device("cpu"))
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def feedback(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Each parameter's LFP feedback for one batch, summed over the batch (lfprop's convention)."""
        with warnings.catch_warnings():  # lxt warns on every context exit that removal is "not yet fully tested"
            warnings.filterwarnings("ignore", message="This functionality is not yet fully tested")
            with self.composite.context(self.model) as modified:
                inputs = x.detach().requires_grad_(True)
                logits = modified(inputs)
                torch.autograd.grad((logits,), (inputs,), grad_outputs=(self.reward(logits, y),))
        return [p.feedback for p in self.model.parameters()]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for p, feedback in zip(self.model.parameters(), self.feedback(x, y)):
            p.grad = -feedback / len(x)
        self.optimizer.step()

    def end_epoch(self) -> None:
        pass


@dataclass(frozen=True)
class TrainerKind:
    """One literature trainer: what builds it, and what it imports (checked before any work).

    :param name: what a guide row's ``trainer`` calls it.
    :param make: the trainer of one `nn.Sequential` at a learning rate.
    :param modules: the modules it imports, each imported by `check_trainer` so that a missing or broken
        package fails at once with the install command.
    """

    name: str
    make: Callable[[nn.Sequential, float], SequentialTrainer]
    modules: tuple[str, ...]


TRAINERS: dict[str, TrainerKind] = {}


def register_trainer(kind: TrainerKind) -> TrainerKind:
    """Add `kind` to `TRAINERS` (replacing one of the same name): guide rows may then name it."""
    TRAINERS[kind.name] = kind
    return kind


register_trainer(TrainerKind("rmsgd", RMSGDTrainer, ("rmsgd",)))
# LFP's chain (lfprop -> lxt -> transformers<5 -> huggingface-hub<1) breaks when a companion such as rl-zoo3
# (through huggingface_sb3) has upgraded huggingface-hub to 2.x: every link is imported before work
register_trainer(TrainerKind("lfp", LFPTrainer,
                             ("lfprop", "lfprop.propagation.propagator_lxt", "lfprop.rewards.reward_functions")))


def trainer_kind(name: str) -> TrainerKind:
    """The entry of `TRAINERS` called `name`, or a ValueError naming the known ones."""
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}; known trainers: {list(TRAINERS)}")
    return TRAINERS[name]


def make_trainer(name: str, model: nn.Sequential, lr: float) -> SequentialTrainer:
    """The baseline trainer `name` for `model`; unknown names list the known ones."""
    return trainer_kind(name).make(model, lr)
