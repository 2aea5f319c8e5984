"""The errors a user can cause that are not plain bad values, and errors that name parameters.

Library code names its own parameters (``out='runs/x'``, ``resume=True``) so that its messages read
right from Python; the command line shows the flag a user typed for each of them instead.
`parameter_error` builds such an error: its message is written once, with a ``{name}`` field for
every parameter it names, and `for_command_line` renders it with flags (`agents.cli` finds each
parameter's flag by its `dest`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

NAME_ONLY = object()  # a parameter named without a value: just its name in Python, just its flag on the command line


class MissingDependency(ImportError):
    """An optional package (an extra) is missing, or installed but broken; the message says how to fix it."""


def _python_text(name: str, value: object) -> str:
    if value is NAME_ONLY:
        return name
    return f"{name}={str(value)!r}" if isinstance(value, PurePath) else f"{name}={value!r}"


def _render(template: str, parameters: Mapping[str, object], text: Callable[[str, object], str]) -> str:
    for name, value in parameters.items():
        template = template.replace("{" + name + "}", text(name, value))
    return template


def parameter_error(kind: type[Exception], template: str, **parameters: object) -> Exception:
    """An exception of `kind` whose message names `parameters` (name -> value, or `NAME_ONLY`) through
    ``{name}`` fields of `template`: as ``name=value`` for Python readers."""
    error = kind(_render(template, parameters, _python_text))
    error.template, error.parameters = template, parameters  # type: ignore[attr-defined]
    return error


def for_command_line(error: BaseException, flag_of: Callable[[str], str]) -> str:
    """The message of `error` with every parameter it names shown as its flag and value (a flag alone for True)."""
    parameters: Mapping[str, Any] | None = getattr(error, "parameters", None)
    if parameters is None:
        return str(error)

    def text(name: str, value: object) -> str:
        flag = flag_of(name)
        return flag if value is NAME_ONLY or value is True else f"{flag} {value}"

    return _render(error.template, parameters, text)  # type: ignore[attr-defined]
