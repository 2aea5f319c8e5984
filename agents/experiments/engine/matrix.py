"""The matrix protocol both engines share: cells, their folders, one retry-or-fail path, the progress bar.

A cell is one unit of work that fills one folder (for the agent benchmark: train one algorithm
on one seed and data set). Every engine runs the same `work(cell, folder)` function and delivers
its folder the same way:

- the cell works in a scratch folder (on a Ray worker, that worker's own disk);
- when it returns, its folder is moved into `out/<cell path>` with one atomic rename;
- a cell that raises, or whose Ray worker dies, is tried again up to `attempts` times in all,
  then recorded as failed (`out/<cell path>/failed.json`, with the error) while the matrix goes on;
- `resume` skips every cell whose folder is already finished.

Both engines set torch's thread count to `cpus_per_cell` inside the cell, so a cell computes the
same numbers on either engine.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from agents.errors import parameter_error
from agents.outputs import (
    FOLDER,
    REPLACING_FILE,
    Output,
    check_output,
    claim_output,
    plain,
    remove_empty_parents,
    shown,
)
from agents.report import atomic_write_text
from gi_envs.files import is_partial

ENGINES = ("local", "ray")
ANY_MATRIX = Output(FOLDER, plain("*"), resumable=True)  # a matrix of no named command: everything in out is its own
SCRATCH_PREFIX = ".cell-"  # a cell's folder while it works, beside the matrix
FAILED_FILE = "failed.json"
CELL_FILE = "cell.json"


@dataclass(frozen=True)
class Cell:
    """One cell of a matrix: its coordinates, and the folder (relative to the matrix's) it fills."""

    key: tuple[Any, ...]
    path: str

    def __str__(self) -> str:
        return self.path


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class EngineOptions:
    """How a matrix runs, validated once.

    :param engine: ``local`` (cells one after another in this process) or ``ray`` (one Ray task each).
    :param resume: keep cells already finished in the output folder (and clear what killed runs left there).
    :param overwrite: delete what a previous run of the command wrote in the output folder first. Without
        `resume` or `overwrite`, a folder holding such a run is refused: rerunning into it would mix two
        matrices (`agents.outputs`).
    :param cpus_per_cell: CPUs (torch threads) each cell declares and uses.
    :param attempts: tries per cell before it is recorded as failed.
    :param ray_address: a Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); default:
        start one on this machine, bound to 127.0.0.1.
    :param progress: show the progress bar and a line per cell.
    """

    engine: str = "local"
    resume: bool = False
    overwrite: bool = False
    cpus_per_cell: int = 1
    attempts: int = 2
    ray_address: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; known engines: {list(ENGINES)}")
        if self.attempts < 1 or self.cpus_per_cell < 1:
            raise ValueError(f"attempts={self.attempts} and cpus_per_cell={self.cpus_per_cell} must be at least 1")
        if self.engine == "local" and self.cpus_per_cell > machine_cpus():
            raise parameter_error(ValueError, f"{{cpus_per_cell}} is more than the {machine_cpus()} CPU(s) this "
                                  "process may use; the local engine runs each cell here",
                                  cpus_per_cell=self.cpus_per_cell)
        if self.ray_address and self.engine != "ray":
            raise parameter_error(ValueError, "{ray_address} needs {engine}", ray_address=self.ray_address,
                                  engine="ray")
        if self.resume and self.overwrite:
            raise parameter_error(ValueError, "{resume} keeps finished cells and {overwrite} deletes them: pass one "
                                  "of them", resume=True, overwrite=True)


@dataclass
class MatrixOutcome:
    """What happened to every cell of a run."""

    finished: list[Cell] = field(default_factory=list)  # computed now
    kept: list[Cell] = field(default_factory=list)  # already on disk (resume)
    failed: dict[Cell, str] = field(default_factory=dict)  # cell -> last error


Work = Callable[[Cell, Path], None]


def run_cell(work: Work, cell: Cell, folder: Path, threads: int, engine: str) -> float:
    """Run `work` with torch limited to `threads` threads (restored afterwards); record its cost.

    Writes `CELL_FILE` (seconds, CPUs, engine) beside the work's own files, which is what
    projections of a matrix's cost read back. :return: the seconds the work took.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        work(cell, folder)
    finally:
        torch.set_num_threads(before)
    seconds = time.perf_counter() - start
    (folder / CELL_FILE).write_text(json.dumps({"cell": list(cell.key), "seconds": seconds, "cpus": threads,
                                                "engine": engine}))
    return seconds


def install(scratch: Path, final: Path) -> None:
    """Move a finished cell's scratch folder to `final` in one rename, replacing what is there (a failed record,
    or the cell of an earlier run under overwrite), which is set aside first and removed after."""
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = final.with_name(f"{SCRATCH_PREFIX}replaced-{final.name}") if final.exists() else None
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(scratch, final)
    if aside is not None:
        shutil.rmtree(aside)


@dataclass
class Replacement:
    """What an overwrite has still to replace of an earlier run in `out`: its entries (relative paths) stay until
    a new cell takes their place, and the rest goes when the matrix is done. Kept in `REPLACING_FILE` while it
    lasts, so that a killed overwrite is finished by the next run (`resume` retrains the cells still listed)."""

    out: Path
    pending: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, out: Path) -> Replacement:
        try:
            return cls(out, set(json.loads((out / REPLACING_FILE).read_text())))
        except (OSError, ValueError, TypeError):
            return cls(out)

    def save(self) -> None:
        if self.pending:
            atomic_write_text(self.out / REPLACING_FILE, json.dumps(sorted(self.pending), indent=1))
        else:
            (self.out / REPLACING_FILE).unlink(missing_ok=True)

    def replaced(self, cell: Cell) -> None:
        """`cell`'s folder now holds this run's result (or failure record)."""
        if cell.path in self.pending:
            self.pending.discard(cell.path)
            self.save()

    def finish(self) -> list[Path]:
        """Remove what no new cell replaced (cells of the earlier matrix that this one lacks, its tables, its
        scratch), then the record. :return: what was removed."""
        removed = [self.out / p for p in sorted(self.pending)]
        for path in removed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        remove_empty_parents(self.out, removed)
        self.pending.clear()
        self.save()
        return removed


def read_failure(folder: Path) -> dict[str, Any] | None:
    """The failure record of a cell folder, if its last run failed."""
    try:
        return json.loads((folder / FAILED_FILE).read_text())
    except (OSError, ValueError):
        return None


class Progress:
    """One bar over cells (done / running / failed, ETA) and one line per finished cell; silent when disabled."""

    def __init__(self, total: int, kept: int, enabled: bool = True):
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=kept, unit="cell", disable=not enabled, dynamic_ncols=True)
        self.failed = 0
        self._start = time.perf_counter()
        self.update(0)

    def update(self, running: int) -> None:
        self.bar.set_postfix_str(f"done {self.bar.n}, running {running}, failed {self.failed}")

    def line(self, text: str) -> None:
        if self.enabled:
            tqdm.write(f"[{time.perf_counter() - self._start:7.1f} s] {text}")

    def cell_done(self, cell: Cell, seconds: float, running: int) -> None:
        self.bar.update(1)
        self.update(running)
        self.line(f"finished {cell} in {seconds:.1f} s")

    def cell_failed(self, cell: Cell, attempts: int, error: str, running: int) -> None:
        self.failed += 1
        self.bar.update(1)
        self.update(running)
        self.line(f"FAILED {cell} after {attempts} attempt(s): {last_line(error)}")

    def close(self) -> None:
        self.bar.close()


def last_line(error: str) -> str:
    """The last line of an error or traceback: what a progress line shows of it."""
    lines = error.strip().splitlines()
    return lines[-1] if lines else "(no message)"


@dataclass
class MatrixRun:
    """A matrix under way: where cells land, what happened to them, and the one retry-or-fail rule."""

    out: Path
    attempts: int
    outcome: MatrixOutcome
    bar: Progress
    replacement: Replacement

    def succeeded(self, cell: Cell, scratch: Path, seconds: float, running: int) -> None:
        """Install a finished cell's scratch folder into its place."""
        install(scratch, self.out / cell.path)
        self.replacement.replaced(cell)
        self.outcome.finished.append(cell)
        self.bar.cell_done(cell, seconds, running)

    def failed(self, cell: Cell, attempt: int, error: str, running: int) -> bool:
        """Handle a failed attempt. :return: whether to try the cell again (else it is recorded as failed)."""
        if attempt < self.attempts:
            self.bar.line(f"retrying {cell} (attempt {attempt} failed: {last_line(error)})")
            return True
        atomic_write_text(self.out / cell.path / FAILED_FILE,
                          json.dumps({"cell": list(cell.key), "attempts": attempt, "error": error}, indent=2))
        self.replacement.replaced(cell)
        self.outcome.failed[cell] = error
        self.bar.cell_failed(cell, attempt, error, running)
        return False


def prepare_output(out: Path, options: EngineOptions, command: str, output: Output) -> Replacement:
    """Make `out` ready for a matrix under the output policy (`agents.outputs`): a folder holding a previous
    run is refused unless resuming or overwriting; `resume` removes the scratch a killed run left behind;
    `overwrite` removes nothing yet: what the command wrote there is replaced cell by cell as the new cells
    finish, and the rest when the matrix is done (`Replacement`), so a failed or killed run loses no result.

    :return: what is still to be replaced (an overwrite, or one a killed run left unfinished).
    """
    if options.overwrite:
        held = check_output(out, command, output=output, overwrite=True)
        out.mkdir(parents=True, exist_ok=True)
        replacement = Replacement.read(out)
        replacement.pending |= {str(p.relative_to(out)) for p in held if p.name != REPLACING_FILE}
        replacement.save()
        if options.progress and held:
            print(f"overwriting {out}: the {len(held)} entr{'y' if len(held) == 1 else 'ies'} a previous {command} "
                  f"wrote there ({shown(held, out)}) stay until new cells replace them; what none replaces is "
                  "removed when the matrix is done")
        return replacement
    claim_output(out, command, output=output, resume=options.resume, quiet=not options.progress)
    out.mkdir(parents=True, exist_ok=True)
    if options.resume:
        remove_scratch(out)
    return Replacement.read(out)


def remove_scratch(out: Path) -> list[Path]:
    """Delete the scratch a killed run leaves under `out`: cell folders (`.cell-*`) and half-written files.

    :return: what was removed.
    """
    removed = []
    for path in sorted(out.rglob(".*")):
        if path.is_dir() and path.name.startswith(SCRATCH_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file() and is_partial(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
