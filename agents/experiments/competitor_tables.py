"""The competitors in tables: their rows in a benchmark's tables, and a table of their own beside the references.

`competitor_rows` runs competitors on exactly the evaluation MLPs of a benchmark's seeds (`evaluation_seeds(s,
episodes)`, the MLPs an agent trained with seed s is judged on), each tuned once per data set on the
reference-tuning MLPs, and keeps one small JSON per (competitor, seed) in the benchmark's folder
(``DATASET/competitors/KEY/seedS.json``): a benchmark's `resume` and `tables_only` reuse it, and a file made for
other MLPs, another env or another tuning is done again. `competitor_report` is the same rows without agents
(bench/competitors.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from agents.experiments.competitors import (
    COMPETITORS,
    Competitor,
    check_competitors,
    competitor_curves,
    tune_competitor,
)
from agents.report import atomic_write_text, markdown_table, mean_std, welch_p
from agents.rl.evaluation import summarize, updates_to_target
from agents.rl.rollout import RolloutCurves
from agents.seeds import evaluation_seeds
from gi_envs.task import EnvConfig

log = logging.getLogger(__name__)  # progress lines; the command line prints them (`agents.cli`)

COMPETITOR = "competitor"  # the `kind` of a competitor's row in a benchmark's results
FOLDER = "competitors"  # a benchmark's competitor files: DATASET/FOLDER/KEY/seedS.json


def competitor_env(env_kwargs: dict) -> dict:
    """The env a competitor trains in: the agents' own, reading its cheapest observation (an optimizer reads none):
    the weight image alone, or under a task family, whose MLPs have no one image shape, the training state."""
    return {**env_kwargs, "observation": ["training_state"] if env_kwargs.get("task_family") else ["weights"]}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _file_key(competitor: Competitor, env_kwargs: dict, eval_seeds: list[int], tuning: int) -> dict:
    """What a competitor file must have been made for to be reused."""
    return _jsonable({"competitor": competitor.name, "knob": competitor.knob, "default": competitor.default,
                      "grid": list(competitor.grid), "warmups": list(competitor.warmups), "env_kwargs": env_kwargs,
                      "eval_seeds": eval_seeds,
                      "tuning_episodes": tuning})


def competitor_rows(dataset: str, env_kwargs: dict, seeds: Sequence[int], episodes: int, tuning: int,
                    names: Sequence[str] | None = None, folder: Path | None = None, compute: bool = True,
                    targets: Mapping[int, Sequence[float]] | None = None) -> list[dict[str, Any]]:
    """One row per (competitor, seed): the mean final validation and test accuracy and return of its run on
    each of the seed's evaluation MLPs, the knob it ran at and its wall time per MLP; with `targets` (seed ->
    each MLP's target accuracy, the best constant's), the updates it needs to reach them.

    :param env_kwargs: the env of the agents' table (the competitors train in `competitor_env` of it).
    :param names: competitors (default: every entry of `COMPETITORS`), each package checked before any work.
    :param folder: where the rows are kept (``folder/KEY/seedS.json``) and reused from; None: kept nowhere.
    :param compute: False: only the rows `folder` holds for exactly these MLPs, whatever tuning they had (a
        table rebuilt, nothing run).
    """
    env_kwargs = competitor_env(env_kwargs)
    competitors = check_competitors(list(COMPETITORS if names is None else names)) if compute else \
        [COMPETITORS[n] for n in (COMPETITORS if names is None else names) if n in COMPETITORS]
    rows = []
    for competitor in competitors:
        knob = None
        for seed in seeds:
            eval_seeds = evaluation_seeds(seed, episodes)
            key = _file_key(competitor, env_kwargs, eval_seeds, tuning)
            path = folder / competitor.key / f"seed{seed}.json" if folder is not None else None
            kept = _read(path)
            if kept is not None and _same_run(kept.get("key"), key, tuning_too=compute):
                rows.append(_with_target(kept["row"], kept.get("val_accuracy"), (targets or {}).get(seed),
                                         env_kwargs))
                continue
            if not compute:
                continue
            with contextlib.redirect_stdout(io.StringIO()):  # D-Adaptation prints a line per optimizer it builds
                if knob is None:
                    log.info(f"{dataset}: tuning {competitor.name} on {tuning} reference-tuning MLPs")
                    knob = tune_competitor(env_kwargs, competitor, tuning)
                curves, seconds = competitor_curves(env_kwargs, competitor.make, knob.value, eval_seeds, knob.warmup)
            row = {"dataset": dataset, "policy": competitor.name, "seed": int(seed), **summarize(curves),
                   "setting": knob.describe(competitor), "eval_seconds_per_mlp": seconds, "kind": COMPETITOR}
            log.info(f"{dataset}: {competitor.name}, seed {seed}: {100 * row['final_val_accuracy']:.1f} % "
                     f"({row['setting']})")
            if path is not None:
                atomic_write_text(path, json.dumps({"key": key, "row": row,
                                                    "val_accuracy": np.round(curves.val_accuracy, 6).tolist()}))
            rows.append(_with_target(row, curves.val_accuracy, (targets or {}).get(seed), env_kwargs))
    return rows


RowsJob = tuple[str, dict, Sequence[int], int, int, "Sequence[str] | None", Path]
"""`competitor_rows`' arguments: data set, env, seeds, episodes, tuning, names, folder."""


def competitor_rows_beside(jobs: Sequence[RowsJob]) -> multiprocessing.process.BaseProcess | None:
    """Start `competitor_rows` for each job in one forked one-thread process that keeps the rows in the job's
    folder, so that they are computed while the caller trains on the other core; `competitor_rows` afterwards
    (``join`` first) reads them back and computes whatever the process did not. None where there is no second
    core or no fork (then the caller computes them itself)."""
    if not jobs or (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    process = multiprocessing.get_context("fork").Process(target=_rows_in_one_thread, args=(list(jobs),),
                                                          name="competitors", daemon=True)
    process.start()
    return process


def _rows_in_one_thread(jobs: list[RowsJob]) -> None:
    torch.set_num_threads(1)
    for job in jobs:
        competitor_rows(*job)


def _with_target(row: dict, val_accuracy: Any, target: Sequence[float] | None, env_kwargs: dict) -> dict:
    """`row` with the updates its MLPs need to reach `target` (`agents.rl.evaluation.updates_to_target`)."""
    if target is None or val_accuracy is None:
        return row
    curves = RolloutCurves(np.asarray(val_accuracy), np.zeros(len(target)), np.zeros(len(target)))
    steps_per_action = EnvConfig.from_kwargs(**env_kwargs).steps_per_action
    updates, reached = updates_to_target(curves, np.asarray(target), steps_per_action)
    return {**row, "updates_to_target": float(updates.mean()), "target_reached": float(reached.mean())}


def _same_run(kept: Any, key: dict, tuning_too: bool) -> bool:
    """Whether a kept file's key is `key` (but for the tuning count, unless `tuning_too`)."""
    if not isinstance(kept, dict):
        return False
    ignored = set() if tuning_too else {"tuning_episodes"}
    return {k: v for k, v in kept.items() if k not in ignored} == {k: v for k, v in key.items() if k not in ignored}


def _read(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class CompetitorReport:
    """The competitor table of one task: its Markdown, one record per row and data set, and every setting chosen."""

    markdown: str
    records: list[dict[str, Any]]
    settings: dict[str, str]


def competitor_report(task_name: str, datasets: Sequence[str], seeds: Sequence[int], episodes: int | None = None,
                      tuning: int | None = None, names: Sequence[str] | None = None,
                      progress: Callable[[str], None] | None = None,
                      env_changes: Mapping[str, Any] | None = None) -> CompetitorReport:
    """Every reference policy and competitor on the evaluation MLPs of `seeds` (`evaluation_seeds(s, episodes)`,
    the MLPs the benchmark judges an agent of seed s on), tuned ones on `tuning` reference-tuning MLPs.

    A seed is one sample: each row is the mean ± std over seeds of its MLPs' mean final validation accuracy,
    with Welch's p against the best constant and the share of the gap from the best constant to the oracle.

    :param names: competitors to run (default: every entry of `COMPETITORS`, checked before any work).
    :param env_changes: over the task's env arguments (``{randomize_regime: wide-lr}``: the same MLP seeds out of
        the agents' distribution, as `reevaluate` judges them), references and competitors tuned on it too.
    """
    from agents.rl.references import BEST_CONSTANT, ORACLE, SCHEDULE, ZERO, reference_curves
    from agents.rl.tasks import task_named

    task = task_named(task_name)
    episodes = episodes or task.eval_episodes
    tuning = tuning or task.tuning_episodes
    check_competitors(list(names or COMPETITORS))
    records: list[dict[str, Any]] = []
    settings_of: dict[str, str] = {}
    sections = []
    for dataset in datasets:
        env_kwargs = competitor_env({**task.env_kwargs, **(env_changes or {}), "dataset": dataset})
        per_seed: dict[str, list[float]] = {name: [] for name in (ZERO, BEST_CONSTANT, SCHEDULE, ORACLE)}
        start = time.perf_counter()
        for seed in seeds:
            curves, settings = reference_curves(env_kwargs, evaluation_seeds(seed, episodes), tuning, oracle=True,
                                                tune_on="final_val_accuracy")
            for name in per_seed:
                per_seed[name].append(float(curves[name].final_val_accuracy.mean()))
            settings_of.update({f"{dataset}: {k}": v for k, v in settings.items()})
        references_seconds = time.perf_counter() - start
        seconds: dict[str, float] = {}
        rows_of = pd.DataFrame(competitor_rows(dataset, env_kwargs, seeds, episodes, tuning, names))
        for name, rows in rows_of.groupby("policy", sort=False) if len(rows_of) else ():
            per_seed[name] = list(rows.final_val_accuracy)
            seconds[name] = float(rows.eval_seconds_per_mlp.mean())
            settings_of[f"{dataset}: {name}"] = rows.setting.iloc[0]
            if progress is not None:
                progress(f"{dataset}: {name}: {100 * rows.final_val_accuracy.mean():.1f} ({rows.setting.iloc[0]})")
        best, oracle = np.mean(per_seed[BEST_CONSTANT]), np.mean(per_seed[ORACLE])
        table_rows = []
        for name, values in sorted(per_seed.items(), key=lambda kv: -np.mean(kv[1])):
            series = pd.Series(values)
            delta = 100 * (series.mean() - best)
            p = welch_p(series, pd.Series(per_seed[BEST_CONSTANT])) if name != BEST_CONSTANT else float("nan")
            closed = (series.mean() - best) / (oracle - best) if oracle > best else float("nan")
            label = f"{name} (oracle: sees each MLP's outcome)" if name == ORACLE else name
            table_rows.append([label, mean_std(values), f"{delta:+.2f}", "—" if np.isnan(p) else f"{p:.3f}",
                               f"{closed:.2f}", f"{seconds[name]:.3f}" if name in seconds else "—"])
            records.append({"dataset": dataset, "row": name, "final_val_accuracy": series.mean(),
                            "std_over_seeds": series.std(ddof=1) if len(series) > 1 else 0.0, "delta": delta / 100,
                            "p_vs_best_constant": p, "gap_closed": closed,
                            "seconds_per_mlp": seconds.get(name, float("nan")), "seeds": len(series)})
        table = markdown_table(["row", "final val acc (%)", "Δ vs best constant", "Welch p", "gap closed",
                                "s / MLP"], table_rows)
        changed = f", env changes {dict(env_changes)}" if env_changes else ""
        sections.append(f"### {dataset}, task {task_name}{changed}: {len(seeds)} seeds x {episodes} unseen MLPs\n\n"
                        f"{table}\n\nReferences and their tuning took {references_seconds:.0f} s; s / MLP is one "
                        f"competitor's wall time per MLP (one {torch.get_num_threads()}-thread process).")
    return CompetitorReport("\n\n".join(sections), records, settings_of)
