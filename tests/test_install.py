"""Installed as users install it: a regular (non-editable) `pip install` into a fresh venv, used from an
empty directory, finds its shipped configs and ENNs, and trains."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO


def test_a_regular_install_trains_from_an_empty_directory(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (torch alone is gigabytes) come from the project's venv, read as a plain path: its .pth
    # files, the editable hook among them, are not processed, so `agents` can only come from the new install.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                              "--disable-pip-version-check", str(REPO)], capture_output=True, text=True, env=env)
    assert install.returncode == 0, install.stderr[-3000:]

    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import agents, agents.configs; print(agents.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True, env=env).stdout
    assert where.startswith(str(site)), where
    train = subprocess.run([str(venv / "bin" / "grad-instructor"), "train", "--algo", "ppo", "--timesteps", "128",
                            "--out", "x", "--wandb-mode", "disabled", "--eval-episodes", "2"],
                           cwd=work, capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "On 2 unseen MLPs" in train.stdout
    assert (work / "x" / "model.zip").is_file() and (work / "x" / "config.yaml").is_file()
    usage = subprocess.run([str(venv / "bin" / "grad-instructor"), "--help"], cwd=work, capture_output=True,
                           text=True, env=env).stdout
    assert usage.startswith("usage: grad-instructor")
    shipped = subprocess.run([str(python), "-c", "from agents import ENN; enn = ENN.pretrained('digits-64-32-10'); "
                              "print(enn.mlp_spec.layer_shapes)"], cwd=work, capture_output=True, text=True, env=env)
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    assert shipped.stdout.strip() == "((32, 64), (10, 32))"  # the shipped ENN files are package data
    floor = ("from scipy import stats; import numpy as np; from agents import ENN\n"
             "from agents.enn.zoo_family import ZooFamilySpec, train_zoo_family\n"
             "from agents.experiments.enn_ranking import enn_predictions\n"
             "enn = ENN.pretrained('digits-any')\n"
             "zoos = train_zoo_family(ZooFamilySpec('digits', ((48,), (64, 32, 16)), runs=8, steps=150, seed=98), "
             "progress=False)\n"
             "p = np.concatenate([enn_predictions(enn, z, z.run >= 0) for z in zoos])\n"
             "print(enn.shapes_read, '|', stats.kendalltau(p, np.concatenate([z.val_accuracy for z in zoos]))[0])")
    any_shape = subprocess.run([str(python), "-c", floor], cwd=work, capture_output=True, text=True, env=env)
    assert any_shape.returncode == 0, any_shape.stderr[-3000:]
    shapes, tau = any_shape.stdout.strip().split(" | ")
    assert shapes == "digits MLPs (64 inputs, 10 classes) of 1 to 3 hidden layers of widths 16 to 256"
    assert float(tau) > 0.6  # the floor of tests/test_pretrained.py
