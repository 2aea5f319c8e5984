"""Fitted on fixed shapes or on drawn ones: which any-shape ENN ranks the MLPs the env's task family draws?

Two fitting zoos of one data set, of the same number of runs, steps and regime law (SGD, momentum and Adam from
the default distribution):

- the shape family (`agents.enn.zoo_family.SHAPE_FAMILY`: 8 fixed shapes, ``--runs`` runs each);
- a task-family zoo (`agents.enn.task_zoo`) of 8 x ``--runs`` runs drawn from ``meta-train`` kept to the data set:
  every run its own depth (1-3) and widths (16-256, log-uniform), as the universal task's env draws its MLPs.

Each fits one ``any-stats`` ENN on its fit runs (the same fit settings and seed). Both are scored on every snapshot
of a fresh task-family zoo (seed ``--seed`` + 1, ``--test-runs`` runs: shapes and MLPs neither fitted on) and on
each fitting zoo's held-out runs. Kendall tau over snapshots, late in training (past the middle of a run), and MAE.

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/enn_task_zoo.py --dataset digits --runs 50 \\
        --test-runs 200 --zoo-dir runs/zoos/task --out runs/enn-task-zoo-digits
    python bench/enn_task_zoo.py --runs 3 --test-runs 6 --steps 60 --out /tmp/enn-task-zoo
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.enn.fit import fit_zoo_enn  # noqa: E402
from agents.enn.task_zoo import TaskZooSpec, train_task_zoo  # noqa: E402
from agents.enn.zoo import Zoo  # noqa: E402
from agents.enn.zoo_family import SHAPE_FAMILY, ZooFamilySpec, train_zoo_family  # noqa: E402
from agents.experiments.enn_ranking import pooled_held_out_scores  # noqa: E402
from agents.report import atomic_write_text, markdown_table  # noqa: E402
from gi_envs.task_family import TASK_SPLITS  # noqa: E402

ENCODER = "any-stats"


def task_zoo(dataset: str, runs: int, steps: int, seed: int, zoo_dir: Path | None) -> list[Zoo]:
    """A task-family zoo of `runs` runs drawn from meta-train kept to `dataset` (read from `zoo_dir` if there)."""
    tasks = replace(TASK_SPLITS["meta-train"].distribution, datasets=(dataset,))
    folder = zoo_dir / f"{dataset}-tasks-seed{seed}-{runs}x{steps}" if zoo_dir else None
    return train_task_zoo(TaskZooSpec(tasks, runs=runs, steps=steps, seed=seed), folder, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    parser.add_argument("--runs", type=int, default=50, help="runs per shape of the shape family (x8 drawn runs)")
    parser.add_argument("--test-runs", type=int, default=200, help="runs of the fresh task-family zoo scored on")
    parser.add_argument("--steps", type=int, default=1000, help="minibatch steps per run")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs of each fit (early-stopped)")
    parser.add_argument("--zoo-dir", type=Path, default=None, help="keep every zoo here, or reuse it")
    parser.add_argument("--seed", type=int, default=0, help="the fitting zoos' seed (and the fits'); test: seed + 1")
    parser.add_argument("--out", type=Path, default=Path("runs/enn-task-zoo"))
    args = parser.parse_args()
    start = time.perf_counter()
    family_folder = args.zoo_dir / f"{args.dataset}-family-seed{args.seed}-{args.runs}x{args.steps}" \
        if args.zoo_dir else None
    fitting = {
        f"shape family ({len(SHAPE_FAMILY)} shapes x {args.runs} runs)": train_zoo_family(
            ZooFamilySpec(args.dataset, SHAPE_FAMILY, args.runs, args.steps, seed=args.seed), family_folder,
            progress=False),
        f"task-family zoo ({len(SHAPE_FAMILY) * args.runs} drawn runs)": task_zoo(
            args.dataset, len(SHAPE_FAMILY) * args.runs, args.steps, args.seed, args.zoo_dir)}
    test = task_zoo(args.dataset, args.test_runs, args.steps, args.seed + 1, args.zoo_dir)
    print(f"zoos in {time.perf_counter() - start:.0f} s ({len(test)} shapes among the {args.test_runs} test runs)",
          flush=True)
    rows = []
    for name, zoos in fitting.items():
        fit_start = time.perf_counter()
        enn = fit_zoo_enn(zoos, ENCODER, epochs=args.epochs, seed=args.seed, progress=False)
        fitted = time.perf_counter() - fit_start
        fresh = f"fresh task-family zoo, every snapshot of {args.test_runs} runs"
        for what, scores in ((fresh, pooled_held_out_scores(enn, test, every_run=True)),
                             ("its own held-out runs", pooled_held_out_scores(enn, zoos))):
            rows.append([name, what, f"{scores['kendall_tau']:.3f}", f"{scores['kendall_tau_late']:.3f}",
                         f"{100 * scores['mae']:.1f}", str(scores["n"]), f"{fitted:.0f}"])
    table = markdown_table(["fitted on", "scored on", "Kendall tau", "tau, late training", "MAE (points)",
                            "snapshots", "fit s"], rows)
    report = (f"{ENCODER} ENNs on {args.dataset}, {args.steps} steps per run, fit seed {args.seed} "
              f"({time.perf_counter() - start:.0f} s in all):\n\n{table}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.md", report)
    print(report)


if __name__ == "__main__":
    main()
