"""`grad-instructor reevaluate`: a finished benchmark's agents judged on another env, out of their distribution.

Every finished cell of a benchmark folder (its `model.zip` and `config.yaml`) is evaluated again, with
its own env arguments changed by `env_changes` (a regime distribution twice as wide in learning rate,
``{randomize_regime: wide-lr}``, say), on the same unseen MLP seeds as before, beside the task's
references re-run and re-tuned on the changed env: what a practitioner who tuned a learning rate for
the new MLPs would have. The cells run on the benchmark's engines (resumable), and the tables are the
benchmark's own (`agents.experiments.benchmark.tabulate`), training columns copied from the source.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.config_files import load_yaml
from agents.experiments.benchmark import BenchmarkResult, cell_path, tabulate
from agents.experiments.competitor_tables import FOLDER as COMPETITOR_FOLDER
from agents.experiments.competitor_tables import competitor_rows
from agents.experiments.competitors import COMPETITORS, check_competitors
from agents.experiments.engine import Cell, EngineOptions, run_matrix
from agents.outputs import OUTPUTS
from agents.report import atomic_write_text
from agents.rl.evaluation import evaluate_against_references
from agents.rl.export import load_agent
from agents.rl.tasks import task_named
from agents.seeds import evaluation_seeds
from gi_envs.task import EnvConfig

MARK = "reevaluated_with"  # the key of eval.json saying which env changes a cell was judged under


def source_cells(source: Path) -> list[tuple[str, str, int]]:
    """(data set, algorithm, seed) of every finished cell of the benchmark in `source`."""
    cells = []
    for eval_path in sorted(source.glob("*/*/seed*/eval.json")):
        folder = eval_path.parent
        if (folder / "model.zip").is_file():
            cells.append((folder.parent.parent.name, folder.parent.name, int(folder.name.removeprefix("seed"))))
    if not cells:
        raise FileNotFoundError(f"{source} holds no finished benchmark cell (DATASET/ALGO/seedN/ with eval.json and "
                                "model.zip)")
    return cells


@dataclass
class ReevaluateCell:
    """The work of one cell: evaluate the source cell's agent on the changed env; write eval.json and copy the
    training record (monitor.csv, the training fields of eval.json)."""

    source: Path
    env_changes: dict
    eval_episodes: int | None

    def __call__(self, cell: Cell, folder: Path) -> None:
        source = self.source / cell.path
        model, algo, env_kwargs = load_agent(source / "model.zip")
        config = load_yaml((source / "config.yaml").read_text(), str(source / "config.yaml"))
        task = task_named(config.get("task", "default"))
        before = json.loads((source / "eval.json").read_text())
        episodes = self.eval_episodes or len(before["eval_seeds"])
        seed = int(config["seed"])
        changed = {**env_kwargs, **self.env_changes}
        judged = evaluate_against_references(model, changed, evaluation_seeds(seed, episodes), algo,
                                             task.tuning_episodes, task.oracle, task.tune_on)
        record = {**{k: before[k] for k in ("train_wall_seconds", "env_step_seconds", "timesteps")},
                  "eval_seeds": evaluation_seeds(seed, episodes), "env_kwargs": changed, MARK: self.env_changes,
                  "policies": judged.summaries(), "reference_settings": judged.settings,
                  "eval_seconds_per_mlp": judged.agent_seconds_per_mlp,
                  "target_val_accuracy": None if judged.target is None else judged.target.tolist()}
        atomic_write_text(folder / "eval.json", json.dumps(record, indent=2))
        shutil.copy(source / "monitor.csv", folder / "monitor.csv")


def reevaluate_benchmark(source: Path, out: Path, env_changes: dict, eval_episodes: int | None = None,
                         options: EngineOptions | None = None, competitors: Sequence[str] | None = None,
                         competitor_tuning: int | None = None) -> BenchmarkResult:
    """Judge every finished cell of the benchmark in `source` on its env changed by `env_changes`; write the
    benchmark's tables to `out`, with the competitors (default: every entry of `COMPETITORS`; ``[]``: none) run
    and tuned on the changed env, as the references are (`run_benchmark`'s `competitors`)."""
    EnvConfig.from_kwargs(**env_changes)  # a bad change fails before any work
    check_competitors(list(COMPETITORS if competitors is None else competitors))
    cells = source_cells(source)
    datasets = sorted({d for d, _, _ in cells})
    algos = list(dict.fromkeys(a for _, a, _ in cells))
    seeds = sorted({s for _, _, s in cells})
    tasks = {load_yaml((source / d / a / f"seed{s}" / "config.yaml").read_text(), "config.yaml").get("task", "default")
             for d, a, s in cells}
    if len(tasks) != 1:
        raise ValueError(f"{source} mixes tasks {sorted(tasks)}; reevaluate one task at a time")
    task = tasks.pop()

    def is_finished(cell: Cell, folder: Path) -> bool:
        try:
            return json.loads((folder / "eval.json").read_text()).get(MARK) == env_changes
        except (OSError, ValueError):
            return False

    matrix = [Cell((d, a, s), cell_path(d, a, s)) for d, a, s in cells]
    outcome = run_matrix(matrix, ReevaluateCell(source, env_changes, eval_episodes), out, is_finished,
                         options=options, command="reevaluate", output=OUTPUTS["reevaluate"])
    failed = {cell.key for cell in outcome.failed}
    episodes = eval_episodes or task_named(task).eval_episodes
    tuning = competitor_tuning or task_named(task).tuning_episodes
    rows_of, env_of = {}, {}
    for dataset in datasets:
        algo, seed = next((a, s) for d, a, s in cells if d == dataset)
        config = load_yaml((source / cell_path(dataset, algo, seed) / "config.yaml").read_text(), "config.yaml")
        env_of[dataset] = {**config.get("env_kwargs", {}), **env_changes}
        rows_of[dataset] = competitor_rows(dataset, env_of[dataset], seeds, episodes, tuning, competitors,
                                           out / dataset / COMPETITOR_FOLDER)
    results, table, verdict, _ = tabulate(out, datasets, algos, seeds, failed, task, episodes, rows_of, env_of)
    return BenchmarkResult(results, table, verdict, outcome)
