"""Writing files so that a crash never leaves a half-written one: temporary file, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write to; renamed onto `path` if the block succeeds,
    deleted if it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_torch_save(payload: Any, path: str | os.PathLike) -> None:
    """`torch.save(payload, path)` through a temporary file in the same folder and an atomic rename."""
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def load_torch_payload(path: str | os.PathLike, file_format: str, what: str, writer: str) -> dict[str, Any]:
    """A dict written by `atomic_torch_save` with ``format`` = `file_format`, read without unpickling objects.

    :param what: how errors name the file ("ENN file"); `writer` names what writes such files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not an {what} written by {writer}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise ValueError(f"{path} is not an {what} (expected format {file_format!r})")
    return payload
