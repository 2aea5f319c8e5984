"""The default configs that ship with the package (the repository's `configs/`, installed as `agents.configs`)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "agents.configs"


def default_config(name: str) -> Traversable:
    """The shipped config file `name` (e.g. ``ppo.yaml``), found through `importlib.resources`.

    Works from a checkout installed in editable mode and from a regular `pip install`, whatever the
    working directory.
    """
    config = files(PACKAGE) / name
    if not config.is_file():
        shipped = sorted(p.name for p in files(PACKAGE).iterdir() if p.name.endswith(".yaml"))
        raise FileNotFoundError(f"no default config {name!r}; the package ships {shipped}")
    return config


def find_config(path: str | Path) -> Path | Traversable:
    """`path` if that file exists, else the shipped config of the same name (``configs/paper_mnist.yaml``
    or ``paper_mnist.yaml`` work from any directory); a clear error when neither exists."""
    path = Path(path)
    if path.is_file():
        return path
    shipped = files(PACKAGE) / path.name
    if path.suffix in (".yaml", ".yml") and shipped.is_file():
        return shipped
    names = sorted(p.name for p in files(PACKAGE).iterdir() if p.name.endswith(".yaml"))
    raise FileNotFoundError(f"config {str(path)!r} does not exist, and the package ships no config of that name "
                            f"(it ships {names})")
