"""The paper's comparison: MLPs trained by plain backprop, L1, He init and ENN guidance, side by side.

Every row trains `len(seeds)` MLPs of one setting together in the training core (each seed its own
init and data order, the same seeds in every row) for the same number of epochs with the same
regime. The rows (`agents.experiments.guide.registry`) differ only in what the paper varies:

- ``bp``: the setting's plain training (SGD, unless its regime names another optimizer), PyTorch's init;
- ``l1``: plus `l1 * sum |W|` on the weight matrices;
- ``he``: He-normal init instead;
- ``enn``: plus the ENN guidance term `-w * ENN(W)` (`agents.enn.guidance`), with the setting's `enn`;
- ``enn+he``: both;
- ``zoo-enn``, ``zoo-enn+he``: the same with the setting's `zoo_enn` (by default a statistics ENN
  fitted on a randomized zoo of the setting's MLP);
- ``enn-init``: an ENN-shaped init: `ascent.steps` steps of gradient ascent on the setting's
  `init_enn` (by default one predicting the accuracy a run ends with) from PyTorch's init, then BP;
- ``bp-tuned``, ``rmsgd``, ``lfp``: the trainer baselines, plain training, RMSGD and LFP
  (`agents.experiments.baselines`), each with its learning rate chosen from the setting's `lr_grid` on the
  validation accuracy of separate tuning seeds (the same grid for all three).

Each ENN is a file (an exported critic or a `fit-enn` ENN, checked against the setting's shapes), a
supervised ENN fitted on the spot to GradInstructor episodes of this very setting (same data,
architecture, learning rate and batch size, each episode one whole training run), or a supervised
ENN fitted on a zoo (a file, or one trained on the spot); see `ENNSource`.

Every row trained by the core records the per-layer Frobenius norms of its weights along training
(mean over seeds), to compare what guidance does to the weights with where He init puts them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from agents.enn.guidance import ENNGuidance
from agents.enn.network import ENN
from agents.experiments.baselines import make_trainer
from agents.experiments.guide.config import GuideSetting
from agents.experiments.guide.registry import GUIDE_ROWS, GuideRow, check_rows
from agents.seeds import TUNING_SEEDS
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.datasets import load_dataset
from gi_envs.training import Training

GRID_EXTENSIONS = 2  # how often a search may extend its grid past the end it landed on
@dataclass
class RowResult:
    row: str
    per_seed: pd.DataFrame  # seed, train/val/test accuracy
    seconds_per_epoch: float
    guidance: ENNGuidance | None
    lr: float
    mlp: BatchedMLP  # the trained MLPs, one per seed
    weight_norms: pd.DataFrame | None = None  # step, layer, norm (mean over seeds); rows trained by the core only


def train_row(setting: GuideSetting, row: str, seeds: list[int], enn: ENN | None, enn_setting: float = 1.0,
              lr: float | None = None) -> RowResult:
    """Train one row's MLPs (one per seed) and measure them on every split.

    Initialisation, data order and evaluation always come from the training core, so a seed's MLP
    starts equal and sees the same batches in every row. Rows of the core train all seeds at once;
    the RMSGD and LFP rows hand each seed's MLP to its package as an `nn.Sequential` and load it back.
    With `guidance.every` = k > 1, the ENN's gradient is computed every k steps and reused in between:
    it changes slowly, and it is the costly part of a guided step.

    :param enn_setting: the guidance term's weight; for an ``init`` row, the ascent's step size.
    :param lr: the learning rate; default the setting's.
    """
    spec: GuideRow = GUIDE_ROWS[check_rows([row])[0]]
    if lr is not None:
        setting = setting.with_lr(lr)
    data = load_dataset(setting.mlp.dataset)
    training = Training(dataclasses.replace(setting.mlp, init=spec.init), data, len(seeds))
    for i, seed in enumerate(seeds):
        training.reset(i, seed, setting.regime)
    steps_per_epoch = setting.steps_per_epoch()
    guidance = None
    if spec.enn and enn is None:
        raise ValueError(f"row {row!r} needs an ENN")
    start = time.perf_counter()
    if spec.enn and spec.enn_use == "init":
        ascend_enn(training.mlp, enn, setting.ascent.steps, enn_setting)  # type: ignore[arg-type]
    elif spec.enn:
        every = setting.guidance.every
        guidance = ENNGuidance(enn, enn_setting, setting.guidance.schedule,  # type: ignore[arg-type]
                               total_steps=setting.epochs * steps_per_epoch // every,
                               record_every=max(1, steps_per_epoch // 20))
    norms = None
    if spec.trainer:
        _train_with_package(training, spec.trainer, setting.regime.lr, setting.epochs, steps_per_epoch)
    else:
        terms = ExtraTerms(training.mlp, setting.l1 if spec.l1 else 0.0, guidance, setting.guidance.every)
        norms = _train_in_core(training, setting.epochs * steps_per_epoch, terms,
                               record_every=max(1, steps_per_epoch // 5))
    seconds_per_epoch = (time.perf_counter() - start) / setting.epochs
    accuracy = {split: training.evaluate(getattr(data, split))[1].numpy() for split in ("train", "val", "test")}
    per_seed = pd.DataFrame({"seed": seeds, **{f"{s}_accuracy": a for s, a in accuracy.items()}})
    return RowResult(row, per_seed, seconds_per_epoch, guidance, setting.regime.lr, training.mlp, norms)


@torch.no_grad()
def ascend_enn(mlp: BatchedMLP, enn: ENN, steps: int, step_size: float) -> None:
    """An ENN-shaped init: `steps` steps of gradient ascent on the ENN's prediction, weights only."""
    guidance = ENNGuidance(enn, weight=1.0, record_every=0)
    for _ in range(steps):
        for w, g in zip(mlp.weights, guidance.weight_gradients(mlp.weights, mlp.biases)):
            w.sub_(g, alpha=step_size)


def weight_norms(mlp: BatchedMLP, step: int) -> list[dict[str, float]]:
    """Per layer, the Frobenius norm of the weight matrix, mean over the N MLPs."""
    return [{"step": step, "layer": layer, "norm": float(w.detach().flatten(1).norm(dim=1).mean())}
            for layer, w in enumerate(mlp.weights)]


class ExtraTerms:
    """A gradient hook adding a row's L1 term and ENN guidance term to the task gradient of every step."""

    def __init__(self, mlp: BatchedMLP, l1: float, guidance: ENNGuidance | None, guidance_every: int):
        self.mlp, self.l1, self.guidance, self.every = mlp, l1, guidance, guidance_every
        self.step = 0
        self._guidance_grads: list[torch.Tensor] = []

    def __call__(self, weight_grads: list[torch.Tensor], bias_grads: list[torch.Tensor]) -> None:
        if self.l1:
            for i, w in enumerate(self.mlp.weights):
                weight_grads[i] = weight_grads[i] + self.l1 * torch.sign(w.detach())
        if self.guidance is not None:
            if self.step % self.every == 0:
                self._guidance_grads = self.guidance.weight_gradients(self.mlp.weights, self.mlp.biases)
                if self.guidance.record_every and self.step % self.guidance.record_every < self.every:
                    self.guidance.record(self._guidance_grads, weight_grads)
            for i, extra in enumerate(self._guidance_grads):
                weight_grads[i] = weight_grads[i] + extra
        self.step += 1


def _train_in_core(training: Training, steps: int, terms: ExtraTerms, record_every: int) -> pd.DataFrame:
    """`steps` steps of every MLP in the training core, with the row's extra terms.

    :return: the weight norms every `record_every` steps (and at the end).
    """
    norms = []
    hook = terms if terms.l1 or terms.guidance is not None else None
    for step in range(steps):
        if step % record_every == 0:
            norms += weight_norms(training.mlp, step)
        training.step(hook)
    return pd.DataFrame(norms + weight_norms(training.mlp, steps))


def _train_with_package(training: Training, trainer: str, lr: float, epochs: int, steps_per_epoch: int) -> None:
    """Each MLP trained as an `nn.Sequential` by a baseline package (RMSGD, LFP) on the core's data order,
    then loaded back."""
    mlp, train = training.mlp, training.data.train
    models = [mlp.to_sequential(i) for i in range(mlp.n_models)]
    trainers = [make_trainer(trainer, model, lr) for model in models]
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            idx = training.sampler.next_indices()
            for model_trainer, model_idx in zip(trainers, idx):
                model_trainer.step(train.x[model_idx], train.y[model_idx])
        for model_trainer in trainers:
            model_trainer.end_epoch()
    for i, model in enumerate(models):
        mlp.load_sequential(i, model)


def search_on_validation(candidates: list[float],
                         run: Callable[[float], RowResult]) -> tuple[float, dict[float, float]]:
    """The candidate whose tuning-seed MLPs reach the best mean validation accuracy, and every candidate's."""
    scores = {float(c): float(run(float(c)).per_seed.val_accuracy.mean()) for c in candidates}
    return max(scores, key=scores.get), scores


@dataclass
class GridSearch:
    """A value chosen on validation accuracy of the tuning seeds, and how the grid went."""

    best: float
    scores: dict[float, float]  # every value tried, extensions included
    at_edge: str  # "" inside the grid; "low" or "high" when the best is still the grid's end

    def describe(self, what: str) -> str:
        tried = ", ".join(f"{k:g}: {100 * v:.2f}" for k, v in sorted(self.scores.items()))
        edge = (f" It is the {self.at_edge} end of the grid even after extending it: the best value may lie "
                "beyond." if self.at_edge else "")
        return f"{what} {self.best:g}, chosen on validation accuracy (%) of seeds {list(TUNING_SEEDS)}: {tried}.{edge}"


def search_grid(grid: list[float], run: Callable[[float], RowResult], extensions: int = GRID_EXTENSIONS) -> GridSearch:
    """`search_on_validation` that extends the grid past the end its best lands on, up to `extensions` times,
    stepping by the grid's own end ratio (x3 for a single value); a zero low end cannot be extended."""
    best, scores = search_on_validation(grid, run)
    for _ in range(extensions):
        values = sorted(scores)
        if best == values[-1]:
            ratio = values[-1] / values[-2] if len(values) > 1 and values[-2] > 0 else 3.0
            new = values[-1] * ratio
        elif best == values[0] and values[0] > 0:
            ratio = values[1] / values[0] if len(values) > 1 else 3.0
            new = values[0] / ratio
        else:
            break
        _, extra = search_on_validation([new], run)
        scores |= extra
        best = max(scores, key=scores.get)
    values = sorted(scores)
    at_edge = "" if len(values) == 1 else "high" if best == values[-1] else "low" if best == values[0] else ""
    return GridSearch(best, scores, at_edge)


def tuned_enn_setting(setting: GuideSetting, row: str, enn: ENN) -> GridSearch | float:
    """The guidance weight of an ENN-guided row (or the ascent step size of an ``init`` row): the setting's
    number, or its grid searched on validation accuracy of the tuning seeds."""
    value = setting.ascent.step_size if GUIDE_ROWS[row].enn_use == "init" else setting.guidance.weight
    if not isinstance(value, tuple):
        return float(value)
    return search_grid(list(value), lambda v: train_row(setting, row, list(TUNING_SEEDS), enn, v))


def tuned_lr(setting: GuideSetting, row: str) -> tuple[float, dict[float, float]]:
    """The learning rate of `row`: searched on `lr_grid` by validation accuracy of the tuning seeds.

    Rows without `tune_lr`, and every row of a setting without a grid, keep the setting's lr.

    :return: the chosen rate and the mean validation accuracy of every rate tried.
    """
    if not GUIDE_ROWS[row].tune_lr or not setting.lr_grid:
        return setting.regime.lr, {}
    return search_on_validation(list(setting.lr_grid),
                                lambda lr: train_row(setting, row, list(TUNING_SEEDS), None, lr=lr))
