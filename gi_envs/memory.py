"""Refuse a size the machine cannot hold before allocating it: an estimate against the memory available now.

A fixed cap would refuse what a big machine holds and allow what a small one does not; an
allocation that fails half-way ends in a MemoryError or a torch RuntimeError long after the
command started. `check_memory` compares an estimate of what a structure needs with what the
operating system says is available, and names both.
"""

from __future__ import annotations

import os
from pathlib import Path

FLOAT_BYTES = 4  # float32 everywhere in the training core
MEMINFO = Path("/proc/meminfo")


class MemoryRefused(ValueError):
    """A size that needs more memory than the machine has available; the message names the estimate."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where it is unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def readable_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    raise AssertionError("unreachable")


def check_memory(needed_bytes: float, what: str) -> None:
    """Raise `MemoryRefused` when `what` needs more than the memory available now.

    :param what: names the structure and the sizes that make it big, e.g. ``"1,000,000 MLPs of 64-32-10"``.
    """
    available = available_memory()
    if available is not None and needed_bytes > available:
        raise MemoryRefused(f"{what} needs about {readable_bytes(needed_bytes)} of memory, and this machine has "
                            f"{readable_bytes(available)} available: make it smaller")
