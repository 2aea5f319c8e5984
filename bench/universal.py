"""One controller for any MLP, judged on the meta-test splits (`gi_envs.TASK_SPLITS`) under AlgoPerf's two rulesets.

Agents trained on the ``universal`` task (``meta-train``: digits, MNIST and generated tasks, 1-3 hidden layers of
16-256 units, SGD / momentum / Adam) are rolled out on fresh MLPs of every split, beside:

- **self-tuning** references, which get no tuning on the split (what a meta-trained agent gets): the zero action
  (each MLP's base optimizer as drawn), the best constant learning-rate multiplier tuned on meta-train's tuning
  MLPs, AdamW with its lr tuned on meta-train, Prodigy at its default;
- **external tuning** references, tuned on the split's own tuning MLPs: the best constant, AdamW;
- the **per-instance oracle** over the constants (each MLP's best; it sees the outcome).

Every row runs on the same evaluation MLPs (`agents.seeds.evaluation_seeds`); tuning uses
`agents.seeds.reference_tuning_seeds`, never the evaluation MLPs or the test split. "Gap closed" is
(agent - best self-tuning) / (best external - best self-tuning) in final validation accuracy, per agent seed; the
aggregate is its interquartile mean (IQM) over the held-out splits and seeds, the protocol of the learned-optimizer
literature. Writes per-split CSV and Markdown tables, learning curves (PNG beside CSV, the oracle dashed) and a
summary JSON to --out.

    python bench/universal.py --models runs/universal-ppo-seed0/model.zip runs/universal-ppo-seed1/model.zip \
        --episodes 32 --tuning-episodes 16 --out runs/universal-splits
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.experiments.competitors import competitor_curves, competitor_named, tune_competitor  # noqa: E402
from agents.report import atomic_write_text  # noqa: E402
from agents.rl.evaluation import agent_policy  # noqa: E402
from agents.rl.export import load_agent  # noqa: E402
from agents.rl.references import CONSTANT_GRID, best_constant, constant_policy, per_instance_oracle  # noqa: E402
from agents.rl.rollout import RolloutCurves, rollout_curves  # noqa: E402
from agents.rl.tasks import task_named  # noqa: E402
from agents.seeds import evaluation_seeds, reference_tuning_seeds  # noqa: E402
from gi_envs.task_family import HELD_OUT_SPLITS, META_TEST_SPLITS, TASK_SPLITS  # noqa: E402

ADAMW, PRODIGY = "AdamW, lr tuned", "Prodigy, default (lr 1)"
ORACLE_ROW = "per-instance oracle over constants"
GAPS = ("gap closed (self-tuning → external)", "gap closed (constant → oracle)")
SELF, EXTERNAL, ORACLE, AGENT, POOLED = "self-tuning", "external tuning", "oracle", "agent", "agent, pooled"


def split_env_kwargs(split: str) -> dict:
    """The universal task's env arguments on `split` (its family and the env arguments it changes)."""
    return {**task_named("universal").env_kwargs, "task_family": split, **TASK_SPLITS[split].env_kwargs}


def iqm(values: list[float]) -> float:
    """The interquartile mean: the mean of the middle half."""
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    return float(ordered[n // 4: n - n // 4].mean()) if n >= 4 else float(ordered.mean())


def welch(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def judge_split(split: str, agents: list[tuple[str, int, object]], train_constant: float, train_adamw: float,
                episodes: int, tuning_episodes: int) -> dict:
    """Every row of one split on the same evaluation MLPs (`evaluation_seeds(0, episodes)`, which no agent trained
    on), with its ruleset."""
    env_kwargs = split_env_kwargs(split)
    seeds = evaluation_seeds(0, episodes)
    rows: dict[str, tuple[str, RolloutCurves]] = {}
    start = time.perf_counter()
    constants = {a: rollout_curves(env_kwargs, constant_policy(a), seeds) for a in CONSTANT_GRID}
    rows["zero action (base optimizer as drawn)"] = (SELF, constants[0.0])
    rows[f"best constant, tuned on meta-train (a = {train_constant:+.2f})"] = (SELF, constants[train_constant])
    external_constant, _ = best_constant(env_kwargs, reference_tuning_seeds(tuning_episodes))
    rows[f"best constant, tuned on the split (a = {external_constant:+.2f})"] = (EXTERNAL, constants[external_constant])
    adamw = competitor_named(ADAMW)
    rows[f"AdamW, lr {train_adamw:g} tuned on meta-train"] = (SELF, competitor_curves(
        env_kwargs, adamw.make, train_adamw, seeds)[0])
    external_adamw = tune_competitor(env_kwargs, adamw, tuning_episodes).value
    rows[f"AdamW, lr {external_adamw:g} tuned on the split"] = (EXTERNAL, competitor_curves(
        env_kwargs, adamw.make, external_adamw, seeds)[0])
    prodigy = competitor_named(PRODIGY)
    with contextlib.redirect_stdout(io.StringIO()):  # Prodigy prints a line per optimizer it builds
        rows[PRODIGY] = (SELF, competitor_curves(env_kwargs, prodigy.make, prodigy.default, seeds)[0])
    rows[ORACLE_ROW] = (ORACLE, per_instance_oracle(constants)[0])
    reference_seconds = time.perf_counter() - start
    for name, seed, model in agents:
        rows[f"{name} seed {seed}"] = (AGENT, rollout_curves(env_kwargs, agent_policy(model), seeds))

    finals = {name: curves.final_val_accuracy for name, (_, curves) in rows.items()}
    by_algo: dict[str, list[str]] = {}
    for name, seed, _ in agents:
        by_algo.setdefault(name, []).append(f"{name} seed {seed}")
    pooled = {f"{algo} ({len(names)} seeds, pooled)": names for algo, names in by_algo.items() if len(names) > 1}
    self_best = max((n for n, (rule, _) in rows.items() if rule == SELF), key=lambda n: finals[n].mean())
    external_best = max((n for n, (rule, _) in rows.items() if rule == EXTERNAL), key=lambda n: finals[n].mean())
    for name, names in pooled.items():  # every seed on the same MLPs: their runs side by side
        rows[name] = (POOLED, RolloutCurves.concatenate([rows[n][1] for n in names]))
        finals[name] = rows[name][1].final_val_accuracy
    table = []
    for name, (rule, curves) in rows.items():
        final = finals[name]
        table.append({"policy": name, "ruleset": rule, "final val acc (%)": 100 * final.mean(),
                      "± (std over MLPs)": 100 * final.std(), "final test acc (%)": 100 * curves.test_accuracy.mean(),
                      "Welch p vs best self-tuning": welch(final, finals[self_best])
                      if name != self_best else float("nan")})
    curves = {name: (100 * c.val_accuracy.mean(axis=0)).tolist() for name, (_, c) in rows.items()}
    return with_gaps({"split": split, "held_out": TASK_SPLITS[split].held_out or "nothing", "episodes": episodes,
                      "best_self_tuning": self_best, "best_external": external_best, "rows": table,
                      "curves": curves, "reference_seconds": reference_seconds})


def with_gaps(result: dict) -> dict:
    """`result` with, for every row, its points above the best self-tuning reference, the gap it closes between
    the best self-tuning and the best externally tuned reference (the issue's measure; undefined where both tie),
    and the gap it closes between the constant tuned on meta-train and the per-instance oracle over constants."""
    means = {row["policy"]: row["final val acc (%)"] for row in result["rows"]}
    self_best, external = means[result["best_self_tuning"]], means[result["best_external"]]
    constant = next(v for k, v in means.items() if k.startswith("best constant, tuned on meta-train"))
    oracle = means[ORACLE_ROW]

    def closed(value: float, low: float, high: float) -> float:
        return (value - low) / (high - low) if abs(high - low) > 1e-6 else float("nan")

    for row in result["rows"]:
        value = row["final val acc (%)"]
        row.pop("gap closed", None)
        row["Δ vs best self-tuning (pts)"] = value - self_best
        row["gap closed (self-tuning → external)"] = closed(value, self_best, external)
        row["gap closed (constant → oracle)"] = closed(value, constant, oracle)
    return result


def markdown(result: dict) -> str:
    header = list(result["rows"][0])
    lines = [f"### {result['split']} (held out: {result['held_out']}; {result['episodes']} MLPs)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["rows"]:
        cells = [f"{v:.3f}" if k in (*GAPS, "Welch p vs best self-tuning") else f"{v:+.1f}" if k.startswith("Δ")
                 else f"{v:.1f}" if isinstance(v, float) else str(v) for k, v in row.items()]
        lines.append("| " + " | ".join(c.replace("nan", "—") for c in cells) + " |")
    return "\n".join(lines)


def plot_curves(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    shown = [result["best_self_tuning"], result["best_external"], ORACLE_ROW,
             *[r["policy"] for r in result["rows"] if r["ruleset"] == POOLED]]
    if not any(r["ruleset"] == POOLED for r in result["rows"]):
        shown += [r["policy"] for r in result["rows"] if r["ruleset"] == AGENT]
    for name in shown:
        axis.plot(result["curves"][name], label=name, linestyle="--" if "oracle" in name else "-")
    axis.set_xlabel("env step")
    axis.set_ylabel("mean validation accuracy (%)")
    axis.set_title(f"{result['split']}: held out {result['held_out']}", fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / f"curves_{result['split']}.png", dpi=110)
    plt.close(figure)
    lines = ["env_step," + ",".join(f'"{n}"' for n in result["curves"])]
    lines += [f"{t}," + ",".join(f"{result['curves'][n][t]:.4f}" for n in result["curves"])
              for t in range(len(next(iter(result["curves"].values()))))]
    atomic_write_text(out / f"curves_{result['split']}.csv", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", type=Path, default=[],
                        help="model.zip files of agents trained with --task universal (none: references only)")
    parser.add_argument("--splits", nargs="+", default=list(META_TEST_SPLITS), choices=list(TASK_SPLITS))
    parser.add_argument("--episodes", type=int, default=32, help="evaluation MLPs per split")
    parser.add_argument("--tuning-episodes", type=int, default=16, help="tuning MLPs (meta-train's and each split's)")
    parser.add_argument("--out", type=Path, default=Path("runs/universal-splits"))
    parser.add_argument("--from-summary", nargs="+", type=Path, default=[],
                        help="rebuild tables, curves and the aggregate from these folders' summary.json (runs of "
                             "some splits each, merged) instead of running anything")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    agents = []
    for path in args.models:
        model, algo, env_kwargs = load_agent(path)
        if env_kwargs.get("task_family") != "meta-train":
            parser.error(f"--models: {path} was not trained on the universal task "
                         f"(task_family={env_kwargs.get('task_family')!r}); train with --task universal")
        seed = yaml.safe_load((path.parent / "config.yaml").read_text())["seed"]
        agents.append((algo, int(seed), model))
    if args.from_summary:
        summaries = [json.loads((folder / "summary.json").read_text()) for folder in args.from_summary]
        tuned = {k: summaries[0][k] for k in ("train_constant", "train_adamw_lr")}
        by_split = {r["split"]: with_gaps(r) for summary in summaries for r in summary["splits"]}
        results = [by_split[name] for name in TASK_SPLITS if name in by_split]
    else:
        tuning = reference_tuning_seeds(args.tuning_episodes)
        train_kwargs = split_env_kwargs("meta-train")
        train_constant, _ = best_constant(train_kwargs, tuning)
        train_adamw = tune_competitor(train_kwargs, competitor_named(ADAMW), args.tuning_episodes).value
        print(f"tuned on meta-train ({args.tuning_episodes} MLPs): constant a = {train_constant:+.2f}, AdamW lr "
              f"{train_adamw:g}", flush=True)
        tuned = {"train_constant": train_constant, "train_adamw_lr": train_adamw}
        results = []
        for split in args.splits:
            results.append(judge_split(split, agents, train_constant, train_adamw, args.episodes,
                                       args.tuning_episodes))
            print(markdown(results[-1]) + "\n", flush=True)
    report(results, tuned, args.out)
    return 0


def report(results: list[dict], tuned: dict, out: Path) -> None:
    """Tables, curves and the aggregate over the held-out splits: IQM over (split, agent seed) of each gap."""
    gaps: dict[str, dict[str, list[float]]] = {}
    for result in results:
        plot_curves(result, out)
        for row in result["rows"]:
            if row["ruleset"] == AGENT and result["split"] in HELD_OUT_SPLITS:
                algo = gaps.setdefault(row["policy"].rsplit(" seed ", 1)[0], {g: [] for g in GAPS})
                for gap in GAPS:
                    algo[gap].append(row[gap])
    aggregate = {}
    for name, values in gaps.items():
        aggregate[name] = {"cells": len(values[GAPS[0]])}
        for gap in GAPS:
            defined = [v for v in values[gap] if v == v]
            aggregate[name][f"IQM {gap}"] = iqm(defined) if defined else float("nan")
            aggregate[name][f"cells where {gap} is defined"] = len(defined)
    lines = ["| agent | held-out cells | IQM gap closed (self-tuning → external) | defined in | "
             "IQM gap closed (constant → oracle) |", "|---|---|---|---|---|"]
    for name, value in aggregate.items():
        first, second = (value[f"IQM {g}"] for g in GAPS)
        lines.append(f"| {name} | {value['cells']} | {'undefined' if first != first else f'{first:.3f}'} | "
                     f"{value[f'cells where {GAPS[0]} is defined']} | {second:.3f} |")
    text = "\n\n".join(markdown(r) for r in results) + "\n\n### Aggregate over the held-out splits\n\n" + \
        "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(out / "tables.md", text)
    atomic_write_text(out / "summary.json", json.dumps({**tuned, "splits": results, "aggregate": aggregate}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
