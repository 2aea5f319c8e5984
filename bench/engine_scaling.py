"""Cells per hour on the Ray engine with 1 and 2 CPUs per cell, and the full matrix's projected wall time.

Part 1 runs one real benchmark matrix (default: PPO and A2C, 4 seeds, 20,000 env steps on
digits) twice on a Ray cluster on this machine, with `--cpus-per-cell 1` (as many cells at a
time as there are cores) and `--cpus-per-cell 2` (each cell uses two torch threads), and
reports cells per hour and the mean cost of a cell.

Part 2 projects the full matrix, 10 algorithms x 5 seeds x 3 data sets, onto 1, 8 and 64 nodes
of 2 cores: each algorithm's cost on digits is read from a finished benchmark folder (the
engine's `cell.json`, else the training wall time in `eval.json`, which leaves out the
evaluation), scaled per data set by the measured cost of one short PPO cell on each data set
relative to digits, and by the 2-CPU speed-up measured in part 1. Cells are then packed
longest first onto the nodes' slots (greedy list scheduling), so a matrix never finishes
before its longest cell.

    python bench/engine_scaling.py --costs runs/benchmark-digits        # needs GI_DATA_DIR for mnist, fashion
    python bench/engine_scaling.py --algos ppo --seeds 0 1 --timesteps 2000 --costs runs/benchmark-digits
"""

from __future__ import annotations

import argparse
import heapq
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from agents.experiments.benchmark import run_benchmark
from agents.experiments.engine import CELL_FILE, EngineOptions
from agents.report import markdown_table
from agents.rl.algorithms import ALGORITHMS

DATASETS = ("digits", "mnist", "fashion-mnist")
FULL_SEEDS = 5
NODE_CORES = 2


def cell_seconds(folder: Path) -> dict[str, list[float]]:
    """Seconds per finished cell of a benchmark folder, by algorithm (digits cells only)."""
    costs: dict[str, list[float]] = defaultdict(list)
    for eval_file in sorted(folder.glob("digits/*/seed*/eval.json")):
        cell_file = eval_file.with_name(CELL_FILE)
        seconds = (json.loads(cell_file.read_text())["seconds"] if cell_file.is_file()
                   else json.loads(eval_file.read_text())["train_wall_seconds"])
        costs[eval_file.parent.parent.name].append(seconds)
    return costs


def run_matrix_on_ray(algos: list[str], seeds: list[int], timesteps: int, cpus: int) -> tuple[float, list[float]]:
    """Wall seconds of the matrix on a fresh local Ray cluster, and every cell's own seconds."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = run_benchmark(algos, seeds, competitors=[], timesteps=timesteps, out=Path(out), wandb_mode="disabled",
                               options=EngineOptions(engine="ray", cpus_per_cell=cpus, progress=False))
        wall = time.perf_counter() - start
        if result.outcome.failed:
            raise RuntimeError(f"{len(result.outcome.failed)} cell(s) failed")
        seconds = [json.loads(f.read_text())["seconds"] for f in Path(out).glob(f"*/*/seed*/{CELL_FILE}")]
    return wall, seconds


def dataset_factors(timesteps: int) -> dict[str, float]:
    """Cost of one short PPO cell on each data set, relative to digits (local engine, 1 CPU)."""
    seconds = {}
    for dataset in DATASETS:
        with tempfile.TemporaryDirectory() as out:
            run_benchmark(["ppo"], [0], competitors=[], timesteps=timesteps, out=Path(out), datasets=[dataset],
                          wandb_mode="disabled", options=EngineOptions(progress=False))
            seconds[dataset] = json.loads(next(Path(out).glob(f"*/*/seed*/{CELL_FILE}")).read_text())["seconds"]
    return {d: s / seconds["digits"] for d, s in seconds.items()}


def packed_wall(cell_costs: list[float], slots: int) -> float:
    """Wall time of running cells of the given costs on `slots` parallel slots, longest first."""
    finish = [0.0] * slots
    for cost in sorted(cell_costs, reverse=True):
        heapq.heappush(finish, heapq.heappop(finish) + cost)
    return max(finish)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["ppo", "a2c"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--costs", type=Path, required=True, help="a finished digits benchmark with all 10 algorithms")
    parser.add_argument("--factor-timesteps", type=int, default=2048, help="env steps of the per-data-set PPO cell")
    args = parser.parse_args()

    n_cells = len(args.algos) * len(args.seeds)
    runs = {cpus: run_matrix_on_ray(args.algos, args.seeds, args.timesteps, cpus) for cpus in (1, 2)}
    rows = [[cpus, n_cells, f"{wall:.0f}", f"{3600 * n_cells / wall:.0f}", f"{sum(s) / len(s):.1f}",
             f"{runs[1][0] / wall:.2f}x"] for cpus, (wall, s) in runs.items()]
    print(f"Part 1: {'+'.join(args.algos)} x seeds {args.seeds} x {args.timesteps} env steps on digits, "
          f"Ray cluster on this machine ({NODE_CORES} cores)\n")
    print(markdown_table(["CPUs per cell", "cells", "wall (s)", "cells / hour", "mean cell (s)",
                          "throughput vs 1 CPU/cell"], rows))
    speedup = (sum(runs[1][1]) / len(runs[1][1])) / (sum(runs[2][1]) / len(runs[2][1]))

    costs = cell_seconds(args.costs)
    missing = sorted(set(ALGORITHMS) - set(costs))
    if missing:
        raise SystemExit(f"{args.costs} has no finished digits cells of {missing}: finish that benchmark first")
    factors = dataset_factors(args.factor_timesteps)
    per_algo = {algo: sum(v) / len(v) for algo, v in costs.items() if algo in ALGORITHMS}
    cells_1cpu = [per_algo[a] * factors[d] for a in per_algo for d in DATASETS for _ in range(FULL_SEEDS)]
    total = sum(cells_1cpu)
    print(f"\nPart 2: the full matrix, {len(per_algo)} algorithms x {FULL_SEEDS} seeds x {len(DATASETS)} data sets "
          f"= {len(cells_1cpu)} cells of {args.timesteps} env steps; {total / 3600:.1f} CPU-hours at 1 CPU per cell.")
    print("Per-algorithm cell cost on digits (s): " + ", ".join(f"{a} {c:.0f}" for a, c in sorted(per_algo.items())))
    print("Data-set cost relative to digits (one PPO cell): "
          + ", ".join(f"{d} {f:.2f}x" for d, f in factors.items())
          + f"; a cell on 2 CPUs takes 1/{speedup:.2f} of its 1-CPU time (part 1).\n")
    rows = []
    for nodes in (1, 8, 64):
        row = [nodes, nodes * NODE_CORES]
        for cpus in (1, 2):
            slots = nodes * NODE_CORES // cpus
            cells = cells_1cpu if cpus == 1 else [c / speedup for c in cells_1cpu]
            row.append(hours(packed_wall(cells, slots)))
        rows.append(row)
    print(markdown_table(["nodes (2 cores each)", "cores", "projected wall, 1 CPU/cell", "projected wall, 2 CPUs/cell"],
                         rows))
    print(f"\nThe longest single cell (1 CPU) takes {hours(max(cells_1cpu))}: no cluster finishes the matrix sooner.")


if __name__ == "__main__":
    main()
