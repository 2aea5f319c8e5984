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
    if path.is_dir():
        raise IsADirectoryError(f"config {str(path)!r} is a folder; give a YAML file")
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


MAX_EXPANDED_VALUES = 1_000_000  # a config is a few hundred values; aliases nested 9 deep expand to 10**8


def expanded_size(value: Any, sizes: dict[int, int] | None = None) -> int:
    """How many values `value` holds once every YAML alias is expanded (each shared part counted once per use,
    computed once: linear in the document's size, not in its expansion)."""
    sizes = {} if sizes is None else sizes
    if not isinstance(value, dict | list):
        return 1
    if id(value) not in sizes:
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        sizes[id(value)] = 1 + sum(expanded_size(child, sizes) for child in children)
    return sizes[id(value)]


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML `text` (numbers as YAML 1.2 reads them); a syntax error names `where` in one line, and so
    does a document whose aliases expand it beyond `MAX_EXPANDED_VALUES` (a "billion laughs")."""
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ValueError(f"{where} is not valid YAML: {detail}") from None
    try:
        size = expanded_size(value)
    except RecursionError:  # an alias inside itself
        size = MAX_EXPANDED_VALUES + 1
    if size > MAX_EXPANDED_VALUES:
        raise ValueError(f"{where} expands to more than {MAX_EXPANDED_VALUES:,} values through its aliases (&name / "
                         "*name); a config holds a few hundred: write the values out")
    return value
