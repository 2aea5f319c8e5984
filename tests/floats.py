"""Float comparisons that hold on every machine: float32 sums in another order differ in the last bits.

Two computations of the same float32 value along different paths (batched against single matmuls,
2 torch threads against 1) agree to a few units in the last place, relative to the value's own
magnitude: a diverged loss of 9e29 may differ by 1.6e-7 relative. `rtol` covers that at any
magnitude; `atol` covers values near zero. Bit-exact comparisons are only for the same computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FLOAT32_RTOL = 1e-5  # about 80 float32 ulps: generous for reordered sums, tight for any real bug
FLOAT32_ATOL = 1e-6


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float64)


def assert_float32_close(actual: Any, expected: Any, atol: float = FLOAT32_ATOL, err_msg: str = "",
                         rtol: float = FLOAT32_RTOL) -> None:
    """`actual` equals `expected` (arrays or tensors of one shape) up to float32 rounding of differently ordered
    sums (inf and nan equal); a test whose path adds more rounding (many optimizer steps) widens `rtol`/`atol`."""
    actual, expected = _array(actual), _array(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape} {err_msg}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)
