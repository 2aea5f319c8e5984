"""The optimizers a user would pick instead of an agent, on exactly the MLPs the agents' benchmark judges.

For each benchmark seed s the evaluation MLPs are `evaluation_seeds(s, episodes)`: the same MLPs (initial
weights, regime, data order) an agent trained with seed s is judged on. Every reference policy of the
benchmark (zero action, best constant, schedule, per-instance oracle) and every competitor of
`agents.experiments.competitors.COMPETITORS` runs on them; the tuned ones choose their knob on the
reference-tuning MLPs by mean final validation accuracy (`competitor_report`).

    python bench/competitors.py --task randomized --seeds 0 1 2 3 4 --out runs/competitors-digits
    GI_DATA_DIR=../shared/data python bench/competitors.py --datasets mnist --seeds 0 1 2 --out runs/competitors-mnist
    python bench/competitors.py --env-kwargs "{randomize_regime: wide-lr}" --out runs/competitors-digits-wide-lr
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml

from agents.experiments.competitor_tables import competitor_report
from agents.experiments.competitors import COMPETITORS
from agents.report import atomic_write_text
from agents.rl.tasks import TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(TASKS), default="randomized")
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="benchmark seeds (MLP sets)")
    parser.add_argument("--episodes", type=int, default=None, help="evaluation MLPs per seed (default: the task's)")
    parser.add_argument("--tuning-episodes", type=int, default=None, help="tuning MLPs (default: the task's)")
    parser.add_argument("--competitors", nargs="+", default=list(COMPETITORS), help="rows (default: all)")
    parser.add_argument("--env-kwargs", type=yaml.safe_load, default=None,
                        help="env changes over the task's, e.g. '{randomize_regime: wide-lr}' (out of distribution)")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.csv, results.md, settings.json")
    args = parser.parse_args()
    report = competitor_report(args.task, args.datasets, args.seeds, args.episodes, args.tuning_episodes,
                               args.competitors, progress=lambda line: print(line, flush=True),
                               env_changes=args.env_kwargs)
    print("\n" + report.markdown)
    print("\nSettings:\n" + "\n".join(f"- {k}: {v}" for k, v in report.settings.items()))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "results.csv", pd.DataFrame(report.records).to_csv(index=False))
        atomic_write_text(args.out / "results.md", report.markdown + "\n")
        atomic_write_text(args.out / "settings.json", json.dumps(report.settings, indent=1))


if __name__ == "__main__":
    main()
