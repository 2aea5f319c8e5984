"""How much can a controller win? The zero action, the best constant and the per-instance oracle on unseen MLPs.

For each env (data set, fixed or randomized regimes): the references of `agents.rl.references` on the
same unseen MLPs (the evaluation seeds of training seed 0): the zero action, the best constant (tuned on
its own seeds) and the per-instance oracle (each MLP's own best constant of the grid, which sees the
outcome, so it bounds any controller that picks one learning rate per MLP and keeps it). Final
validation accuracy, mean over the MLPs; the best constant is tuned on it too, on 64 MLPs of its own.

    GI_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/headroom.py                  # digits and MNIST
    python bench/headroom.py --datasets digits --episodes 16
"""

from __future__ import annotations

import argparse
import time

import torch

from agents.report import markdown_table
from agents.rl.references import BEST_CONSTANT, ORACLE, ZERO, reference_curves
from agents.rl.tasks import TASKS
from agents.seeds import evaluation_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--episodes", type=int, default=64, help="unseen MLPs per env")
    parser.add_argument("--tuning-episodes", type=int, default=64, help="MLPs the best constant is tuned on")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for task in args.tasks:
            start = time.perf_counter()
            env_kwargs = {**TASKS[task].env_kwargs, "dataset": dataset}
            curves, settings = reference_curves(env_kwargs, evaluation_seeds(0, args.episodes), args.tuning_episodes,
                                                oracle=True, tune_on="final_val_accuracy")
            final = {name: 100 * curves[name].final_val_accuracy.mean() for name in (ZERO, BEST_CONSTANT, ORACLE)}
            rows.append([f"{dataset}, {task}", args.episodes, f"{final[ZERO]:.1f}",
                         f"{final[BEST_CONSTANT]:.1f} ({settings[BEST_CONSTANT]})", f"{final[ORACLE]:.1f}",
                         f"{final[ORACLE] - final[BEST_CONSTANT]:+.1f}", f"{time.perf_counter() - start:.0f}"])
            print(rows[-1], flush=True)
    print(f"\nFinal validation accuracy (%), mean over unseen MLPs; {torch.get_num_threads()} torch thread(s):\n")
    print(markdown_table(["env (task)", "MLPs", "zero action", "best constant", "per-instance oracle",
                          "oracle − best constant", "s"], rows))


if __name__ == "__main__":
    main()
