"""`run_matrix`: every cell of a matrix, on the engine its options name (see `matrix` for the protocol)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from agents.experiments.engine.local import run_local
from agents.experiments.engine.matrix import (
    ANY_MATRIX,
    Cell,
    EngineOptions,
    MatrixOutcome,
    MatrixRun,
    Progress,
    Work,
    prepare_output,
)
from agents.experiments.engine.ray_engine import check_reachable, run_ray
from agents.outputs import Output


def run_matrix(cells: Sequence[Cell], work: Work, out: Path, is_finished: Callable[[Cell, Path], bool], *,
               options: EngineOptions | None = None, command: str = "matrix",
               output: Output | None = None) -> MatrixOutcome:
    """Run every cell not already finished (with `options.resume`); see `agents.experiments.engine.matrix`.

    :param is_finished: whether a cell's folder holds a finished, matching result.
    :param command: who runs the matrix, as messages name it; `output` is what it writes in `out` (default:
        everything there), which a rerun without `resume` or `overwrite` is refused over (`agents.outputs`).
    """
    options = options or EngineOptions()
    paths = [c.path for c in cells]
    if len(set(paths)) != len(paths):
        twice = sorted({p for p in paths if paths.count(p) > 1})
        raise ValueError(f"cells must have distinct paths; given more than once: {twice}")
    if options.engine == "ray" and options.ray_address:  # a silent address fails now, before anything is written
        check_reachable(options.ray_address)
    replacement = prepare_output(out, options, command, output or ANY_MATRIX)
    outcome = MatrixOutcome()
    todo = []
    for cell in cells:  # a cell an unfinished overwrite has still to replace is no finished cell of this matrix
        if options.resume and cell.path not in replacement.pending and is_finished(cell, out / cell.path):
            outcome.kept.append(cell)
        else:
            todo.append(cell)
    bar = Progress(len(cells), len(outcome.kept), options.progress)
    if outcome.kept:
        bar.line(f"kept {len(outcome.kept)} finished cell(s) already in {out}")
    matrix = MatrixRun(out, options.attempts, outcome, bar, replacement)
    try:
        if options.engine == "local":
            run_local(todo, work, matrix, options.cpus_per_cell)
        else:
            run_ray(todo, work, matrix, options.cpus_per_cell, options.ray_address)
    finally:
        bar.close()
    replacement.finish()  # every cell is done: what the earlier run left and no new cell replaced goes now
    return outcome
