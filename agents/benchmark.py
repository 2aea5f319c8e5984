"""Compare algorithms on one env budget and the same seeds, against plain SGD and random actions.

For every (algorithm, seed): train with `agents.training.train_agent`, then evaluate the final
policy on fresh MLPs from seeds no training run used, beside the zero action (plain SGD) and
random actions on the very same MLPs. A seed is one sample: means, standard deviations and
Welch's t-tests are over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from agents import tracking
from agents.algorithms import AgentConfig, load_agent_config
from agents.evaluation import REFERENCE_POLICIES, eval_seeds
from agents.report import atomic_write_text, markdown_table, mean_std, write_curves
from agents.training import learning_curve, read_monitor, train_agent

ZERO, RANDOM = REFERENCE_POLICIES


@dataclass
class BenchmarkResult:
    results: pd.DataFrame  # one row per (policy, seed)
    table: str  # Markdown
    verdict: str


def run_benchmark(
    algos: Sequence[str],
    seeds: Sequence[int],
    timesteps: int | None,
    out: Path,
    env_kwargs: dict | None = None,
    n_envs: int | None = None,
    wandb_mode: str = "offline",
    eval_episodes: int = 10,
    progress_bar: bool = True,
    resume: bool = False,
) -> BenchmarkResult:
    """Train every algorithm on every seed with the same budget; write results.csv, results.md, a PNG.

    :param timesteps: env steps per training run (default: each config's `n_timesteps`; pass one
        number for a fair comparison).
    :param resume: keep every (algorithm, seed) run already finished in `out` with the same config
        and evaluation seeds, instead of training it again.
    """
    overrides = {"n_timesteps": timesteps, "n_envs": n_envs, "env_kwargs": env_kwargs or {}}
    configs = [load_agent_config(algo, overrides=overrides) for algo in algos]  # every error before any training
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds={list(seeds)} must be distinct and non-empty")
    group = out.name
    rows, curves = [], {}
    for config in configs:
        seed_curves = []
        for seed in seeds:
            run_dir = out / config.algo / f"seed{seed}"
            if resume and finished(run_dir, config, seed, eval_episodes):
                print(f"== {config.algo}, seed {seed}: already finished in {run_dir}, kept", flush=True)
            else:
                print(f"== {config.algo}, seed {seed}: {config.n_timesteps} env steps on {config.n_envs} MLPs", flush=True)
                train_agent(config, seed, run_dir, wandb_mode, eval_episodes, progress_bar, group=group)
            cell = json.loads((run_dir / "eval.json").read_text())
            wall = cell["train_wall_seconds"]
            timing = {"train_wall_seconds": wall, "env_steps_per_second": cell["timesteps"] / wall,
                      "env_step_share": cell["env_step_seconds"] / wall}
            for policy, summary in cell["policies"].items():
                is_agent = policy == config.algo
                if is_agent or config is configs[0]:  # references: same MLPs for every algorithm, keep one copy
                    rows.append({"policy": policy, "seed": seed, **summary, **(timing if is_agent else {})})
            x, y = learning_curve(read_monitor(run_dir / "monitor.csv"), cell["timesteps"])
            seed_curves.append(y)
        curves[config.algo] = np.array(seed_curves)
    results = pd.DataFrame(rows)
    references = {f"{p}, unseen MLPs": results[results.policy == p].final_val_accuracy.mean() for p in (ZERO, RANDOM)}
    write_curves(out / "learning_curves", curves, ylabel="final validation accuracy of training episodes",
                 xlabel="env steps", x=x, references=references)
    table, verdict = results_table(results, [c.algo for c in configs])
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    atomic_write_text(out / "results.md", f"{table}\n\n{verdict}\n")

    run = tracking.start_run(out, wandb_mode, name=f"benchmark-{group}", group=group, job_type="benchmark",
                             config={"algos": list(algos), "seeds": list(seeds), "timesteps": timesteps,
                                     "env_kwargs": env_kwargs or {}, "eval_episodes": eval_episodes})
    try:
        import wandb

        run.log({"results": wandb.Table(dataframe=results.fillna(0.0))})
        tracking.log_image(run, "learning_curves", out / "learning_curves.png")
        run.summary["verdict"] = verdict
    finally:
        run.finish()
    return BenchmarkResult(results, table, verdict)


def finished(run_dir: Path, config: AgentConfig, seed: int, eval_episodes: int) -> bool:
    """Whether `run_dir` holds a finished run of exactly this config, seed and evaluation."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        cell = json.loads((run_dir / "eval.json").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    expected = yaml.safe_load(yaml.safe_dump({**config.to_dict(), "seed": seed}, sort_keys=False))
    return saved == expected and cell.get("eval_seeds") == eval_seeds(seed, eval_episodes) and (run_dir / "model.zip").is_file()


def results_table(results: pd.DataFrame, algos: Sequence[str]) -> tuple[str, str]:
    """Markdown table (mean ± std over seeds) with Welch's t-test of each agent against the zero action."""
    zero = results[results.policy == ZERO].set_index("seed")
    header = ["policy", "final val acc (%)", "final test acc (%)", "episode return", "Δ val vs SGD (pts)",
              "Welch p (val)", "Δ test vs SGD (pts)", "Welch p (test)", "train wall (s)", "env steps/s",
              "time in env.step"]
    rows, winners = [], []
    for policy in [*algos, ZERO, RANDOM]:
        part = results[results.policy == policy].set_index("seed")
        row = [policy, mean_std(part.final_val_accuracy), mean_std(part.final_test_accuracy),
               mean_std(part.episode_return, scale=1.0, digits=2)]
        for metric in ("final_val_accuracy", "final_test_accuracy"):
            delta = 100 * (part[metric].mean() - zero[metric].mean())
            p = welch_p(part[metric], zero[metric]) if policy != ZERO else float("nan")
            row += [f"{delta:+.2f}" if policy != ZERO else "—", "—" if np.isnan(p) else f"{p:.3f}"]
            if metric == "final_val_accuracy" and policy != ZERO and delta > 0 and p < 0.05:
                winners.append(policy)
        if policy in algos:
            row += [mean_std(part.train_wall_seconds, scale=1.0, digits=0),
                    f"{part.env_steps_per_second.mean():,.0f}", f"{100 * part.env_step_share.mean():.0f} %"]
        else:
            row += ["—", "—", "—"]
        rows.append(row)
    n = results.seed.nunique()
    if winners:
        verdict = f"Beats plain SGD on final validation accuracy (Welch p < 0.05, {n} seeds): {', '.join(winners)}."
    else:
        verdict = f"No policy beats plain SGD (the zero action) on final validation accuracy at p < 0.05 over {n} seed(s)."
    return markdown_table(header, rows), verdict


def welch_p(a: pd.Series, b: pd.Series) -> float:
    """Two-sided p-value of Welch's t-test; nan with fewer than two samples or no variance."""
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
