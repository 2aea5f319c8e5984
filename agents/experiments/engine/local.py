"""The local engine: cells one after another in this process."""

from __future__ import annotations

import shutil
import tempfile
import traceback
from pathlib import Path

from agents.experiments.engine.matrix import SCRATCH_PREFIX, Cell, MatrixRun, Work, run_cell


def run_local(todo: list[Cell], work: Work, matrix: MatrixRun, threads: int) -> None:
    """Run each cell in a scratch folder beside the matrix, trying again as `matrix` says."""
    for cell in todo:
        attempt, again = 0, True
        while again:
            attempt += 1
            matrix.bar.update(running=1)
            scratch = Path(tempfile.mkdtemp(dir=matrix.out, prefix=SCRATCH_PREFIX))
            try:
                seconds = run_cell(work, cell, scratch, threads, "local")
            except KeyboardInterrupt:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            except Exception:  # a cell's failure must not stop the matrix
                shutil.rmtree(scratch, ignore_errors=True)
                again = matrix.failed(cell, attempt, traceback.format_exc(), running=0)
            else:
                matrix.succeeded(cell, scratch, seconds, running=0)
                again = False
