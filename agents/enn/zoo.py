"""A model zoo: many plain-SGD training runs with random hyper-parameters, snapshotted along the way.

An ENN is only useful if it ranks MLPs it never saw, trained however their owner trained them. A zoo
gives it such MLPs: every run draws its own learning rate (log-uniform over three decades), init
scale, weight decay (zero in half the runs), share of the training data and batch size, and is
snapshotted at several stages of training. Each snapshot keeps the weights, biases, validation and
test accuracy, its stage and its run's hyper-parameters. Fit and held-out sets are split by run,
never by snapshot, so no held-out MLP's earlier or later self is ever fitted on.

All runs of one batch size train together in one `BatchedMLP`; per-run learning rates and weight
decays act on each run's own gradient, and each run draws its minibatches (with replacement) from
its own share of the training split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gi_envs.datasets import load_dataset
from gi_envs.files import replacing
from gi_envs.spec import MLPSpec

ZOO_FORMAT = "grad-instructor-zoo/1"
BATCH_SIZES = (16, 32, 64, 128)
HYPERPARAMETERS = ("lr", "init_scale", "weight_decay", "data_share", "batch_size")
TARGETS = ("current", "final")  # what an ENN fitted on a zoo predicts: see `Zoo.targets`


@dataclass(frozen=True)
class ZooSpec:
    """What a zoo holds and how its runs are drawn.

    :param mlp: the architecture every run trains.
    :param runs: number of training runs.
    :param steps: SGD steps per run.
    :param stages: snapshot points, as shares of `steps` (0 is the initialisation).
    :param lr_range: learning rates are log-uniform in this range.
    :param init_scale_range: PyTorch's default init times a factor uniform in this range.
    :param weight_decay_range: log-uniform in this range for half the runs, zero for the others.
    :param data_share_range: share of the training split a run sees, uniform in this range.
    :param held_out: share of the runs held out from fitting.
    :param seed: draws the hyper-parameters, inits, data shares, minibatches and the split.
    """

    mlp: MLPSpec = field(default_factory=MLPSpec)
    runs: int = 400
    steps: int = 1000
    stages: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    lr_range: tuple[float, float] = (1e-3, 1.0)
    init_scale_range: tuple[float, float] = (0.25, 2.0)
    weight_decay_range: tuple[float, float] = (1e-5, 1e-2)
    data_share_range: tuple[float, float] = (0.1, 1.0)
    held_out: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected {expected}")

        if not isinstance(self.runs, int) or self.runs < 2:
            fail("runs", "an integer >= 2 (fit and held-out runs)")
        if not isinstance(self.steps, int) or self.steps < 1:
            fail("steps", "a positive integer")
        if not self.stages or sorted(set(self.stages)) != list(self.stages) or not 0 <= self.stages[0] <= \
                self.stages[-1] <= 1:
            fail("stages", "increasing shares of the training steps in [0, 1]")
        for name, low in (("lr_range", 0.0), ("init_scale_range", 0.0), ("weight_decay_range", 0.0),
                          ("data_share_range", 0.0)):
            a, b = getattr(self, name)
            if not low < a <= b:
                fail(name, f"(low, high) with {low} < low <= high")
        if self.data_share_range[1] > 1:
            fail("data_share_range", "shares in (0, 1]")
        if not 0 < self.held_out < 1 or round(self.held_out * self.runs) < 1:
            fail("held_out", "a share in (0, 1) that holds out at least one run")


def value_at_end(groups: np.ndarray, progress: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(M,) for each item, the value of the item of its group (run, episode) that is furthest along."""
    ids, inverse = np.unique(groups, return_inverse=True)
    last = np.empty(len(ids), dtype=np.asarray(values).dtype)
    order = np.argsort(progress, kind="stable")  # the last write per group is its furthest item
    last[inverse[order]] = np.asarray(values)[order]
    return last[inverse]


@dataclass
class Zoo:
    """Snapshots of a zoo's runs: index i is one MLP at one stage of one run."""

    spec: ZooSpec
    weights: list[np.ndarray]  # per layer (M, out, in)
    biases: list[np.ndarray]  # per layer (M, out)
    val_accuracy: np.ndarray  # (M,)
    test_accuracy: np.ndarray  # (M,)
    stage: np.ndarray  # (M,) share of the run's steps done
    run: np.ndarray  # (M,) run index
    hyperparameters: dict[str, np.ndarray]  # name -> (runs,)
    held_out_runs: np.ndarray  # (runs,) bool

    @property
    def held_out(self) -> np.ndarray:
        """(M,) whether each snapshot belongs to a held-out run."""
        return self.held_out_runs[self.run]

    def __len__(self) -> int:
        return len(self.run)

    @property
    def final_val_accuracy(self) -> np.ndarray:
        """(M,) the validation accuracy each snapshot's run ends with."""
        return value_at_end(self.run, self.stage, self.val_accuracy)

    def targets(self, target: str) -> np.ndarray:
        """What an ENN learns to predict: ``current`` (the snapshot's own validation accuracy) or
        ``final`` (the accuracy its run ends with, a trainability prior)."""
        if target not in TARGETS:
            raise ValueError(f"target={target!r} is not known; expected one of {list(TARGETS)}")
        return self.val_accuracy if target == "current" else self.final_val_accuracy

    def save(self, path: str | Path) -> None:
        """Write the zoo as one NPZ (arrays and a JSON spec, no pickle), atomically."""
        spec = asdict(self.spec)
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)} | {f"b{i}": b for i, b in enumerate(self.biases)}
        arrays |= {f"hp_{k}": v for k, v in self.hyperparameters.items()}
        with replacing(Path(path)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, format=np.array(ZOO_FORMAT), spec=np.array(json.dumps(spec)),
                                    val_accuracy=self.val_accuracy, test_accuracy=self.test_accuracy,
                                    stage=self.stage, run=self.run, held_out_runs=self.held_out_runs, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Zoo:
        """Read a zoo written by `save`; a clear error for anything else."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no zoo at {path}")
        try:
            data = np.load(path, allow_pickle=False)
            if str(data["format"]) != ZOO_FORMAT:
                raise ValueError(f"format {str(data['format'])!r}")
            raw = json.loads(str(data["spec"]))
            spec = ZooSpec(**{**raw, "mlp": MLPSpec(**{**raw["mlp"], "hidden_sizes": tuple(raw["mlp"]["hidden_sizes"])}),
                              "stages": tuple(raw["stages"]), "lr_range": tuple(raw["lr_range"]),
                              "init_scale_range": tuple(raw["init_scale_range"]),
                              "weight_decay_range": tuple(raw["weight_decay_range"]),
                              "data_share_range": tuple(raw["data_share_range"])})
            n_layers = len(spec.mlp.layer_shapes)
            return cls(spec, [data[f"w{i}"] for i in range(n_layers)], [data[f"b{i}"] for i in range(n_layers)],
                       data["val_accuracy"], data["test_accuracy"], data["stage"], data["run"],
                       {k: data[f"hp_{k}"] for k in HYPERPARAMETERS}, data["held_out_runs"])
        except (KeyError, ValueError, TypeError, OSError) as error:
            raise ValueError(f"{path} is not a zoo written by `grad-instructor zoo` ({error})") from None


def draw_hyperparameters(spec: ZooSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each run's learning rate, init scale, weight decay, data share and batch size."""
    n = spec.runs

    def log_uniform(low: float, high: float, size: int) -> np.ndarray:
        return np.exp(rng.uniform(math.log(low), math.log(high), size))

    decay = np.where(rng.random(n) < 0.5, 0.0, log_uniform(*spec.weight_decay_range, n))
    return {"lr": log_uniform(*spec.lr_range, n), "init_scale": rng.uniform(*spec.init_scale_range, n),
            "weight_decay": decay, "data_share": rng.uniform(*spec.data_share_range, n),
            "batch_size": rng.choice(BATCH_SIZES, n)}


def train_zoo(spec: ZooSpec, data_dir: str | None = None, progress: bool = True) -> Zoo:
    """Train every run of `spec` and collect its snapshots (see the module docstring)."""
    data = load_dataset(spec.mlp.dataset, data_dir=data_dir)
    rng = np.random.default_rng(spec.seed)
    hp = draw_hyperparameters(spec, rng)
    held_out_runs = np.zeros(spec.runs, dtype=bool)
    held_out_runs[rng.choice(spec.runs, round(spec.held_out * spec.runs), replace=False)] = True
    snapshot_steps = sorted({round(stage * spec.steps) for stage in spec.stages})
    parts: list[dict] = []
    bar = tqdm(total=spec.runs * spec.steps, unit="step", unit_scale=True, disable=not progress,
               desc=f"zoo of {spec.runs} {spec.mlp.dataset} runs")
    for batch_size in BATCH_SIZES:
        runs = np.flatnonzero(hp["batch_size"] == batch_size)
        if len(runs):
            parts.append(_train_group(spec, data, runs, hp, int(batch_size), snapshot_steps, bar))
    bar.close()
    order = np.argsort(np.concatenate([p["run"] for p in parts]) * len(snapshot_steps)
                       + np.concatenate([p["stage_index"] for p in parts]), kind="stable")
    n_layers = len(spec.mlp.layer_shapes)
    return Zoo(spec=spec,
               weights=[np.concatenate([p["weights"][i] for p in parts])[order] for i in range(n_layers)],
               biases=[np.concatenate([p["biases"][i] for p in parts])[order] for i in range(n_layers)],
               val_accuracy=np.concatenate([p["val"] for p in parts])[order],
               test_accuracy=np.concatenate([p["test"] for p in parts])[order],
               stage=np.concatenate([p["stage"] for p in parts])[order],
               run=np.concatenate([p["run"] for p in parts])[order],
               hyperparameters=hp, held_out_runs=held_out_runs)


def _train_group(spec: ZooSpec, data, runs: np.ndarray, hp: dict[str, np.ndarray], batch_size: int,
                 snapshot_steps: Sequence[int], bar: tqdm) -> dict:
    """Train the runs of one batch size together; snapshot them at `snapshot_steps`."""
    n = len(runs)
    mlp = spec.mlp.build(n)
    generator = torch.Generator().manual_seed(spec.seed * 1_000_003 + batch_size)
    n_train = len(data.train)
    with torch.no_grad():
        for i, run in enumerate(runs):
            mlp.initialize(i, generator, spec.mlp.init)
            for w in mlp.weights:
                w[i] *= float(hp["init_scale"][run])
    # each run's share of the training split: the first `size` indices of its own permutation
    sizes = torch.tensor([max(batch_size, round(hp["data_share"][run] * n_train)) for run in runs]).clamp(max=n_train)
    subsets = torch.stack([torch.randperm(n_train, generator=generator) for _ in runs])
    lr = torch.tensor(hp["lr"][runs], dtype=torch.float32)
    decay = torch.tensor(hp["weight_decay"][runs], dtype=torch.float32)
    out: dict = {"weights": [[] for _ in mlp.weights], "biases": [[] for _ in mlp.biases], "val": [], "test": [],
                 "stage": [], "run": [], "stage_index": []}

    def snapshot(step: int) -> None:
        _, val = mlp.evaluate(data.val.x, data.val.y)
        _, test = mlp.evaluate(data.test.x, data.test.y)
        finite = torch.stack([torch.isfinite(p.detach()).flatten(1).all(1) for p in mlp.parameters()]).all(0)
        val, test = torch.where(finite, val, 0.0), torch.where(finite, test, 0.0)  # a diverged MLP: accuracy 0
        for store, tensors in ((out["weights"], mlp.weights), (out["biases"], mlp.biases)):
            for layer, t in enumerate(tensors):
                store[layer].append(torch.nan_to_num(t.detach(), nan=0.0, posinf=1e6, neginf=-1e6).numpy().copy())
        out["val"].append(val.numpy())
        out["test"].append(test.numpy())
        out["stage"].append(np.full(n, step / spec.steps))
        out["run"].append(runs)
        out["stage_index"].append(np.full(n, snapshot_steps.index(step)))

    for step in range(spec.steps + 1):
        if step in snapshot_steps:
            snapshot(step)
        if step == spec.steps:
            break
        positions = (torch.rand(n, batch_size, generator=generator) * sizes[:, None]).long()
        idx = subsets.gather(1, positions)
        _, weight_grads, bias_grads = mlp.loss_and_gradients(data.train.x[idx], data.train.y[idx])
        with torch.no_grad():
            weight_grads = [(g + decay[:, None, None] * w) * lr[:, None, None] for g, w in zip(weight_grads, mlp.weights)]
            bias_grads = [g * lr[:, None] for g in bias_grads]
        mlp.apply_gradients(weight_grads, bias_grads, 1.0)  # each run's own learning rate is in its gradient
        bar.update(n)
    return {"weights": [np.concatenate(w) for w in out["weights"]], "biases": [np.concatenate(b) for b in out["biases"]],
            **{k: np.concatenate(out[k]) for k in ("val", "test", "stage", "run", "stage_index")}}
