"""The Ray engine: one Ray task per cell, on a cluster started here (127.0.0.1 only) or joined by address.

Without an address it starts a Ray cluster on this machine, bound to 127.0.0.1; with one it joins
that cluster (`auto`, `HOST:PORT` or `ray://HOST:10001`). Workers need this project installed; a
finished cell's folder travels back to the driver as a tar archive, so no shared file system is
needed.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.errors import NAME_ONLY, MissingDependency, parameter_error
from agents.experiments.engine.matrix import SCRATCH_PREFIX, Cell, MatrixRun, Work, run_cell

DISTRIBUTED_EXTRA = "distributed"
CONNECT_TIMEOUT_S = 5.0  # how long a Ray address may stay silent before the run fails
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keeps a Ray node on 127.0.0.1 (see import_ray)


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
        raise parameter_error(MissingDependency, f"{{engine}} needs Ray, which comes with the [{DISTRIBUTED_EXTRA}] "
                              f"extra: pip install -e '.[{DISTRIBUTED_EXTRA}]'", engine="ray") from error
    return ray


def is_loopback(address: str | None) -> bool:
    """Whether a Ray address is this machine's loopback (or absent: a new cluster here)."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a ConnectionError within `timeout` seconds if nothing listens at a Ray address.

    `ray.init(address=...)` retries a silent address for ever; a TCP connection attempt says at once
    whether a head node (GCS port, or Ray Client's `ray://` port) is there. ``auto`` is left to Ray,
    which reads this machine's running cluster and fails fast without one.
    """
    if address == "auto":
        return
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise parameter_error(ValueError, "{ray_address} is not auto, HOST:PORT or ray://HOST:PORT",
                              ray_address=address)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.1, deadline - time.monotonic())):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise parameter_error(
                    ConnectionError,
                    f"no Ray cluster answers at {address} ({error.strerror or error}) after {timeout:g} s; start one "
                    f"there with `ray start --head --port={port}`"
                    + (" (Ray Client listens on 10001)" if client else "")
                    + ", or leave out {ray_address} to run a cluster on this machine",
                    ray_address=NAME_ONLY) from None
            time.sleep(0.2)


def start_ray(address: str | None, log_to_driver: bool = False) -> bool:
    """Connect to Ray: join `address`, or start a cluster on this machine bound to 127.0.0.1.

    :return: whether this call started (or joined) Ray, i.e. whether the caller should shut it down.
    """
    if address:
        check_reachable(address)
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
        _flush_wandb()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(scratch, arcname=".", filter=_portable)
        return buffer.getvalue(), seconds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _flush_wandb() -> None:
    """Wait until W&B has written the cell's runs: its service may still hold a finished run's records
    in a buffer (a `.wandb` file of only its header), and the archive must carry the whole run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None:
        wandb.teardown()


def _portable(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave out links to absolute paths (W&B links its core log in the worker's home): they would
    dangle on the driver's machine."""
    return None if member.issym() and member.linkname.startswith("/") else member


def unpack(archive: bytes, out: Path) -> Path:
    """Extract a cell's archive into a scratch folder beside the matrix (installed by the caller)."""
    scratch = Path(tempfile.mkdtemp(dir=out, prefix=SCRATCH_PREFIX))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(scratch, filter="data")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


def run_ray(todo: list[Cell], work: Work, matrix: MatrixRun, threads: int, address: str | None) -> None:
    """Submit every cell as a Ray task declaring `threads` CPUs; collect them as they finish."""
    started = start_ray(address)
    import ray

    try:
        remote = ray.remote(_remote_cell).options(num_cpus=threads, max_retries=0)
        work_ref = ray.put(work)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        if threads > cluster_cpus:
            raise parameter_error(ValueError, f"{{cpus_per_cell}} exceeds the Ray cluster's {cluster_cpus} CPU(s): "
                                  "no cell could ever be scheduled", cpus_per_cell=threads)
        slots = cluster_cpus // threads  # cells the cluster runs at once
        pending: dict[Any, tuple[Cell, int]] = {}

        def running() -> int:
            return min(len(pending), slots)

        def submit(cell: Cell, attempt: int) -> None:
            pending[remote.remote(work_ref, cell, threads)] = (cell, attempt)

        for cell in todo:
            submit(cell, 1)
        matrix.bar.line(f"Ray: {len(todo)} cell(s), {threads} CPU(s) each, {slots} at a time on this cluster")
        matrix.bar.update(running())
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell, attempt = pending.pop(ready[0])
            try:
                archive, seconds = ray.get(ready[0])
            except Exception as error:  # the cell raised, or its worker died
                if matrix.failed(cell, attempt, str(error), running()):
                    submit(cell, attempt + 1)
                    matrix.bar.update(running())
                continue
            matrix.succeeded(cell, unpack(archive, matrix.out), seconds, running())
    finally:
        if started:
            ray.shutdown()
