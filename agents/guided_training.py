"""The paper's comparison: MLPs trained by plain backprop, L1, He init and ENN guidance, side by side.

Every row trains `len(seeds)` MLPs of one regime together in one `BatchedMLP` (each seed its own
init and data order, the same seeds in every row) for the same number of epochs with the same
SGD. The rows differ only in what the paper varies:

- ``bp``: plain minibatch SGD on the cross-entropy, PyTorch's default init;
- ``l1``: plus `l1 * sum |W|` on the weight matrices;
- ``he``: He-normal init instead;
- ``enn``: plus the ENN guidance term `-w * ENN(weight_image(W))` (`agents.guidance`);
- ``enn+he``: both;
- ``bp-tuned``, ``rmsgd``, ``lfp``: the trainer baselines, plain SGD, RMSGD and LFP
  (`agents.baselines`), each with its learning rate chosen from the regime's `lr_grid` on the
  validation accuracy of separate tuning seeds (the same grid for all three).

The ENN is either a file (an exported critic, checked against the regime's shapes) or a
supervised ENN fitted on the spot to a zoo of GradInstructor episodes of this very regime (same
data, architecture, learning rate and batch size, each episode one whole training run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from agents.baselines import TRAINERS, make_trainer
from agents.enn import ENN
from agents.guidance import SCHEDULES, ENNGuidance
from gi_envs.batched_mlp import ACTIVATIONS, BatchedMLP, MinibatchSampler
from gi_envs.datasets import DATASETS, Split, load_dataset

ROWS = ("bp", "l1", "he", "enn", "enn+he", "bp-tuned", "rmsgd", "lfp")
ROW_NAMES = {"bp": "conventional BP", "l1": "L1 regularisation", "he": "He initialisation",
             "enn": "ENN-guided", "enn+he": "ENN-guided + He", "bp-tuned": "BP, lr tuned",
             "rmsgd": "RMSGD, lr tuned", "lfp": "LFP, lr tuned"}
LR_TUNED_ROWS = ("bp-tuned", *TRAINERS)  # rows whose learning rate is searched on `lr_grid`
ZOO_EPISODE_STEPS = 20  # env steps per zoo episode; one episode spans one whole training run
TUNING_SEEDS = (1000, 1001, 1002)  # a guidance-weight grid is searched on these, on the validation split


@dataclass
class Regime:
    """One training setting of the comparison; every row uses it unchanged."""

    name: str
    dataset: str
    hidden_sizes: tuple[int, ...]
    lr: float
    batch_size: int
    epochs: int
    activation: str = "relu"
    l1: float = 1e-4
    guidance_weight: float | list[float] = 1.0
    guidance_schedule: str = "constant"
    guidance_every: int = 1
    enn: dict[str, Any] = field(default_factory=lambda: {"supervised_env_steps": 4000})
    lr_grid: list[float] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"regime {self.name!r}: dataset={self.dataset!r} is not one of {list(DATASETS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"regime {self.name!r}: activation={self.activation!r} is not one of {list(ACTIVATIONS)}")
        if self.guidance_schedule not in SCHEDULES:
            raise ValueError(f"regime {self.name!r}: guidance_schedule={self.guidance_schedule!r} "
                             f"is not one of {list(SCHEDULES)}")
        for key in ("lr", "batch_size", "epochs", "guidance_every"):
            if not getattr(self, key) > 0:
                raise ValueError(f"regime {self.name!r}: {key}={getattr(self, key)!r} must be positive")
        if set(self.enn) - {"path", "supervised_env_steps"} or len(self.enn) != 1:
            raise ValueError(f"regime {self.name!r}: enn={self.enn!r} must be {{path: FILE}} or "
                             "{supervised_env_steps: N}")
        if self.lr_grid is not None and (not self.lr_grid or min(self.lr_grid) <= 0):
            raise ValueError(f"regime {self.name!r}: lr_grid={self.lr_grid!r} must be a non-empty list of positive rates")
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Widths from input to output of the regime's MLPs."""
        data = load_dataset(self.dataset)
        return (data.n_features, *self.hidden_sizes, data.n_classes)


def check_rows(rows: list[str], where: str = "rows") -> list[str]:
    """`rows` unchanged, or a clear error naming the unknown rows (trainers included) and the known ones."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"{where}: unknown row/trainer(s) {unknown}; known: {list(ROWS)}")
    return rows


def load_guide_config(path: str | Path) -> tuple[list[Regime], list[int], list[str]]:
    """Regimes, seeds and rows of a `guide` YAML (see configs/paper_mnist.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"guide config {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"seeds", "rows", "lr_grid", "regimes"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected seeds, rows, lr_grid, regimes")
    rows = check_rows(list(raw.get("rows", ROWS)), str(path))
    seeds = list(raw.get("seeds", range(10)))
    known = set(Regime.__dataclass_fields__)
    regimes = []
    for name, settings in (raw.get("regimes") or {}).items():
        bad = set(settings) - known
        if bad:
            raise ValueError(f"{path}: regime {name!r} has unknown key(s) {sorted(bad)}; expected some of {sorted(known - {'name'})}")
        regimes.append(Regime(name=name, **{"lr_grid": raw.get("lr_grid"), **settings}))  # a regime's own grid wins
    if not regimes:
        raise ValueError(f"{path}: no regimes")
    return regimes, seeds, rows


def zoo_env_kwargs(regime: Regime, resolution: float = 0.15) -> dict[str, Any]:
    """GradInstructor-v0 arguments whose episodes are whole training runs of `regime`."""
    n_train = len(load_dataset(regime.dataset).train)
    total = regime.epochs * (n_train // regime.batch_size)
    return {"dataset": regime.dataset, "hidden_sizes": regime.hidden_sizes, "activation": regime.activation,
            "lr": regime.lr, "batch_size": regime.batch_size, "resolution": resolution,
            "steps_per_action": max(1, total // ZOO_EPISODE_STEPS), "episode_length": ZOO_EPISODE_STEPS,
            "eval_samples": 0}


def regime_enn(regime: Regime, seed: int = 0) -> ENN:
    """The regime's ENN: loaded from a file, or a supervised ENN fitted to a zoo of this regime."""
    from agents.supervised_enn import fit_supervised_enn, snapshot_zoo

    if "path" in regime.enn:
        return ENN.load(regime.enn["path"])
    env_kwargs = zoo_env_kwargs(regime)
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
    data = load_dataset(regime.dataset)
    mlp = BatchedMLP(regime.layer_sizes, len(seeds), activation=regime.activation)
    sampler = MinibatchSampler(len(data.train), regime.batch_size, len(seeds))
    init = "he" if row.endswith("he") else "default"
    for i, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(int(seed))
        mlp.initialize(i, generator, init)
        sampler.reset(i, generator)
    steps_per_epoch = len(data.train) // regime.batch_size
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


def run_guide(config_path: str | Path, out: Path, wandb_mode: str = "offline", seeds: list[int] | None = None,
              rows: list[str] | None = None, regime_names: list[str] | None = None) -> str:
    """Run every regime of a guide config; write results.csv, results.md, PNGs and a W&B run.

    Also kept: each regime's ENN (`enn_<regime>.pt`) and each row's trained MLPs
    (`mlps/<regime>_<row>.pt`, a `BatchedMLP` checkpoint), e.g. for `train_agents.py inspect`.

    `seeds`, `rows` and `regime_names` narrow or override the config's (e.g. to add baseline rows
    to an earlier run's table: a row depends only on its regime and the seeds, never on which
    other rows ran).

    :return: the Markdown report.
    """
    from agents import tracking
    from agents.benchmark import welch_p
    from agents.enn_quality import QUALITY_SEED_BASE, collect_snapshots, quality_by_stage
    from agents.report import atomic_write_text, markdown_table, mean_std, write_bars

    regimes, config_seeds, config_rows = load_guide_config(config_path)
    seeds = list(seeds or config_seeds)
    rows = check_rows(list(rows or config_rows), "--rows")
    if regime_names:
        unknown = sorted(set(regime_names) - {r.name for r in regimes})
        if unknown:
            raise ValueError(f"--regimes: unknown regime(s) {unknown}; {config_path} has {[r.name for r in regimes]}")
        regimes = [r for r in regimes if r.name in regime_names]
    out.mkdir(parents=True, exist_ok=True)
    run = tracking.start_run(out, wandb_mode, name=f"guide-{out.name}", job_type="guide",
                             config={"config": str(config_path), "seeds": seeds, "rows": rows,
                                     "regimes": [vars(r) for r in regimes]})
    frames, sections, bars = [], [], {}
    try:
        for regime in regimes:
            enn = None
            quality_line = ""
            if any(r.startswith("enn") for r in rows):
                print(f"== {regime.name}: building the ENN ({regime.enn})", flush=True)
                enn = regime_enn(regime)
                sizes = regime.layer_sizes
                enn.check_shapes([(o, i) for i, o in zip(sizes[:-1], sizes[1:])])
                enn.save(out / f"enn_{regime.name}.pt")
                quality = quality_by_stage(enn, collect_snapshots(zoo_env_kwargs(regime, enn.resolution),
                                                                  [QUALITY_SEED_BASE + k for k in range(16)]))
                quality_line = (f"ENN ranking quality on 16 unseen training runs of this regime: Kendall tau "
                                f"{quality['all']['kendall_tau']:.2f} (late training {quality['late']['kendall_tau']:.2f}).")
                weight = tuned_guidance_weight(regime, enn)
                quality_line += f" Guidance weight {weight:g}" + (
                    f", chosen from {regime.guidance_weight} on validation accuracy of seeds {list(TUNING_SEEDS)}."
                    if isinstance(regime.guidance_weight, list) else ".")
            results = {}
            for row in rows:
                lr, lr_scores = tuned_lr(regime, row)
                if lr_scores:
                    print(f"== {regime.name}: {ROW_NAMES[row]}: validation accuracy per lr "
                          + ", ".join(f"{k:g}: {100 * v:.2f}" for k, v in lr_scores.items()) + f" -> lr {lr:g}", flush=True)
                print(f"== {regime.name}: {ROW_NAMES[row]}, {len(seeds)} seeds x {regime.epochs} epochs", flush=True)
                results[row] = train_row(regime, row, seeds, enn, weight if enn is not None else 0.0, lr)
                results[row].mlp.save(out / "mlps" / f"{regime.name}_{row}.pt", dataset=regime.dataset, seeds=seeds,
                                      regime=regime.name, row=row, lr=lr)
                frame = results[row].per_seed.assign(regime=regime.name, row=row, lr=lr,
                                                     seconds_per_epoch=results[row].seconds_per_epoch)
                frames.append(frame)
            bp = results["bp"].per_seed if "bp" in results else None
            table_rows = []
            for row, result in results.items():
                s = result.per_seed
                gap = s.train_accuracy - s.test_accuracy
                delta = "—" if bp is None or row == "bp" else f"{100 * (s.test_accuracy.mean() - bp.test_accuracy.mean()):+.2f}"
                p = float("nan") if bp is None or row == "bp" else welch_p(s.test_accuracy, bp.test_accuracy)
                table_rows.append([ROW_NAMES[row], mean_std(s.test_accuracy, digits=2), mean_std(s.train_accuracy, digits=2),
                                   mean_std(gap, digits=2), delta, "—" if np.isnan(p) else f"{p:.3g}",
                                   f"{result.lr:g}", f"{result.seconds_per_epoch:.3g}"])
                bars.setdefault(regime.name, {})[ROW_NAMES[row]] = s.test_accuracy.to_numpy()
                if result.guidance is not None and result.guidance.history and row == "enn":
                    result.guidance.write_history(out / f"guidance_ratio_{regime.name}")
            arch = "-".join(map(str, regime.layer_sizes))
            header = (f"### {regime.dataset}, regime `{regime.name}`: {arch} MLP, SGD lr {regime.lr}, batch "
                      f"{regime.batch_size}, {regime.epochs} epoch(s), {len(seeds)} seeds"
                      + (f" ({regime.note})" if regime.note else ""))
            table = markdown_table(["row", "test acc (%)", "train acc (%)", "train − test (points)",
                                    "Δ test vs BP (points)", "Welch p vs BP", "lr", "s / epoch"], table_rows)
            lr_line = ""
            if regime.lr_grid and set(rows) & set(LR_TUNED_ROWS):
                lr_line = (f"Learning rates of the lr-tuned rows chosen from {regime.lr_grid} on validation accuracy "
                           f"of seeds {list(TUNING_SEEDS)}.")
            sections.append("\n\n".join(x for x in [header, table, quality_line, lr_line] if x))
        report = "\n\n".join(sections)
        results_frame = pd.concat(frames, ignore_index=True)
        atomic_write_text(out / "results.csv", results_frame.to_csv(index=False))
        atomic_write_text(out / "results.md", report + "\n")
        png = write_bars(out / "test_accuracy", bars, ylabel="test accuracy")
        import wandb

        run.log({"results": wandb.Table(dataframe=results_frame)})
        tracking.log_image(run, "test_accuracy", png)
    finally:
        run.finish()
    return report
