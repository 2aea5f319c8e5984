"""The default configs that ship with the package (the repository's `configs/`, installed as `agents.configs`)."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

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


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: ``1e-3`` and ``3E+4`` are floats.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``); users write ``1e-3``.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                     |[0-9][0-9_]*[eE][-+]?[0-9]+
                     |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                     |[-+]?\.(?:inf|Inf|INF)
                     |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML `text` (numbers as YAML 1.2 reads them); a syntax error names `where` in one line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ValueError(f"{where} is not valid YAML: {detail}") from None
