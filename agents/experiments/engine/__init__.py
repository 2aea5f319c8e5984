"""Run a matrix of independent cells in-process or on Ray, never losing a finished cell.

`matrix` holds the protocol (cells, folders, retries, progress); `local` and `ray_engine` are the
two engines; `run` picks one for `run_matrix`. Imports go one way: run -> engines -> matrix.
"""

from agents.experiments.engine.matrix import (
    CELL_FILE,
    ENGINES,
    FAILED_FILE,
    Cell,
    EngineOptions,
    MatrixOutcome,
    read_failure,
)
from agents.experiments.engine.ray_engine import LOOPBACK_ENV, start_ray
from agents.experiments.engine.run import run_matrix

__all__ = [
    "CELL_FILE",
    "ENGINES",
    "FAILED_FILE",
    "LOOPBACK_ENV",
    "Cell",
    "EngineOptions",
    "MatrixOutcome",
    "read_failure",
    "run_matrix",
    "start_ray",
]
