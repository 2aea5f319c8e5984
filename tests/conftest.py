"""Shared fixtures: the offline data root and small, fast env settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests read MNIST and Fashion-MNIST from ../shared/data unless GI_DATA_DIR says otherwise.
if not os.environ.get("GI_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["GI_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root holding torchvision's MNIST/ and FashionMNIST/ folders.

    Skips on a machine without it, except in CI, where a missing data root is an error.
    """
    root = Path(os.environ.get("GI_DATA_DIR", SHARED_DATA))
    if not (root / "MNIST" / "raw").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs MNIST under {root} (set GI_DATA_DIR)")
        pytest.skip(f"no MNIST under {root}; set GI_DATA_DIR to run this test")
    return root


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}-thread{'s' if n > 1 else ''}")
def torch_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run an equivalence test at 1 and at 2 torch threads: sums are ordered differently in each."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the command line on `argv`, expecting a user error: exit code 2 and one line on stderr, which is returned."""
    from agents.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, (exit_info.value.code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def run_without_sb3(code: str) -> list[str]:
    """Run Python `code` in a fresh interpreter where any import of Stable-Baselines3 or sb3-contrib
    fails; its stdout lines."""
    import subprocess
    import sys

    script = "import sys\nsys.modules['stable_baselines3'] = None; sys.modules['sb3_contrib'] = None\n" + code
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.fixture(scope="session")
def small_zoo():
    """A 40-run zoo of digits 64-32-10 MLPs trained any way (any-optimizer regimes, 300 steps each): what the
    encoder tests fit and score ENNs on."""
    from agents.enn.zoo import ZooSpec, train_zoo

    return train_zoo(ZooSpec(runs=40, steps=300, seed=3), progress=False)
