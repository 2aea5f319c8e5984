"""The paper's comparison: MLPs trained by plain backprop, L1, He init and ENN guidance, side by side.

Every row trains `len(seeds)` MLPs of one regime together in one `BatchedMLP` (each seed its own
init and data order, the same seeds in every row) for the same number of epochs with the same
SGD. The rows differ only in what the paper varies:

- ``bp``: plain minibatch SGD on the cross-entropy, PyTorch's default init;
- ``l1``: plus `l1 * sum |W|` on the weight matrices;
- ``he``: He-normal init instead;
- ``enn``: plus the ENN guidance term `-w * ENN(W)` (`agents.enn.guidance`), with the regime's `enn`;
- ``enn+he``: both;
- ``zoo-enn``, ``zoo-enn+he``: the same with the regime's `zoo_enn` (by default a statistics ENN
  fitted on a randomized zoo of the regime's MLP);
- ``enn-init``: an ENN-shaped init: `init_steps` steps of gradient ascent on the regime's
  `init_enn` (by default one predicting the accuracy a run ends with) from PyTorch's init, then BP;
- ``bp-tuned``, ``rmsgd``, ``lfp``: the trainer baselines, plain SGD, RMSGD and LFP
  (`agents.experiments.baselines`), each with its learning rate chosen from the regime's `lr_grid` on the
  validation accuracy of separate tuning seeds (the same grid for all three).

Each ENN is a file (an exported critic or a `fit-enn` ENN, checked against the regime's shapes), a
supervised ENN fitted on the spot to GradInstructor episodes of this very regime (same data,
architecture, learning rate and batch size, each episode one whole training run), or a supervised
ENN fitted on a zoo (a file, or one trained on the spot); see `Regime`.

Every MLP row records the per-layer Frobenius norms of its weights along training (mean over
seeds), to compare what guidance does to the weights with where He init puts them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from agents.enn.guidance import ENNGuidance
from agents.enn.network import ENN
from agents.enn.zoo import Zoo, ZooSpec, train_zoo
from agents.experiments.baselines import TRAINERS, make_trainer
from agents.experiments.guide.config import LR_TUNED_ROWS, Regime, check_rows
from agents.seeds import TUNING_SEEDS
from gi_envs.batched_mlp import BatchedMLP, MinibatchSampler
from gi_envs.datasets import Split, load_dataset

GRID_EXTENSIONS = 2  # how often a search may extend its grid past the end it landed on
_ZOOS: dict[tuple, Zoo] = {}  # zoos trained on the spot, shared by a regime's ENNs


def regime_zoo(regime: Regime, source: dict[str, Any], seed: int = 0) -> Zoo:
    """The zoo an ENN source names: a file (for the regime's MLP), or `zoo_runs` runs of it trained here."""
    if "zoo" in source:
        zoo = Zoo.load(source["zoo"])
        if zoo.spec.mlp.layer_shapes != regime.mlp.layer_shapes or zoo.spec.mlp.dataset != regime.mlp.dataset:
            raise ValueError(f"regime {regime.name!r}: zoo {source['zoo']} holds {zoo.spec.mlp.dataset} "
                             f"{'-'.join(map(str, zoo.spec.mlp.layer_sizes))} MLPs, the regime trains "
                             f"{regime.mlp.dataset} {'-'.join(map(str, regime.layer_sizes))} ones")
        return zoo
    key = (regime.mlp, int(source["zoo_runs"]), seed)
    if key not in _ZOOS:
        _ZOOS[key] = train_zoo(ZooSpec(mlp=regime.mlp, runs=key[1], seed=seed), progress=False)
    return _ZOOS[key]


def build_enn(regime: Regime, source: dict[str, Any], seed: int = 0) -> ENN:
    """An ENN from one of a regime's sources (`Regime.enn`, `zoo_enn`, `init_enn`)."""
    from agents.enn.fit import fit_zoo_enn
    from agents.enn.supervised import fit_supervised_enn, snapshot_zoo

    encoder = source.get("encoder", "image")
    if "path" in source:
        return ENN.load(source["path"])
    if "supervised_env_steps" in source:
        env_kwargs = regime.zoo_env_kwargs()
        zoo = snapshot_zoo(env_kwargs, int(source["supervised_env_steps"]), seed, keep_weights=encoder == "stats")
        return fit_supervised_enn(env_kwargs, zoo, epochs=30, seed=seed, encoder=encoder)
    return fit_zoo_enn(regime_zoo(regime, source, seed), encoder, source.get("target", "current"),
                       regime.image if encoder == "image" else None, seed=seed, progress=False,
                       zoo_path=source.get("zoo"))


@dataclass
class RowResult:
    row: str
    per_seed: pd.DataFrame  # seed, train/val/test accuracy
    seconds_per_epoch: float
    guidance: ENNGuidance | None
    lr: float
    mlp: BatchedMLP  # the trained MLPs, one per seed
    weight_norms: pd.DataFrame | None = None  # step, layer, norm (mean over seeds); SGD rows only


def train_row(regime: Regime, row: str, seeds: list[int], enn: ENN | None, guidance_weight: float = 1.0,
              lr: float | None = None) -> RowResult:
    """Train one row's MLPs (one per seed) and measure them on every split.

    Initialisation, data order and evaluation always come from the shared `BatchedMLP` and
    `MinibatchSampler`, so a seed's MLP starts equal and sees the same batches in every row.
    SGD rows train all seeds at once in the batched trainer; the RMSGD and LFP rows hand each
    seed's MLP to its package as an `nn.Sequential` and load it back. With `guidance_every` = k > 1,
    the ENN's gradient is computed every k steps and reused in between: it changes slowly, and
    it is the costly part of a guided step.

    :param guidance_weight: the guidance term's weight; for ``enn-init``, the ascent's step size.
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
    if "enn" in row and enn is None:
        raise ValueError(f"row {row!r} needs an ENN")
    start = time.perf_counter()
    if row == "enn-init":
        ascend_enn(mlp, enn, regime.init_steps, guidance_weight)
    elif "enn" in row:
        guidance = ENNGuidance(enn, guidance_weight, regime.guidance_schedule,
                               total_steps=regime.epochs * steps_per_epoch // regime.guidance_every,
                               record_every=max(1, steps_per_epoch // 20))
    norms = None
    if row in TRAINERS:
        _train_with_package(mlp, sampler, data.train, row, lr, regime.epochs, steps_per_epoch)
    else:
        l1 = regime.l1 if row == "l1" else 0.0
        norms = _train_batched(mlp, sampler, data.train, lr, regime.epochs * steps_per_epoch, l1, guidance,
                               regime.guidance_every, record_every=max(1, steps_per_epoch // 5))
    seconds_per_epoch = (time.perf_counter() - start) / regime.epochs
    accuracy = {split: mlp.evaluate(getattr(data, split).x, getattr(data, split).y)[1].numpy()
                for split in ("train", "val", "test")}
    per_seed = pd.DataFrame({"seed": seeds, **{f"{s}_accuracy": a for s, a in accuracy.items()}})
    return RowResult(row, per_seed, seconds_per_epoch, guidance, lr, mlp, norms)


def ascend_enn(mlp: BatchedMLP, enn: ENN, steps: int, step_size: float) -> None:
    """An ENN-shaped init: `steps` steps of gradient ascent on the ENN's prediction, weights only."""
    guidance = ENNGuidance(enn, weight=1.0, record_every=0)
    no_bias_step = [torch.zeros_like(b) for b in mlp.biases]
    for _ in range(steps):
        mlp.apply_gradients(guidance.weight_gradients(mlp.weights), no_bias_step, step_size)


def weight_norms(mlp: BatchedMLP, step: int) -> list[dict[str, float]]:
    """Per layer, the Frobenius norm of the weight matrix, mean over the N MLPs."""
    return [{"step": step, "layer": layer, "norm": float(w.detach().flatten(1).norm(dim=1).mean())}
            for layer, w in enumerate(mlp.weights)]


def _train_batched(mlp: BatchedMLP, sampler: MinibatchSampler, train: Split, lr: float, steps: int, l1: float,
                   guidance: ENNGuidance | None, guidance_every: int, record_every: int) -> pd.DataFrame:
    """Minibatch SGD of all MLPs at once in the batched trainer, plus the L1 or ENN term of the row.

    :return: the weight norms every `record_every` steps (and at the end).
    """
    extra: list[torch.Tensor] = []
    norms = []
    for step in range(steps):
        if step % record_every == 0:
            norms += weight_norms(mlp, step)
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
    return pd.DataFrame(norms + weight_norms(mlp, steps))


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


def tuned_enn_setting(regime: Regime, row: str, enn: ENN) -> GridSearch | float:
    """The guidance weight of an ENN-guided row (or the step size of ``enn-init``): the regime's number,
    or its grid searched on validation accuracy of the tuning seeds."""
    setting = regime.init_step_size if row == "enn-init" else regime.guidance_weight
    if not isinstance(setting, list):
        return float(setting)
    return search_grid(setting, lambda value: train_row(regime, row, list(TUNING_SEEDS), enn, value))


def tuned_lr(regime: Regime, row: str) -> tuple[float, dict[float, float]]:
    """The learning rate of `row`: searched on `lr_grid` by validation accuracy of the tuning seeds.

    Rows outside `LR_TUNED_ROWS`, and every row of a regime without a grid, keep the regime's lr.

    :return: the chosen rate and the mean validation accuracy of every rate tried.
    """
    if row not in LR_TUNED_ROWS or not regime.lr_grid:
        return regime.lr, {}
    return search_on_validation(regime.lr_grid, lambda lr: train_row(regime, row, list(TUNING_SEEDS), None, lr=lr))
