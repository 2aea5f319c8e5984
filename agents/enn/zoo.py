"""A model zoo: many training runs with random regimes, snapshotted along the way.

An ENN is only useful if it ranks MLPs it never saw, trained however their owner trained them. A zoo
gives it such MLPs: every run draws its own `Regime` (learning rate, init scale, weight decay, share
of the training data, batch size and, in the default distribution, the optimizer) from a
`RegimeDistribution`, from its own seed, and is snapshotted at several stages of training. Each
snapshot keeps the weights, biases, validation and test accuracy and its stage; each run keeps its
regime and seed. Fit and held-out sets are split by run, never by snapshot, so no held-out MLP's
earlier or later self is ever fitted on.

Runs train in the one training core (`gi_envs.training.Training`), the env's: a zoo run is an env
episode of the same MLP seed and regime under the zero action (a test checks it). Runs of one batch
size train together, so that no batch is padded.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.seeds import zoo_family_run_seeds, zoo_run_seeds
from gi_envs.datasets import Dataset, load_dataset
from gi_envs.files import first_sentence, is_partial, replacing
from gi_envs.memory import FLOAT_BYTES, check_memory
from gi_envs.regime import REGIME_DISTRIBUTIONS, Regime, RegimeDistribution
from gi_envs.spec import MLPSpec
from gi_envs.task_family import TaskDistribution
from gi_envs.training import Training

ZOO_FORMAT = "grad-instructor-zoo/2"
RUN_OVERHEAD_BYTES = 2_000  # a run's seed, regime and per-snapshot records beside its weights
# what reading a foreign, truncated or half-written NPZ raises
UNREADABLE = (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
REGIME_FIELDS = ("lr", "batch_size", "init_scale", "weight_decay", "data_share", "optimizer")
TARGETS = ("current", "final")  # what an ENN fitted on a zoo predicts: see `Zoo.targets`
DEFAULT_ZOO_DISTRIBUTION = "any-optimizer"


@dataclass(frozen=True)
class ZooSpec:
    """What a zoo holds and how its runs are drawn.

    :param mlp: the architecture every run trains.
    :param runs: number of training runs.
    :param steps: minibatch steps per run.
    :param stages: snapshot points, as shares of `steps` (0 is the initialisation).
    :param distribution: where each run's regime comes from (default: ``REGIME_DISTRIBUTIONS["any-optimizer"]``,
        the env's default distribution with the optimizer drawn as well).
    :param held_out: share of the runs held out from fitting.
    :param seed: draws the runs' seeds (`agents.seeds.zoo_run_seeds`) and the split.
    :param member: this zoo is member (shape) `member` of the shape-family zoo of `seed`
        (`agents.enn.zoo_family`): its runs draw their seeds from that family's own block
        (`agents.seeds.zoo_family_run_seeds`). ``None``: a plain zoo.
    :param tasks: this zoo is member `member` of a task-family zoo (`agents.enn.task_zoo`): the runs of one data set
        and shape among runs that each drew their whole task from `tasks`; their seeds, regimes and split come from
        that zoo's plan (`TaskZooSpec.members`), `distribution` is only their regimes' law, and `runs` may be 1.
    """

    mlp: MLPSpec = field(default_factory=MLPSpec)
    runs: int = 400
    steps: int = 1000
    stages: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    distribution: RegimeDistribution = field(default_factory=lambda: REGIME_DISTRIBUTIONS[DEFAULT_ZOO_DISTRIBUTION])
    held_out: float = 0.2
    seed: int = 0
    member: int | None = None
    tasks: TaskDistribution | None = None

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected {expected}")

        planned = self.tasks is not None  # a task-family zoo's member: its plan splits the runs, maybe one of them
        if not isinstance(self.runs, int) or self.runs < (1 if planned else 2):
            fail("runs", "a positive integer" if planned else "an integer of at least 2 (fit and held-out runs)")
        if not isinstance(self.steps, int) or self.steps < 1:
            fail("steps", "a positive integer")
        if not self.stages or sorted(set(self.stages)) != list(self.stages) or not 0 <= self.stages[0] <= \
                self.stages[-1] <= 1:
            fail("stages", "increasing shares of the training steps in [0, 1]")
        if not isinstance(self.distribution, RegimeDistribution):
            fail("distribution", "a RegimeDistribution")
        if not 0 < self.held_out < 1 or not planned and round(self.held_out * self.runs) < 1:
            fail("held_out", "a share in (0, 1) that holds out at least one run")
        if planned and not isinstance(self.tasks, TaskDistribution):
            fail("tasks", "a TaskDistribution or None")

    def run_seeds(self) -> list[int]:
        """Each run's seed (its MLP, regime and data order)."""
        if self.tasks is not None:
            raise ValueError("the runs of a task-family zoo's member come from its TaskZooSpec's plan: train it with "
                             "agents.enn.task_zoo.train_task_zoo")
        if self.member is None:
            return zoo_run_seeds(self.seed, self.runs)
        return zoo_family_run_seeds(self.seed, self.member, self.runs)

    @property
    def snapshot_steps(self) -> list[int]:
        """The distinct steps at which each run is snapshotted: `stages` of `steps`, rounded (a short run has
        fewer snapshots than stages)."""
        return sorted({round(stage * self.steps) for stage in self.stages})

    def to_dict(self) -> dict:
        return {"mlp": self.mlp.to_dict(), "runs": self.runs, "steps": self.steps, "stages": list(self.stages),
                "distribution": self.distribution.to_dict(), "held_out": self.held_out, "seed": self.seed,
                **({} if self.member is None else {"member": self.member}),
                **({} if self.tasks is None else {"tasks": self.tasks.to_dict()})}

    @classmethod
    def from_dict(cls, raw: dict) -> ZooSpec:
        return cls(mlp=MLPSpec.from_dict(raw["mlp"]), runs=int(raw["runs"]), steps=int(raw["steps"]),
                   stages=tuple(raw["stages"]), distribution=RegimeDistribution.from_dict(raw["distribution"]),
                   held_out=float(raw["held_out"]), seed=int(raw["seed"]),
                   member=None if raw.get("member") is None else int(raw["member"]),
                   tasks=None if raw.get("tasks") is None else TaskDistribution.from_dict(raw["tasks"]))


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
    regimes: dict[str, np.ndarray]  # regime field -> (runs,) values (`REGIME_FIELDS`)
    seeds: np.ndarray  # (runs,) each run's seed
    held_out_runs: np.ndarray  # (runs,) bool

    @property
    def held_out(self) -> np.ndarray:
        """(M,) whether each snapshot belongs to a held-out run."""
        return self.held_out_runs[self.run]

    def __len__(self) -> int:
        return len(self.run)

    def select_runs(self, runs: np.ndarray) -> Zoo:
        """The same zoo holding only the snapshots of `runs` (run indices and the split unchanged): nested fit sets
        for a curve of ranking quality against zoo size."""
        keep = np.isin(self.run, runs)
        return Zoo(self.spec, [w[keep] for w in self.weights], [b[keep] for b in self.biases], self.val_accuracy[keep],
                   self.test_accuracy[keep], self.stage[keep], self.run[keep], self.regimes, self.seeds,
                   self.held_out_runs)

    def regime(self, run: int) -> Regime:
        """The regime run `run` trained with."""
        return Regime(**{k: v[run].item() for k, v in self.regimes.items()})

    @property
    def optimizer(self) -> np.ndarray:
        """(M,) the optimizer of each snapshot's run."""
        return self.regimes["optimizer"][self.run]

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
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)} | {f"b{i}": b for i, b in enumerate(self.biases)}
        arrays |= {f"regime_{k}": np.asarray(v) if k != "optimizer" else np.asarray(v, dtype=str)
                   for k, v in self.regimes.items()}
        with replacing(Path(path)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, format=np.array(ZOO_FORMAT), spec=np.array(json.dumps(self.spec.to_dict())),
                                    val_accuracy=self.val_accuracy, test_accuracy=self.test_accuracy,
                                    stage=self.stage, run=self.run, seeds=self.seeds,
                                    held_out_runs=self.held_out_runs, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Zoo:
        """Read a zoo written by `save`; a clear error for anything else, and for zoos of an older format."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no zoo at {path}")
        try:
            data = np.load(path, allow_pickle=False)
            found = str(data["format"])
        except UNREADABLE as error:
            raise not_a_zoo(path, error) from None
        if found == "grad-instructor-zoo/1":
            raise ValueError(f"{path} is a zoo of format 1: its runs were trained by plain SGD outside the training "
                             "core, which ENNs and the env no longer share; make it again with `train_zoo` "
                             "(the same ZooSpec: data set, hidden sizes, runs and seed)")
        try:
            if found != ZOO_FORMAT:
                raise ValueError(f"format {found!r}, expected {ZOO_FORMAT!r}")
            spec = ZooSpec.from_dict(json.loads(str(data["spec"])))
            n_layers = len(spec.mlp.layer_shapes)
            regimes = {k: data[f"regime_{k}"] for k in REGIME_FIELDS}
            return cls(spec, [data[f"w{i}"] for i in range(n_layers)], [data[f"b{i}"] for i in range(n_layers)],
                       data["val_accuracy"], data["test_accuracy"], data["stage"], data["run"], regimes,
                       data["seeds"], data["held_out_runs"])
        except UNREADABLE as error:
            raise not_a_zoo(path, error) from None


def not_a_zoo(path: Path, error: BaseException) -> ValueError:
    """The one-line error for a file `Zoo.load` cannot read: foreign, truncated or half-written."""
    detail = first_sentence(error, limit=160)
    hint = "; it is the half-written file of a killed `train_zoo`: run it again" if is_partial(path) else ""
    return ValueError(f"{path} is not a zoo written by `Zoo.save` (`train_zoo`), or it is truncated or damaged "
                      f"({detail}){hint}")


def held_out_split(runs: int, share: float, seed: int) -> np.ndarray:
    """(runs,) bool: the runs a zoo of `seed` holds out from fitting, round(`share` * `runs`) of them."""
    held_out_runs = np.zeros(runs, dtype=bool)
    held_out_runs[np.random.default_rng(seed).choice(runs, round(share * runs), replace=False)] = True
    return held_out_runs


def check_zoo_memory(spec: ZooSpec) -> None:
    """Refuse the zoo of `spec` before any work (`MemoryRefused`, naming the estimate) when this machine cannot
    hold it."""
    check_memory(spec.runs * (len(spec.snapshot_steps) * spec.mlp.n_parameters * FLOAT_BYTES * 2 + RUN_OVERHEAD_BYTES),
                 f"a zoo of {spec.runs:,} runs x {len(spec.snapshot_steps)} snapshots of {spec.mlp.n_parameters:,} "
                 "parameters (stored, then joined)")


def train_zoo(spec: ZooSpec, data_dir: str | None = None, progress: bool = True) -> Zoo:
    """Train every run of `spec` and collect its snapshots (see the module docstring)."""
    check_zoo_memory(spec)
    data = load_dataset(spec.mlp.dataset, data_dir=data_dir)
    spec.distribution.check_fits(len(data.train))
    seeds = np.array(spec.run_seeds(), dtype=np.int64)
    regimes = [spec.distribution.regime_of(int(s)) for s in seeds]
    bar = tqdm(total=spec.runs * spec.steps, unit="step", unit_scale=True, disable=not progress,
               desc=f"zoo of {spec.runs} {spec.mlp.dataset} runs")
    with bar:
        return train_runs(spec, data, seeds, regimes, held_out_split(spec.runs, spec.held_out, spec.seed), bar)


def train_runs(spec: ZooSpec, data: Dataset, seeds: np.ndarray, regimes: list[Regime], held_out_runs: np.ndarray,
               bar: tqdm) -> Zoo:
    """The zoo of `spec`'s runs of the given seeds, regimes and split, trained in the training core (runs of one
    batch size together) and snapshotted at `spec.snapshot_steps`; `bar` counts their steps."""
    snapshot_steps = spec.snapshot_steps
    parts: list[dict] = []
    batch_sizes = np.array([r.batch_size for r in regimes])
    for batch_size in np.unique(batch_sizes):
        runs = np.flatnonzero(batch_sizes == batch_size)
        parts.append(_train_group(spec, data, runs, seeds, regimes, snapshot_steps, bar))
    order = np.argsort(np.concatenate([p["run"] for p in parts]) * len(snapshot_steps)
                       + np.concatenate([p["stage_index"] for p in parts]), kind="stable")
    n_layers = len(spec.mlp.layer_shapes)
    columns = {k: np.array([getattr(r, k) for r in regimes]) for k in REGIME_FIELDS}
    return Zoo(spec=spec,
               weights=[np.concatenate([p["weights"][i] for p in parts])[order] for i in range(n_layers)],
               biases=[np.concatenate([p["biases"][i] for p in parts])[order] for i in range(n_layers)],
               val_accuracy=np.concatenate([p["val"] for p in parts])[order],
               test_accuracy=np.concatenate([p["test"] for p in parts])[order],
               stage=np.concatenate([p["stage"] for p in parts])[order],
               run=np.concatenate([p["run"] for p in parts])[order],
               regimes=columns, seeds=np.asarray(seeds, dtype=np.int64), held_out_runs=held_out_runs)


def _train_group(spec: ZooSpec, data: Dataset, runs: np.ndarray, seeds: np.ndarray, regimes: list[Regime],
                 snapshot_steps: list[int], bar: tqdm) -> dict:
    """Train `runs` (of one batch size) together in the training core; snapshot them at `snapshot_steps`."""
    n = len(runs)
    training = Training(spec.mlp, data, n)
    for i, run in enumerate(runs):
        training.reset(i, int(seeds[run]), regimes[run])
    mlp = training.mlp
    out: dict = {"weights": [[] for _ in mlp.weights], "biases": [[] for _ in mlp.biases], "val": [], "test": [],
                 "stage": [], "run": [], "stage_index": []}

    def snapshot(step: int) -> None:
        _, val = training.evaluate(data.val)
        _, test = training.evaluate(data.test)
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
        training.step()
        bar.update(n)
    return {"weights": [np.concatenate(w) for w in out["weights"]],
            "biases": [np.concatenate(b) for b in out["biases"]],
            **{k: np.concatenate(out[k]) for k in ("val", "test", "stage", "run", "stage_index")}}
