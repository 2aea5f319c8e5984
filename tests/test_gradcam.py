"""Grad-CAM of the ENN (`inspect`) and the lottery-ticket measurements, on digits MLPs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from agents.enn.fit import FitSettings
from agents.enn.gradcam import enn_gradcam
from agents.enn.supervised import episode_snapshots, fit_supervised_enn, untrained_supervised_enn
from agents.experiments.lottery import CRITERIA, keep_top, lottery_report, lottery_study
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.spec import MLPSpec
from gi_envs.training import train_mlps
from tests.conftest import cli_error
from tests.floats import assert_float32_close
from train_agents import main

ENV = {"hidden_sizes": [16], "episode_length": 5, "steps_per_action": 20, "eval_samples": 0}


@pytest.fixture(scope="module")
def enn():
    """A small supervised ENN fitted to real digits training runs (64-16-10 MLPs)."""
    zoo = episode_snapshots(ENV, 160, seed=0)
    return fit_supervised_enn(ENV, zoo, FitSettings(epochs=5))


@pytest.fixture(scope="module")
def mlps() -> BatchedMLP:
    return train_mlps(MLPSpec("digits", (16,)), load_dataset("digits"), Regime(lr=0.1, batch_size=32), [0, 1, 2],
                      epochs=3)


def test_heatmaps_have_the_weight_shapes_and_are_finite_and_non_negative(enn, mlps) -> None:
    single = enn_gradcam(enn, [w[0] for w in mlps.weights])
    batched = enn_gradcam(enn, mlps.weights)
    for heat, many, w in zip(single, batched, mlps.weights):
        assert heat.shape == w.shape[1:] and many.shape == w.shape
        assert torch.isfinite(heat).all() and (heat >= 0).all()
        assert_float32_close(heat, many[0], rtol=1e-5, atol=1e-5)
    assert any(h.max() > 0 for h in single)  # not all cut away by the ReLU


def test_a_heatmap_changes_when_the_enns_input_changes(enn, mlps) -> None:
    first = enn_gradcam(enn, [w[0] for w in mlps.weights])
    other = enn_gradcam(enn, [w[1] for w in mlps.weights])
    assert any(not torch.allclose(a, b) for a, b in zip(first, other))
    scaled = enn_gradcam(enn, [3 * w[0] for w in mlps.weights])
    assert any(not torch.allclose(a, b) for a, b in zip(first, scaled))
    assert enn.training is False  # Captum left the module's mode alone


def test_keep_top_keeps_exactly_k_percent_per_matrix_and_the_largest() -> None:
    scores = torch.arange(2 * 4 * 10, dtype=torch.float).reshape(2, 4, 10)
    mask = keep_top(scores, 25, torch.Generator().manual_seed(0))
    assert mask.sum(dim=(1, 2)).tolist() == [10, 10]
    assert mask[0].flatten()[-10:].all() and not mask[0].flatten()[:-10].any()
    ties = keep_top(torch.zeros(1, 4, 10), 10, torch.Generator().manual_seed(0))  # all tied: a random 4
    assert ties.sum() == 4


def test_pruning_study_on_digits_produces_its_table(enn, mlps) -> None:
    spearman, pruning = lottery_study(enn, mlps, load_dataset("digits").test, keep_percents=(10, 50))
    assert len(spearman) == 3 * 2 and spearman.spearman.between(-1, 1).all()
    assert len(pruning) == 3 * len(CRITERIA) * 3  # models x criteria x (100, 10, 50)
    full = pruning[pruning.keep_percent == 100].test_accuracy
    assert full.min() > 0.8  # three epochs of SGD on digits
    mean = pruning.groupby(["criterion", "keep_percent"]).test_accuracy.mean()
    assert mean["magnitude", 50] > mean["random", 10]  # magnitude pruning keeps what matters
    report = lottery_report(spearman, pruning, "digits")
    for criterion in CRITERIA:
        assert f"| {criterion} |" in report
    assert "| keep top k % by | k = 10 | k = 50 |" in report and "layer 1:" in report


def test_inspect_writes_heatmaps_tables_and_wandb(tmp_path: Path, enn, mlps) -> None:
    enn.save(tmp_path / "enn.pt")
    mlps.save(tmp_path / "mlps.pt", dataset="digits", seeds=[0, 1, 2], row="bp")
    out = tmp_path / "inspect"
    main(["inspect", "--enn", str(tmp_path / "enn.pt"), "--mlp", str(tmp_path / "mlps.pt"), "--mlp-index", "1",
          "--keep", "10", "--out", str(out)])
    assert (out / "gradcam_model1.png").stat().st_size > 5000 and (out / "pruning.png").stat().st_size > 5000
    arrays = np.load(out / "gradcam_model1.npz")
    assert arrays["gradcam_0"].shape == (16, 64) and arrays["abs_w_1"].shape == (10, 16)
    assert set(pd.read_csv(out / "pruning.csv").keep_percent) == {10, 100}
    run_dir = next((out / "wandb").glob("offline-run-*"))
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    summary = json.loads(subprocess.run([wandb_cli, "leet", "inspect", "--summary", "--json", str(run_dir)],
                                        capture_output=True, text=True, check=True).stdout)["summary"]
    assert summary["gradcam"]["_type"] == "image-file"
    assert summary["spearman"]["_type"] == "table-file" and summary["pruning"]["_type"] == "table-file"


def test_bad_checkpoints_and_foreign_enns_fail_clearly(tmp_path: Path, enn, mlps, capsys) -> None:
    enn.save(tmp_path / "enn.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    inspect = ["inspect", "--enn", str(tmp_path / "enn.pt"), "--out", str(tmp_path / "o"), "--mlp"]
    assert "is not an MLP checkpoint" in cli_error([*inspect, str(garbage)], capsys)
    assert "no MLP checkpoint at" in cli_error([*inspect, str(tmp_path / "missing.pt")], capsys)
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected format"):
        BatchedMLP.load(tmp_path / "other.pt")
    wide = BatchedMLP((64, 32, 10), 2)
    wide.save(tmp_path / "wide.pt", dataset="digits")
    assert "made for an MLP with weight shapes [(16, 64), (10, 16)]" in cli_error([*inspect, str(tmp_path / "wide.pt")],
                                                                                  capsys)
    with pytest.raises(ValueError, match="made for an MLP with weight shapes"):
        enn_gradcam(untrained_supervised_enn({"hidden_sizes": [8]}), mlps.weights)
    tanh = BatchedMLP((64, 16, 10), 2, activation="tanh")
    tanh.save(tmp_path / "tanh.pt", dataset="digits")
    assert "made for relu MLPs on 'digits', the checkpoint holds tanh MLPs" in cli_error(
        [*inspect, str(tmp_path / "tanh.pt")], capsys)
