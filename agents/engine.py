"""Run a matrix of independent cells in-process or on Ray, never losing a finished cell.

A cell is one unit of work that fills one folder (for the agent benchmark: train one algorithm
on one seed and data set). Both engines run the same `work(cell, folder)` function and deliver
its folder the same way:

- the cell works in a scratch folder (on a Ray worker, that worker's own disk);
- when it returns, its folder is moved into `out/<cell path>` with one atomic rename (from a
  Ray worker it travels back to the driver as a tar archive first, so a cluster needs no shared
  file system);
- a cell that raises, or whose Ray worker dies, is tried again up to `attempts` times in all,
  then recorded as failed (`out/<cell path>/failed.json`, with the error) while the matrix goes on;
- `resume` skips every cell whose folder is already finished.

`local` runs cells one after another in this process. `ray` submits each cell as a Ray task
declaring `cpus_per_cell` CPUs: without an address it starts a Ray cluster on this machine
(on 127.0.0.1 only), with one it joins that cluster (`auto`, `HOST:PORT` or `ray://HOST:10001`).
Workers need this project installed; no shared file system is needed.
Both set torch's thread count to `cpus_per_cell` inside the cell, so a cell computes the same
numbers on either engine.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from agents.report import atomic_write_text

ENGINES = ("local", "ray")
DISTRIBUTED_EXTRA = "distributed"
FAILED_FILE = "failed.json"
CELL_FILE = "cell.json"
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keeps a Ray node on 127.0.0.1 (see import_ray)


@dataclass(frozen=True)
class Cell:
    """One cell of a matrix: its coordinates, and the folder (relative to the matrix's) it fills."""

    key: tuple[Any, ...]
    path: str

    def __str__(self) -> str:
        return self.path


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
    """Move a finished cell's scratch folder to `final` in one rename, replacing a failed record there."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(scratch, final)


def record_failure(final: Path, cell: Cell, attempts: int, error: str) -> None:
    atomic_write_text(final / FAILED_FILE, json.dumps({"cell": list(cell.key), "attempts": attempts, "error": error},
                                                      indent=2))


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
        self.line(f"FAILED {cell} after {attempts} attempt(s): {error.strip().splitlines()[-1]}")

    def close(self) -> None:
        self.bar.close()


def run_matrix(
    cells: Sequence[Cell],
    work: Work,
    out: Path,
    is_finished: Callable[[Cell, Path], bool],
    engine: str = "local",
    resume: bool = False,
    cpus_per_cell: int = 1,
    attempts: int = 2,
    ray_address: str | None = None,
    progress: bool = True,
) -> MatrixOutcome:
    """Run every cell not already finished (with `resume`); see the module docstring.

    :param is_finished: whether a cell's folder holds a finished, matching result.
    :param attempts: tries per cell before it is recorded as failed (at least 1).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known engines: {list(ENGINES)}")
    if attempts < 1 or cpus_per_cell < 1:
        raise ValueError(f"attempts={attempts} and cpus_per_cell={cpus_per_cell} must be at least 1")
    if ray_address and engine != "ray":
        raise ValueError("--ray-address needs --engine ray")
    if len({c.path for c in cells}) != len(cells):
        raise ValueError("cells must have distinct paths")
    out.mkdir(parents=True, exist_ok=True)
    outcome = MatrixOutcome()
    todo = []
    for cell in cells:
        if resume and is_finished(cell, out / cell.path):
            outcome.kept.append(cell)
        else:
            todo.append(cell)
    bar = Progress(len(cells), len(outcome.kept), progress)
    if outcome.kept:
        bar.line(f"kept {len(outcome.kept)} finished cell(s) already in {out}")
    try:
        if engine == "local":
            _run_local(todo, work, out, cpus_per_cell, attempts, outcome, bar)
        else:
            _run_ray(todo, work, out, cpus_per_cell, attempts, ray_address, outcome, bar)
    finally:
        bar.close()
    return outcome


def _run_local(todo: list[Cell], work: Work, out: Path, threads: int, attempts: int, outcome: MatrixOutcome,
               bar: Progress) -> None:
    for cell in todo:
        final = out / cell.path
        for attempt in range(1, attempts + 1):
            bar.update(running=1)
            scratch = Path(tempfile.mkdtemp(dir=out, prefix=".cell-"))
            try:
                seconds = run_cell(work, cell, scratch, threads, "local")
            except KeyboardInterrupt:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            except Exception:  # a cell's failure must not stop the matrix
                shutil.rmtree(scratch, ignore_errors=True)
                error = traceback.format_exc()
                if attempt < attempts:
                    bar.line(f"retrying {cell} (attempt {attempt} failed: {error.strip().splitlines()[-1]})")
                    continue
                record_failure(final, cell, attempt, error)
                outcome.failed[cell] = error
                bar.cell_failed(cell, attempt, error, running=0)
            else:
                install(scratch, final)
                outcome.finished.append(cell)
                bar.cell_done(cell, seconds, running=0)
            break


# ---------------------------------------------------------------- Ray


def import_ray(loopback: bool = False):
    """`ray`, or an ImportError naming the extra that installs it.

    Ray reads its environment once, at import. `loopback` keeps every node it starts on 127.0.0.1
    (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`; on Linux, Ray otherwise binds the machine's network
    address even when told 127.0.0.1); a driver joining a multi-node cluster must not set it.
    Token authentication, which `ray start --head` and `ray.init()` enable, must be on in a driver
    that joins by address (else InvalidAuthToken).
    """
    if loopback:
        os.environ.update(LOOPBACK_ENV)
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"--engine ray needs Ray, which comes with the [{DISTRIBUTED_EXTRA}] extra: "
                          f"pip install -e '.[{DISTRIBUTED_EXTRA}]'") from error
    return ray


def is_loopback(address: str | None) -> bool:
    """Whether a Ray address is this machine's loopback (or absent: a new cluster here)."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def start_ray(address: str | None, log_to_driver: bool = False) -> bool:
    """Connect to Ray: join `address`, or start a cluster on this machine bound to 127.0.0.1.

    :return: whether this call started (or joined) Ray, i.e. whether the caller should shut it down.
    """
    ray = import_ray(loopback=is_loopback(address))
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=log_to_driver, configure_logging=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=log_to_driver,
                 configure_logging=False, _node_ip_address="127.0.0.1")
    return True


def _remote_cell(work: Work, cell: Cell, threads: int) -> tuple[bytes, float]:
    """Inside a Ray worker: run the cell in a scratch folder; return that folder as a tar archive
    and the seconds the work took."""
    scratch = Path(tempfile.mkdtemp(prefix="gi-cell-"))
    try:
        seconds = run_cell(work, cell, scratch, threads, "ray")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(scratch, arcname=".", filter=_portable)
        return buffer.getvalue(), seconds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _portable(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave out links to absolute paths (W&B links its core log in the worker's home): they would
    dangle on the driver's machine."""
    return None if member.issym() and member.linkname.startswith("/") else member


def unpack(archive: bytes, out: Path, final: Path) -> None:
    """Extract a cell's archive beside the matrix, then install it with one rename."""
    scratch = Path(tempfile.mkdtemp(dir=out, prefix=".cell-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(scratch, filter="data")
        install(scratch, final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _run_ray(todo: list[Cell], work: Work, out: Path, threads: int, attempts: int, address: str | None,
             outcome: MatrixOutcome, bar: Progress) -> None:
    started = start_ray(address)
    import ray

    try:
        remote = ray.remote(_remote_cell).options(num_cpus=threads, max_retries=0)
        work_ref = ray.put(work)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        if threads > cluster_cpus:
            raise ValueError(f"--cpus-per-cell {threads} exceeds the Ray cluster's {cluster_cpus} CPU(s): "
                             "no cell could ever be scheduled")
        slots = cluster_cpus // threads  # cells the cluster runs at once
        pending: dict[Any, tuple[Cell, int]] = {}

        def running() -> int:
            return min(len(pending), slots)

        def submit(cell: Cell, attempt: int) -> None:
            pending[remote.remote(work_ref, cell, threads)] = (cell, attempt)

        for cell in todo:
            submit(cell, 1)
        bar.line(f"Ray: {len(todo)} cell(s), {threads} CPU(s) each, {slots} at a time on this cluster")
        bar.update(running())
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell, attempt = pending.pop(ready[0])
            final = out / cell.path
            try:
                archive, seconds = ray.get(ready[0])
            except Exception as error:  # the cell raised, or its worker died
                message = str(error)
                if attempt < attempts:
                    bar.line(f"retrying {cell} (attempt {attempt} failed: {message.strip().splitlines()[-1]})")
                    submit(cell, attempt + 1)
                    bar.update(running())
                    continue
                record_failure(final, cell, attempt, message)
                outcome.failed[cell] = message
                bar.cell_failed(cell, attempt, message, running())
                continue
            unpack(archive, out, final)
            outcome.finished.append(cell)
            bar.cell_done(cell, seconds, running())
    finally:
        if started:
            ray.shutdown()
