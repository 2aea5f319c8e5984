"""Compare algorithms on one env budget and the same seeds, against plain SGD and random actions.

For every (data set, algorithm, seed), one cell of the matrix that `agents.experiments.engine` runs: train
with `agents.rl.training.train_agent`, then evaluate the final policy on fresh MLPs from seeds no
training run used, beside the zero action (plain SGD) and random actions on the very same MLPs.
A seed is one sample: means, standard deviations and Welch's t-tests are over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from agents.errors import NAME_ONLY, parameter_error
from agents.experiments.competitor_tables import COMPETITOR, competitor_rows, competitor_rows_beside
from agents.experiments.competitor_tables import FOLDER as COMPETITOR_FOLDER
from agents.experiments.competitors import COMPETITORS, check_competitors
from agents.experiments.engine import Cell, EngineOptions, MatrixOutcome, run_matrix
from agents.outputs import OUTPUTS
from agents.report import atomic_write_text, markdown_table, mean_std, welch_p, write_curves
from agents.rl import tracking
from agents.rl.algorithms import ALGORITHMS, AgentConfig, algorithm_name, config_keys, load_agent_config
from agents.rl.references import BEST_CONSTANT, ORACLE, REFERENCE_POLICIES, ZERO, zero_action_label
from agents.rl.tasks import task_named
from agents.rl.training import learning_curve, read_monitor, train_agent
from agents.seeds import evaluation_seeds
from gi_envs.datasets import dataset_name
from gi_envs.task import EnvConfig
from gi_envs.task_family import split_name, task_distribution

OWN_ARGUMENTS = {"n_timesteps": "timesteps", "n_envs": "n_envs", "env_kwargs": "env_kwargs", "task": "task"}
"""Config keys that `run_benchmark` sets from arguments of their own, never from its `hyperparams`."""


@dataclass
class BenchmarkResult:
    results: pd.DataFrame  # one row per (dataset, policy, seed)
    table: str  # Markdown, one section per data set
    verdict: str
    outcome: MatrixOutcome


@dataclass
class BenchmarkCell:
    """The work of one cell: train `configs[(dataset, algo)]` on `seed` into the cell's folder.

    A picklable callable, so that Ray can ship it to a worker.
    """

    configs: dict[tuple[str, str], AgentConfig]
    wandb_mode: str
    eval_episodes: int
    group: str

    def __call__(self, cell: Cell, folder: Path) -> None:
        dataset, algo, seed = cell.key
        train_agent(self.configs[dataset, algo], seed, folder, self.wandb_mode, self.eval_episodes,
                    progress_bar=False, group=self.group)


def run_benchmark(
    algos: Sequence[str],
    seeds: Sequence[int],
    *,
    out: Path,
    timesteps: int | None = None,
    env_kwargs: dict | None = None,
    n_envs: int | None = None,
    datasets: Sequence[str] | None = None,
    eval_episodes: int | None = None,
    wandb_mode: str = "offline",
    options: EngineOptions | None = None,
    task: str = "default",
    tables_only: bool = False,
    hyperparams: dict[str, Any] | None = None,
    competitors: Sequence[str] | None = None,
    competitor_tuning: int | None = None,
) -> BenchmarkResult:
    """Train every algorithm on every seed and data set with the same budget; write results.csv,
    results.md and one learning-curve PNG per data set.

    The matrix's cells, (dataset, algorithm, seed), run on `agents.experiments.engine` (local or
    Ray, as `options` says) and land in `out/DATASET/ALGO/seedSEED/` the moment each finishes; a
    cell that keeps failing is marked failed in the table and the matrix goes on. Every cell's
    W&B run belongs to the group `out.name`.

    :param timesteps: env steps per training run (default: each config's `n_timesteps`; pass one
        number for a fair comparison).
    :param datasets: data sets of the matrix (default: the one in `env_kwargs`, else digits). Under a task family
        (the task's or `env_kwargs`' ``task_family``) none: the matrix has one column, named by the family's split.
    :param options: the engine; with `resume`, every cell already finished in `out` with the same
        config and evaluation seeds is kept instead of trained again.
    :param task: the task (`agents.rl.tasks`): its env arguments, agent settings, references.
    :param eval_episodes: unseen MLPs per seed (default: the task's).
    :param tables_only: train nothing; rebuild the tables from the cells finished in `out` (a matrix run in
        parts, some algorithms on fewer seeds: the cells column says how many each has).
    :param hyperparams: constructor arguments over every algorithm's config (``{sub_sampling_factor: 4}``
        for a cheaper TRPO); each algorithm of the matrix must take them. The budget and the env have
        their own arguments (`timesteps`, `n_envs`, `env_kwargs`, `task`).
    :param competitors: rows of `agents.experiments.competitors.COMPETITORS` run on the table's own evaluation
        MLPs (default: every entry; ``[]``: none), each package checked before any work; their rows are kept in
        ``out/DATASET/competitors/`` for `resume` and `tables_only`.
    :param competitor_tuning: reference-tuning MLPs each tuned competitor chooses its knob on (default: the
        task's `tuning_episodes`, those of the best constant).
    """
    options = options or EngineOptions()
    eval_episodes = eval_episodes or task_named(task).eval_episodes
    env_kwargs = dict(env_kwargs or {})
    algos = distinct_names(algos, "algos", algorithm_name)
    default_dataset = env_kwargs.get("dataset", EnvConfig.dataset)
    if datasets and "dataset" in env_kwargs:
        raise parameter_error(ValueError, "{datasets} and {env_kwargs} both name the data set "
                              f"({' '.join(datasets)} / dataset: {env_kwargs['dataset']}); give one of them",
                              datasets=NAME_ONLY, env_kwargs=NAME_ONLY)
    family = {**task_named(task).env_kwargs, **env_kwargs}.get("task_family")
    if family:  # every MLP draws its own data set: the matrix's one column is the family, named by its split
        if datasets or "dataset" in env_kwargs:
            raise parameter_error(ValueError, "{datasets} and a dataset in {env_kwargs} do not go with a task "
                                  "family, which draws every MLP's data set", datasets=NAME_ONLY, env_kwargs=NAME_ONLY)
        default_dataset = split_name(task_distribution(family)) or "task-family"
        datasets = [default_dataset]
    else:
        datasets = distinct_names(datasets or [default_dataset], "datasets", dataset_name)
    if len(set(seeds)) != len(seeds) or not seeds:
        raise parameter_error(ValueError, f"{{seeds}} must be distinct and non-empty, got {list(seeds)}",
                              seeds=NAME_ONLY)
    # env_kwargs stay as given for their own data set, so that resuming recognises runs made without `datasets`
    kwargs_of = {d: env_kwargs if d == default_dataset else {**env_kwargs, "dataset": d} for d in datasets}
    hyperparams = dict(hyperparams or {})
    own = sorted(set(hyperparams) & OWN_ARGUMENTS.keys())
    if own:
        raise parameter_error(ValueError, f"{{hyperparams}} sets {own}, which the matrix sets through "
                              + ", ".join(f"{{{OWN_ARGUMENTS[k]}}}" for k in own),
                              hyperparams=NAME_ONLY, **{OWN_ARGUMENTS[k]: NAME_ONLY for k in own})
    for algo in algos:
        unknown = sorted(set(hyperparams) - config_keys(algo))
        if unknown:
            raise parameter_error(ValueError, f"{{hyperparams}} sets {unknown}, which {ALGORITHMS[algo].cls.__name__} "
                                  f"does not take; it takes {sorted(config_keys(algo) - OWN_ARGUMENTS.keys())}",
                                  hyperparams=NAME_ONLY)
    configs = {(d, algo): load_agent_config(algo, overrides={**hyperparams, "n_timesteps": timesteps, "n_envs": n_envs,
                                                             "env_kwargs": kwargs_of[d]}, task=task)
               for d in datasets for algo in algos}  # every error before any training
    cells = [Cell((d, algo, seed), cell_path(d, algo, seed)) for d in datasets for algo in algos for seed in seeds]
    group = out.name
    if not tables_only:
        check_competitors(list(COMPETITORS if competitors is None else competitors))
    competitor_tuning = competitor_tuning or task_named(task).tuning_episodes

    def is_finished(cell: Cell, folder: Path) -> bool:
        dataset, algo, seed = cell.key
        return finished(folder, configs[dataset, algo], seed, eval_episodes)

    if tables_only:
        if not out.is_dir():
            raise parameter_error(FileNotFoundError, "{out} holds no benchmark to tabulate", out=out)
        outcome = MatrixOutcome(kept=[c for c in cells if is_finished(c, out / c.path)])
    else:
        if options.resume:
            report_discarded(out, cells, configs, seeds, eval_episodes, print if options.progress else None)
        # the local engine trains one cell at a time: the competitors take the other core meanwhile
        beside = competitor_rows_beside(
            [(d, configs[d, algos[0]].env_kwargs, seeds, eval_episodes, competitor_tuning, competitors,
              out / d / COMPETITOR_FOLDER) for d in datasets]) if options.engine == "local" and competitors != [] \
            else None
        try:
            outcome = run_matrix(cells, BenchmarkCell(configs, wandb_mode, eval_episodes, group), out, is_finished,
                                 options=options, command="benchmark", output=OUTPUTS["benchmark"])
        except BaseException:
            if beside is not None:
                beside.terminate()
            raise
        if beside is not None:
            beside.join()
    failed = {cell.key for cell in outcome.failed}
    rows_of = {d: competitor_rows(d, configs[d, algos[0]].env_kwargs, seeds, eval_episodes, competitor_tuning,
                                  competitors, out / d / COMPETITOR_FOLDER, compute=not tables_only,
                                  targets=targets_of(out, d, algos, seeds)) for d in datasets}
    results, table, verdict, pngs = tabulate(out, datasets, algos, seeds, failed, task, eval_episodes, rows_of,
                                             {d: configs[d, algos[0]].env_kwargs for d in datasets})

    run = tracking.start_run(out, wandb_mode, name=f"benchmark-{group}", group=group, job_type="benchmark",
                             config={"algos": list(algos), "seeds": list(seeds), "datasets": datasets,
                                     "timesteps": timesteps, "env_kwargs": env_kwargs, "eval_episodes": eval_episodes,
                                     "hyperparams": hyperparams, "competitors": competitors,
                                     "competitor_tuning": competitor_tuning, "task": task,
                                     "engine": options.engine, "cpus_per_cell": options.cpus_per_cell})
    try:
        filled = results.fillna({c: 0.0 if pd.api.types.is_numeric_dtype(results[c]) else "" for c in results.columns})
        tracking.log_table(run, "results", filled)
        for dataset, png in pngs.items():
            tracking.log_image(run, f"learning_curves_{dataset}", png)
        run.summary["verdict"] = verdict
        run.summary["failed_cells"] = [str(cell) for cell in outcome.failed]
    finally:
        run.finish()
    return BenchmarkResult(results, table, verdict, outcome)


def tabulate(out: Path, datasets: Sequence[str], algos: Sequence[str], seeds: Sequence[int], failed: set[tuple],
             task: str, eval_episodes: int, competitor_rows_of: dict[str, list[dict]] | None = None,
             env_kwargs_of: Mapping[str, dict] | None = None) -> tuple[pd.DataFrame, str, str, dict[str, Path]]:
    """The tables of a benchmark's finished cells in `out` (results.csv, results.md and one learning-curve PNG
    per data set, written there): the results, the Markdown, the verdict and the PNGs.

    :param competitor_rows_of: data set -> its competitor rows (`competitor_tables.competitor_rows`), on the
        same evaluation MLPs; the best of them is a dashed line of the plot.
    :param env_kwargs_of: data set -> the env its MLPs trained in (default: the task's), which names the zero
        action's optimizer (`references.zero_action_label`)."""
    frames, tables, verdicts, pngs = [], [], [], {}
    for dataset in datasets:
        zero_label = zero_action_label((env_kwargs_of or {}).get(dataset, task_named(task).env_kwargs))
        results, curves, x = collect_dataset(out, dataset, algos, seeds, failed)
        theirs = (competitor_rows_of or {}).get(dataset) or []
        if theirs:
            results = pd.concat([results, pd.DataFrame(theirs)], ignore_index=True)
        if curves:
            references = {f"{zero_label if p == ZERO else p}, unseen MLPs":
                          results[results.policy == p].final_val_accuracy.mean()
                          for p in REFERENCE_POLICIES if (results.policy == p).any()}
            best = best_competitor(results)
            if best is not None:
                references[f"best competitor ({best}), unseen MLPs"] = \
                    results[results.policy == best].final_val_accuracy.mean()
            pngs[dataset] = write_curves(out / f"learning_curves_{dataset}", curves, references=references,
                                         ylabel="final validation accuracy of training episodes", xlabel="env steps",
                                         x=x)[1]
        failed_seeds = {algo: [seed for seed in seeds if (dataset, algo, seed) in failed] for algo in algos}
        table, verdict = results_table(results, list(algos), failed_seeds, len(seeds), zero_label=zero_label)
        header = f"#### {dataset}, task `{task}`: {eval_episodes} unseen MLPs per seed"
        measure = {"return": "mean episode return", "final_val_accuracy": "mean final validation accuracy"}[
            task_named(task).tune_on]
        ours = results[results.kind != COMPETITOR] if "kind" in results else results
        settings = " ".join(filter(None, [reference_settings_line(ours, measure), competitor_settings_line(results)]))
        tables.append(f"{header}\n\n{table}\n\n{settings}")
        verdicts.append(f"{dataset}: {verdict}")
        frames.append(results)
    results = pd.concat(frames, ignore_index=True)
    table, verdict = "\n\n".join(tables), "\n".join(verdicts)
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    atomic_write_text(out / "results.md", f"{table}\n\n{verdict}\n")
    return results, table, verdict, pngs


def targets_of(out: Path, dataset: str, algos: Sequence[str], seeds: Sequence[int]) -> dict[int, list[float]]:
    """Seed -> each evaluation MLP's target accuracy (the best constant's final one), from the finished cells."""
    targets = {}
    for seed in seeds:
        for algo in algos:
            try:
                target = json.loads((cell_folder(out, dataset, algo, seed) / "eval.json").read_text()).get(
                    "target_val_accuracy")
            except (OSError, ValueError):
                continue
            if target:
                targets[seed] = target
                break
    return targets


def cell_path(dataset: str, algo: str, seed: int) -> str:
    """Where a benchmark keeps the run of (data set, algorithm, seed), relative to its folder."""
    return f"{dataset}/{algo}/seed{seed}"


def cell_folder(out: Path, dataset: str, algo: str, seed: int) -> Path:
    """The run folder (model.zip, config.yaml, eval.json, ...) of one cell of the benchmark written to `out`."""
    return out / cell_path(dataset, algo, seed)


def collect_dataset(out: Path, dataset: str, algos: Sequence[str], seeds: Sequence[int],
                    failed: set[tuple]) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray | None]:
    """The finished cells of one data set: one row per (policy, seed), and each algorithm's learning
    curves (one per seed) with their x axis."""
    rows, curves, references_of, x = [], {}, {}, None
    for algo in algos:
        seed_curves = []
        for seed in seeds:
            if (dataset, algo, seed) in failed:
                continue
            run_dir = cell_folder(out, dataset, algo, seed)
            if not (run_dir / "eval.json").is_file():  # not run (yet): the cells column counts what is there
                continue
            cell = json.loads((run_dir / "eval.json").read_text())
            wall = cell["train_wall_seconds"]
            timing = {"train_wall_seconds": wall, "env_steps_per_second": cell["timesteps"] / wall,
                      "env_step_share": cell["env_step_seconds"] / wall,
                      "eval_seconds_per_mlp": cell.get("eval_seconds_per_mlp", np.nan)}  # older cells: unknown
            for policy, summary in cell["policies"].items():
                if policy == algo:
                    rows.append({"dataset": dataset, "policy": policy, "seed": seed, **summary, **timing})
                elif (policy, seed) not in references_of:  # references: same MLPs in every cell of a seed
                    setting = cell.get("reference_settings", {}).get(policy, "")
                    references_of[policy, seed] = {"dataset": dataset, "policy": policy, "seed": seed, **summary,
                                                   "setting": setting}
            x, y = learning_curve(read_monitor(run_dir / "monitor.csv"), cell["timesteps"])
            seed_curves.append(y)
        if seed_curves:
            curves[algo] = np.array(seed_curves)
    return pd.DataFrame(rows + list(references_of.values())), curves, x


def distinct_names(names: Sequence[str], parameter: str, canonical: Callable[[str], str]) -> list[str]:
    """`names` in their registry spelling (case-insensitive); a name given twice is refused, naming it."""
    seen: dict[str, str] = {}
    for name in names:
        key = canonical(name)
        if key in seen:
            raise parameter_error(ValueError, f"{{{parameter}}} names {key!r} twice ({seen[key]!r} and {name!r}; "
                                  "names are case-insensitive): give each once", **{parameter: NAME_ONLY})
        seen[key] = name
    return list(seen)


def config_changes(run_dir: Path, config: AgentConfig, seed: int, eval_episodes: int) -> str | None:
    """How the finished run in `run_dir` differs from `config` (``n_timesteps 64 -> 100000``), or None when
    it is no finished run or a finished run of this very config."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        cell = json.loads((run_dir / "eval.json").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(saved, dict) or finished(run_dir, config, seed, eval_episodes):
        return None
    expected = saved_config(config, seed)
    changes = [f"{key} {saved.get(key, '(unset)')} -> {expected.get(key, '(unset)')}"
               for key in sorted(set(saved) | set(expected), key=str) if saved.get(key) != expected.get(key)]
    if cell.get("eval_seeds") != evaluation_seeds(seed, eval_episodes):
        changes.append(f"eval episodes {len(cell.get('eval_seeds') or [])} -> {eval_episodes}")
    return ", ".join(changes) or "model.zip missing"


def report_discarded(out: Path, cells: Sequence[Cell], configs: dict[tuple[str, str], AgentConfig],
                     seeds: Sequence[int], eval_episodes: int, say: Callable[[str], None] | None) -> list[str]:
    """Say which finished cells `resume` trains again because their config changed, and how.

    :return: one line per discarded cell.
    """
    lines = []
    for cell in cells:
        dataset, algo, seed = cell.key
        change = config_changes(out / cell.path, configs[dataset, algo], seed, eval_episodes)
        if change:
            lines.append(f"{cell.path}: {change}")
    if lines and say:
        say(f"resuming: {len(lines)} finished cell(s) ran another config and are trained again: " + "; ".join(lines))
    return lines


def saved_config(config: AgentConfig, seed: int) -> dict:
    """The config.yaml a run of `config` on `seed` writes, as reading it back gives it."""
    return yaml.safe_load(yaml.safe_dump({**config.to_dict(), "seed": seed}, sort_keys=False))


def finished(run_dir: Path, config: AgentConfig, seed: int, eval_episodes: int) -> bool:
    """Whether `run_dir` holds a finished run of exactly this config, seed and evaluation."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        cell = json.loads((run_dir / "eval.json").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return (saved == saved_config(config, seed) and cell.get("eval_seeds") == evaluation_seeds(seed, eval_episodes)
            and (run_dir / "model.zip").is_file())


def reference_settings_line(results: pd.DataFrame, measure: str = "mean episode return") -> str:
    """What the tuned references chose, on their own tuning seeds (the same for every cell of a data set)."""
    if "setting" not in results:
        return ""
    chosen = results.dropna(subset=["setting"]).groupby("policy").setting.first()
    chosen = chosen[chosen != ""]
    tuned = chosen.drop(ORACLE, errors="ignore")
    line = (f"Tuned on separate seeds by {measure}: " + "; ".join(f"{p}: {s}" for p, s in tuned.items())
            + ".") if len(tuned) else ""
    if ORACLE in chosen:
        line += f" The {ORACLE} is no policy: {chosen[ORACLE]}, on the very MLPs of the table."
    return line


def best_competitor(results: pd.DataFrame) -> str | None:
    """The competitor with the highest mean final validation accuracy in `results`, or None without competitors."""
    if "kind" not in results:
        return None
    rows = results[results.kind == COMPETITOR]
    return None if rows.empty else str(rows.groupby("policy").final_val_accuracy.mean().idxmax())


def competitor_settings_line(results: pd.DataFrame) -> str:
    """What each competitor ran at (chosen on the reference-tuning MLPs by mean final validation accuracy)."""
    if "kind" not in results or not (results.kind == COMPETITOR).any():
        return ""
    chosen = results[results.kind == COMPETITOR].groupby("policy", sort=False).setting.first()
    return ("Competitors, tuned on the reference-tuning MLPs by mean final validation accuracy: "
            + "; ".join(f"{p}: {s}" for p, s in chosen.items()) + ".")


def results_table(results: pd.DataFrame, algos: Sequence[str], failed_seeds: dict[str, list[int]] | None = None,
                  n_seeds: int | None = None, zero_label: str = ZERO) -> tuple[str, str]:
    """Markdown table (mean ± std over seeds) with Welch's t-tests of each policy's final validation accuracy
    against the zero action, the best constant and (where competitors ran) the best competitor, and a verdict
    naming who beats each. Where the per-instance oracle was measured, a column says which share of the
    oracle's lead over the best constant each policy closes: (policy − best constant) / (oracle − best constant).
    Where the cells recorded it, `updates to target` is AlgoPerf's time to target: the mean updates until an
    MLP's validation accuracy first reaches the best constant's final accuracy on that MLP (one env step past
    the episode where it never does), with the share of MLPs that reach it.

    An agent is compared with the references on its own seeds, the very MLPs it was judged on: an agent run on
    fewer seeds than the references (a budget-capped algorithm) is not credited or blamed for the others' MLPs.
    The `cells` column counts each agent's finished seeds and names the failed ones. Competitor rows
    (``kind == "competitor"``) follow the references, best first; `eval s / MLP` is the wall time of judging
    one MLP (an agent's MLPs trained together in a vector env, a competitor's one at a time). `zero_label`
    is the zero action's name in the table and verdict (`references.zero_action_label` of the task's env).
    """
    failed_seeds = failed_seeds or {}

    def policy_rows(policy: str) -> pd.DataFrame:
        return results[results.policy == policy].set_index("seed") if len(results) else pd.DataFrame()

    best = best_competitor(results) if len(results) else None
    competitors = [] if best is None else list(results[results.kind == COMPETITOR].groupby("policy")
                                               .final_val_accuracy.mean().sort_values(ascending=False).index)
    bars = [ZERO, BEST_CONSTANT, *([best] if best else [])]
    references = {name: policy_rows(name) for name in (*bars, ORACLE)}
    has_gap = not references[ORACLE].empty and not references[BEST_CONSTANT].empty
    has_target = "updates_to_target" in results and results.updates_to_target.notna().any()
    header = ["policy", "cells", "final val acc (%)", "final test acc (%)", "episode return",
              "Δ val vs zero action (pts)", "Welch p", "Δ val vs best constant (pts)", "Welch p",
              *(["Δ val vs best competitor (pts)", "Welch p"] if best else []),
              *(["gap closed"] if has_gap else []),
              *(["updates to target (reached)"] if has_target else []), "train wall (s)", "env steps/s",
              "time in env.step", "eval s / MLP"]
    rows, winners = [], {name: [] for name in bars}
    present = [p for p in REFERENCE_POLICIES if not policy_rows(p).empty]
    for policy in [*algos, *present, *competitors]:
        part = policy_rows(policy)
        failed = failed_seeds.get(policy, [])
        cells = f"{len(part)}/{n_seeds or len(part) + len(failed)}"
        if failed:
            cells += f", failed: seed {', '.join(map(str, failed))}"
        if part.empty:
            rows.append([policy, cells, *["—"] * (len(header) - 2)])
            continue
        row = [zero_label if policy == ZERO else policy, cells, mean_std(part.final_val_accuracy),
               mean_std(part.final_test_accuracy), mean_std(part.episode_return, scale=1.0, digits=2)]
        same_mlps = {name: frame[frame.index.isin(part.index)] for name, frame in references.items()}
        for bar_name in bars:
            bar = same_mlps[bar_name]
            if policy == bar_name or bar.empty:
                row += ["—", "—"]
                continue
            delta = 100 * (part.final_val_accuracy.mean() - bar.final_val_accuracy.mean())
            p = welch_p(part.final_val_accuracy, bar.final_val_accuracy)
            row += [f"{delta:+.2f}", "—" if np.isnan(p) else f"{p:.3f}"]
            if delta > 0 and p < 0.05 and policy != ORACLE and policy not in competitors:
                winners[bar_name].append(policy)
        if has_gap:
            best_constant = same_mlps[BEST_CONSTANT].final_val_accuracy.mean()
            gap = same_mlps[ORACLE].final_val_accuracy.mean() - best_constant
            closed = (part.final_val_accuracy.mean() - best_constant) / gap if gap > 0 else np.nan
            row.append("—" if policy in (BEST_CONSTANT, ORACLE) or np.isnan(closed) else f"{closed:+.2f}")
        if has_target:
            timed = part.dropna(subset=["updates_to_target"]) if "updates_to_target" in part else part.iloc[:0]
            row.append(f"{mean_std(timed.updates_to_target, scale=1.0, digits=0)} "
                       f"({100 * timed.target_reached.mean():.0f} %)" if len(timed) else "—")
        if policy in algos:
            row += [mean_std(part.train_wall_seconds, scale=1.0, digits=0),
                    f"{part.env_steps_per_second.mean():,.0f}", f"{100 * part.env_step_share.mean():.0f} %"]
        else:
            row += ["—", "—", "—"]
        seconds = part.eval_seconds_per_mlp.mean() if "eval_seconds_per_mlp" in part else np.nan
        row.append("—" if np.isnan(seconds) else f"{seconds:.3f}")
        rows.append(row)
    n = results.seed.nunique() if len(results) else 0
    counts = {len(policy_rows(a)) for a in algos} - {0}
    seeds = f"{n} seed{'' if n == 1 else 's'}" if counts <= {n} else \
        f"each agent on its own seeds, {min(counts)} to {n}"
    verdict = " ".join(
        f"Beat {what} on final validation accuracy (Welch p < 0.05, {seeds}): {', '.join(who)}." if who else
        f"No policy beats {what} on final validation accuracy at p < 0.05 over {seeds}."
        for what, who in ((f"the {zero_label}", winners[ZERO]),
                          ("the best constant (a tuned learning rate in scale mode)", winners[BEST_CONSTANT]),
                          *([(f"the best competitor ({best})", winners[best])] if best else [])))
    if best:
        verdict += " " + against_best_competitor(results, algos, best)
    n_failed = sum(len(v) for v in failed_seeds.values())
    if n_failed:
        verdict += f" {n_failed} cell(s) failed (see the cells column and their failed.json)."
    return markdown_table(header, rows), verdict


def against_best_competitor(results: pd.DataFrame, algos: Sequence[str], best: str) -> str:
    """One sentence: where the best agent ends against the best competitor, on the agent's own seeds."""
    means = {a: results[results.policy == a].final_val_accuracy.mean() for a in algos
             if (results.policy == a).any()}
    rival = results[results.policy == best].set_index("seed").final_val_accuracy
    if not means:
        return f"The best competitor is {best} ({100 * rival.mean():.1f} %)."
    agent = max(means, key=means.get)
    mine = results[results.policy == agent].set_index("seed").final_val_accuracy
    rival = rival[rival.index.isin(mine.index)]
    delta, p = 100 * (mine.mean() - rival.mean()), welch_p(mine, rival)
    where = "above" if delta > 0 else "below"
    return (f"The best agent, {agent}, ends {abs(delta):.2f} points {where} the best competitor, {best} "
            f"({100 * mine.mean():.1f} % against {100 * rival.mean():.1f} %, Welch p = "
            f"{'—' if np.isnan(p) else f'{p:.3f}'}).")
