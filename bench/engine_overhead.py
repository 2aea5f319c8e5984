"""Per-cell scheduling overhead of the Ray engine against the local engine, on tiny cells.

Every cell does the same small, fixed piece of work (a few hundred SGD steps of one digits MLP
on the shared batched trainer, then one small JSON file), so what differs between engines is
what each adds around it: the local engine a scratch folder and a rename; Ray a task, a worker,
a tar archive sent back to the driver, and the same rename. Ray's cluster start is timed
apart, once. One run, one table; ratios are to the local engine of the same run.

    python bench/engine_overhead.py                 # 40 cells, 1 CPU per cell
    python bench/engine_overhead.py --cells 100 --steps 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from agents.experiments.engine import Cell, EngineOptions, run_matrix, start_ray
from agents.report import markdown_table
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.spec import MLPSpec
from gi_envs.training import Training


class TinyCell:
    """`steps` SGD steps of one 64-32-10 digits MLP seeded by the cell, then one result file."""

    def __init__(self, steps: int):
        self.steps = steps

    def __call__(self, cell: Cell, folder: Path) -> None:
        data = load_dataset("digits")
        training = Training(MLPSpec("digits", (32,)), data, 1)
        training.reset(0, cell.key[0], Regime(lr=0.1, batch_size=32))
        training.run(self.steps)
        accuracy = float(training.evaluate(data.val)[1][0])
        (folder / "result.json").write_text(json.dumps({"val_accuracy": accuracy}))


def time_engine(engine: str, cells: int, steps: int, cpus_per_cell: int) -> float:
    """Wall seconds to run `cells` tiny cells on `engine` into a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        outcome = run_matrix([Cell((i,), f"cell{i}") for i in range(cells)], TinyCell(steps), Path(out),
                             lambda c, f: False,
                             options=EngineOptions(engine=engine, cpus_per_cell=cpus_per_cell, progress=False))
        seconds = time.perf_counter() - start
    if outcome.failed or len(outcome.finished) != cells:
        raise RuntimeError(f"{engine}: {len(outcome.failed)} cell(s) failed")
    return seconds


def time_direct(cells: int, steps: int) -> float:
    """Wall seconds for the same work called in a plain loop: no engine at all."""
    work = TinyCell(steps)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for i in range(cells):
            folder = Path(out) / f"cell{i}"
            folder.mkdir()
            work(Cell((i,), folder.name), folder)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200, help="SGD steps per cell (0: only the file)")
    args = parser.parse_args()

    torch.set_num_threads(1)  # what every cell uses (1 CPU per cell)
    start = time.perf_counter()
    start_ray(None)  # a cluster on this machine, on 127.0.0.1
    ray_start = time.perf_counter() - start
    import ray

    try:
        time_direct(2, args.steps)  # warm up: data loaded, kernels initialised
        time_engine("ray", 2, args.steps, 1)  # warm up: workers started, modules imported
        direct = time_direct(args.cells, args.steps)
        local = time_engine("local", args.cells, args.steps, 1)
        on_ray = time_engine("ray", args.cells, args.steps, 1)
        slots = int(ray.cluster_resources().get("CPU", 1))
    finally:
        ray.shutdown()
    rows = [[name, f"{seconds:.2f}", f"{1000 * seconds / args.cells:.1f}", f"{seconds / local:.2f}x",
             f"{1000 * (seconds * parallel - direct) / args.cells:+.1f}"]
            for name, seconds, parallel in [("no engine (plain loop)", direct, 1), ("local engine", local, 1),
                                            (f"ray engine, {slots} cells at a time", on_ray, slots)]]
    print(f"{args.cells} tiny cells ({args.steps} SGD steps of a 64-32-10 digits MLP and one file each), "
          f"1 CPU per cell; Ray cluster start (timed apart, once): {ray_start:.1f} s\n")
    print(markdown_table(["engine", "wall (s)", "ms / cell", "wall / local engine",
                          "overhead, CPU-ms / cell"], rows))
    print("\nCPU-ms per cell: wall x cells at a time, minus the plain loop's, per cell (Ray's assumes its "
          f"{slots} slots were busy throughout).")


if __name__ == "__main__":
    main()
