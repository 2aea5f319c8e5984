"""The one check of a number a user gives: its kind (an integer, or any real), finite, inside its interval."""

from __future__ import annotations

import math

import numpy as np


def check_number(name: str, value: object, low: float, high: float = math.inf, *, low_open: bool = True,
                 integer: bool = False, where: str = "") -> float:
    """`value` as a float (or an int) in (low, high] (or [low, high]), or a ValueError naming `name`, the value
    and the interval. Booleans, strings, NaN and infinities are refused."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))
    ok = ok and (low < value if low_open else low <= value) and value <= high  # type: ignore[operator]
    if not ok:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{where}{name}={value!r} is not allowed; expected {what} in "
                         f"{'(' if low_open else '['}{low:g}, {high:g}]")
    return int(value) if integer else float(value)  # type: ignore[arg-type]


def is_number(value: object, low: float, high: float = math.inf, *, low_open: bool = True,
              integer: bool = False) -> bool:
    """Whether `check_number` takes `value`."""
    try:
        check_number("value", value, low, high, low_open=low_open, integer=integer)
    except ValueError:
        return False
    return True
