"""Writing files so that a crash never leaves a half-written one: temporary file, then rename."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

PARTIAL = ".partial"  # in the name of every temporary file `replacing` writes
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_partial(path: Path) -> bool:
    """Whether `path` is a temporary file of `replacing` (left behind only by a killed process)."""
    return path.name.startswith(".") and PARTIAL in path.name


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write to; renamed onto `path` if the block succeeds,
    deleted if it raises. The file gets the mode a plain `open` would give (0o666 less the umask), and
    temporaries of `path` that a killed process left behind are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{prefix}*{PARTIAL}{path.suffix}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=f"{PARTIAL}{path.suffix}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as error:  # a full disk names the temporary file, or nothing: say which file was not written
        if error.filename == str(path):
            raise
        raise type(error)(error.errno, f"{path} was not written ({error.strerror or error}); the old file, if any, "
                          "is as it was") from error
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_torch_save(payload: Any, path: str | os.PathLike) -> None:
    """`torch.save(payload, path)` through a temporary file in the same folder and an atomic rename."""
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def first_sentence(error: BaseException, limit: int = 120) -> str:
    """An error's type and first sentence, without terminal colour codes: torch's load errors run to
    several hundred characters of advice that does not apply to a file we wrote."""
    text = " ".join(ANSI_CODE.sub("", str(error)).split())
    if not text:  # a bare `raise SomeError` (a truncated file's struct or assertion error) has only its type
        return type(error).__name__
    return f"{type(error).__name__}: {text.split('. ')[0][:limit]}"


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
        raise ValueError(f"{path} is not an {what} written by {writer}: it is truncated, damaged or of another kind "
                         f"({first_sentence(err)})") from err
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise ValueError(f"{path} is not an {what} (expected format {file_format!r})")
    return payload
