"""The paper's comparison: MLPs trained by plain backprop, L1, He init and ENN guidance, side by side.

Every row trains `len(seeds)` MLPs of one regime together in one `BatchedMLP` (each seed its own
init and data order, the same seeds in every row) for the same number of epochs with the same
SGD. The rows differ only in what the paper varies:

- ``bp``: plain minibatch SGD on the cross-entropy, PyTorch's default init;
- ``l1``: plus `l1 * sum |W|` on the weight matrices;
- ``he``: He-normal init instead;
- ``enn``: plus the ENN guidance term `-w * ENN(weight_image(W))` (`agents.enn.guidance`);
- ``enn+he``: both;
- ``bp-tuned``, ``rmsgd``, ``lfp``: the trainer baselines, plain SGD, RMSGD and LFP
  (`agents.experiments.baselines`), each with its learning rate chosen from the regime's `lr_grid` on the
  validation accuracy of separate tuning seeds (the same grid for all three).

The ENN is either a file (an exported critic, checked against the regime's shapes) or a
supervised ENN fitted on the spot to a zoo of GradInstructor episodes of this very regime (same
data, architecture, learning rate and batch size, each episode one whole training run).
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
from agents.experiments.baselines import TRAINERS, make_trainer
from agents.experiments.guide.config import LR_TUNED_ROWS, Regime, check_rows
from agents.seeds import TUNING_SEEDS
from gi_envs.batched_mlp import BatchedMLP, MinibatchSampler
from gi_envs.datasets import Split, load_dataset


def regime_enn(regime: Regime, seed: int = 0) -> ENN:
    """The regime's ENN: loaded from a file, or a supervised ENN fitted to a zoo of this regime."""
    from agents.enn.supervised import fit_supervised_enn, snapshot_zoo

    if "path" in regime.enn:
        return ENN.load(regime.enn["path"])
    env_kwargs = regime.zoo_env_kwargs()
    zoo = snapshot_zoo(env_kwargs, int(regime.enn["supervised_env_steps"]), seed)
    return fit_supervised_enn(env_kwargs, zoo, epochs=30, seed=seed)


@dataclass
class RowResult:
    row: str
    per_seed: pd.DataFrame  # seed, train/val/test accuracy
    seconds_per_epoch: float
    guidance: ENNGuidance | None
    lr: float
    mlp: BatchedMLP  # the trained MLPs, one per seed


def train_row(regime: Regime, row: str, seeds: list[int], enn: ENN | None, guidance_weight: float = 1.0,
              lr: float | None = None) -> RowResult:
    """Train one row's MLPs (one per seed) and measure them on every split.

    Initialisation, data order and evaluation always come from the shared `BatchedMLP` and
    `MinibatchSampler`, so a seed's MLP starts equal and sees the same batches in every row.
    SGD rows train all seeds at once in the batched trainer; the RMSGD and LFP rows hand each
    seed's MLP to its package as an `nn.Sequential` and load it back. With `guidance_every` = k > 1,
    the ENN's gradient is computed every k steps and reused in between: it changes slowly, and
    it is the costly part of a guided step.

    :param lr: the learning rate; default the regime's.
    """
    check_rows([row])
    lr = regime.lr if lr is None else lr
    data = load_dataset(regime.mlp.dataset)
    spec = dataclasses.replace(regime.mlp, init="he") if row.endswith("he") else regime.mlp
    mlp = spec.build(len(seeds))
    sampler = MinibatchSampler(len(data.train), regime.batch_size, len(seeds))
    for i, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(int(seed))
        mlp.initialize(i, generator, spec.init)
        sampler.reset(i, generator)
    steps_per_epoch = regime.steps_per_epoch()
    guidance = None
    if row.startswith("enn"):
        if enn is None:
            raise ValueError(f"row {row!r} needs an ENN")
        guidance = ENNGuidance(enn, guidance_weight, regime.guidance_schedule,
                               total_steps=regime.epochs * steps_per_epoch // regime.guidance_every,
                               record_every=max(1, steps_per_epoch // 20))
    start = time.perf_counter()
    if row in TRAINERS:
        _train_with_package(mlp, sampler, data.train, row, lr, regime.epochs, steps_per_epoch)
    else:
        l1 = regime.l1 if row == "l1" else 0.0
        _train_batched(mlp, sampler, data.train, lr, regime.epochs * steps_per_epoch, l1, guidance,
                       regime.guidance_every)
    seconds_per_epoch = (time.perf_counter() - start) / regime.epochs
    accuracy = {split: mlp.evaluate(getattr(data, split).x, getattr(data, split).y)[1].numpy()
                for split in ("train", "val", "test")}
    per_seed = pd.DataFrame({"seed": seeds, **{f"{s}_accuracy": a for s, a in accuracy.items()}})
    return RowResult(row, per_seed, seconds_per_epoch, guidance, lr, mlp)


def _train_batched(mlp: BatchedMLP, sampler: MinibatchSampler, train: Split, lr: float, steps: int, l1: float,
                   guidance: ENNGuidance | None, guidance_every: int) -> None:
    """Minibatch SGD of all MLPs at once in the batched trainer, plus the L1 or ENN term of the row."""
    extra: list[torch.Tensor] = []
    for step in range(steps):
        idx = sampler.next_indices()
        _, weight_grads, bias_grads = mlp.loss_and_gradients(train.x[idx], train.y[idx])
        if l1:
            weight_grads = [g + l1 * torch.sign(w.detach()) for g, w in zip(weight_grads, mlp.weights)]
        if guidance is not None:
            if step % guidance_every == 0:
                extra = guidance.weight_gradients(mlp.weights)
                if step % guidance.record_every < guidance_every:
                    guidance.record(extra, weight_grads)
            weight_grads = [g + e for g, e in zip(weight_grads, extra)]
        mlp.apply_gradients(weight_grads, bias_grads, lr)


def _train_with_package(mlp: BatchedMLP, sampler: MinibatchSampler, train: Split, trainer: str, lr: float,
                        epochs: int, steps_per_epoch: int) -> None:
    """Each MLP trained as an `nn.Sequential` by a baseline package (RMSGD, LFP), then loaded back."""
    models = [mlp.to_sequential(i) for i in range(mlp.n_models)]
    trainers = [make_trainer(trainer, model, lr) for model in models]
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            idx = sampler.next_indices()
            for model_trainer, model_idx in zip(trainers, idx):
                model_trainer.step(train.x[model_idx], train.y[model_idx])
        for model_trainer in trainers:
            model_trainer.end_epoch()
    for i, model in enumerate(models):
        mlp.load_sequential(i, model)


def search_on_validation(candidates: list[float], run: Callable[[float], RowResult]) -> tuple[float, dict[float, float]]:
    """The candidate whose tuning-seed MLPs reach the best mean validation accuracy, and every candidate's."""
    scores = {float(c): float(run(float(c)).per_seed.val_accuracy.mean()) for c in candidates}
    return max(scores, key=scores.get), scores


def tuned_guidance_weight(regime: Regime, enn: ENN) -> float:
    """The regime's guidance weight; a list is a grid searched on validation accuracy (tuning seeds)."""
    if not isinstance(regime.guidance_weight, list):
        return float(regime.guidance_weight)
    return search_on_validation(regime.guidance_weight,
                                lambda w: train_row(regime, "enn", list(TUNING_SEEDS), enn, w))[0]


def tuned_lr(regime: Regime, row: str) -> tuple[float, dict[float, float]]:
    """The learning rate of `row`: searched on `lr_grid` by validation accuracy of the tuning seeds.

    Rows outside `LR_TUNED_ROWS`, and every row of a regime without a grid, keep the regime's lr.

    :return: the chosen rate and the mean validation accuracy of every rate tried.
    """
    if row not in LR_TUNED_ROWS or not regime.lr_grid:
        return regime.lr, {}
    return search_on_validation(regime.lr_grid, lambda lr: train_row(regime, row, list(TUNING_SEEDS), None, lr=lr))
