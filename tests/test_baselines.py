"""RMSGD and LFP as trainers: the papers' own statements, the guide rows, and clear errors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from agents.experiments.baselines import LFPTrainer, RMSGDTrainer, make_trainer
from agents.experiments.guide import GuideSetting, run_guide, train_row, tuned_lr
from gi_envs.batched_mlp import BatchedMLP, MinibatchSampler
from gi_envs.datasets import load_dataset
from tests.conftest import cli_error

TINY = {"dataset": "digits", "hidden_sizes": [16], "lr": 0.05, "batch_size": 32, "epochs": 2}


def digits_mlp(seed: int = 0, hidden: int = 32) -> tuple[torch.nn.Sequential, MinibatchSampler]:
    """A default-initialised ReLU MLP for digits, as the guide rows build it, and its data order."""
    data = load_dataset("digits")
    mlp = BatchedMLP((data.n_features, hidden, data.n_classes), 1)
    sampler = MinibatchSampler(len(data.train), 32, 1)
    generator = torch.Generator().manual_seed(seed)
    mlp.initialize(0, generator)
    sampler.reset(0, generator)
    return mlp.to_sequential(0), sampler


def test_lfp_feedback_is_abs_w_scaled_gradient_descent() -> None:
    """Theorem 1 of the LFP paper: on a ReLU MLP, feedback = -|w| * dL/dw of the batch-summed cross-entropy."""
    data = load_dataset("digits")
    model, _ = digits_mlp()
    x, y = data.train.x[:64], data.train.y[:64]
    feedback = LFPTrainer(model, lr=1.0).feedback(x, y)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for p, f, g in zip(model.parameters(), feedback, grads):
        expected = -p.detach().abs() * g
        assert f.shape == p.shape
        # equal up to LFP-epsilon's stabiliser (1e-6 added to pre-activations near zero)
        assert (f - expected).norm() <= 1e-3 * expected.norm(), (f - expected).abs().max()
        assert expected.abs().max() > 1e-3  # not trivially zero


def test_rmsgd_per_layer_learning_rates_change_across_epochs() -> None:
    data = load_dataset("digits")
    model, sampler = digits_mlp()
    trainer = RMSGDTrainer(model, lr=0.1)
    history = [trainer.layer_lrs]
    for _ in range(3):
        for _ in range(len(data.train) // 32):
            idx = sampler.next_indices()[0]
            trainer.step(data.train.x[idx], data.train.y[idx])
        trainer.end_epoch()
        history.append(trainer.layer_lrs)
    assert history[0] == [0.1, 0.1]
    changed = [history[e] != history[e + 1] for e in range(1, 3)]
    assert any(changed), history  # the rates move between epochs ...
    assert len({tuple(h) for h in history}) >= 3, history
    assert any(h[0] != h[1] for h in history[1:]), history  # ... and differ between layers


def test_baseline_rows_train_from_the_same_start_and_learn() -> None:
    setting = GuideSetting.from_settings("tiny", TINY)
    rows = {row: train_row(setting, row, [0, 1], None, lr=lr) for row, lr in
            [("bp", 0.05), ("rmsgd", 0.05), ("lfp", 1.0)]}
    for row, result in rows.items():
        assert result.per_seed.val_accuracy.between(0.6, 1.0).all(), (row, result.per_seed)
    # two epochs: RMSGD equals SGD until its first epoch_step, then its rates adapt
    assert not rows["rmsgd"].per_seed.val_accuracy.equals(rows["bp"].per_seed.val_accuracy)
    again = train_row(setting, "lfp", [0, 1], None, lr=1.0)
    assert again.per_seed.equals(rows["lfp"].per_seed)  # seeded: same numbers


def test_lr_grid_tunes_on_validation_and_the_table_shows_it(tmp_path: Path) -> None:
    setting = GuideSetting.from_settings("tiny", {**TINY, "lr_grid": [0.001, 0.1]})
    lr, scores = tuned_lr(setting, "bp-tuned")
    assert set(scores) == {0.001, 0.1} and lr == 0.1 and scores[0.1] > scores[0.001]
    assert tuned_lr(setting, "bp") == (0.05, {})  # the reference row keeps the setting's lr
    config = tmp_path / "guide.yaml"
    config.write_text(yaml.safe_dump({"seeds": [0, 1], "rows": ["bp", "rmsgd", "lfp"], "lr_grid": [0.1, 1.0],
                                      "settings": {"tiny": TINY}}))
    report = run_guide(config, tmp_path / "out", wandb_mode="disabled")
    assert "| RMSGD, lr tuned |" in report and "| LFP, lr tuned |" in report
    assert "chosen from [0.1, 1.0] on validation accuracy" in report
    out = run_guide(config, tmp_path / "only-bp", wandb_mode="disabled", rows=["bp"], setting_names=["tiny"])
    assert "RMSGD" not in out and "| conventional BP |" in out
    assert (tmp_path / "only-bp" / "mlps" / "tiny_bp.pt").is_file()  # the checkpoint `inspect` reads
    with pytest.raises(ValueError, match=r"setting_names: unknown setting\(s\) \['huge'\]"):
        run_guide(config, tmp_path / "x", wandb_mode="disabled", setting_names=["huge"])


def test_unknown_trainer_and_missing_extra_fail_clearly(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    model, _ = digits_mlp()
    with pytest.raises(ValueError, match=r"unknown trainer 'adam'; known trainers: \['rmsgd', 'lfp'\]"):
        make_trainer("adam", model, 0.1)
    assert re.search(r"unknown row/trainer\(s\) \['adam'\]; known: \[.*'rmsgd', 'lfp'\]",
                     cli_error(["guide", "--config", "configs/paper_digits.yaml", "--rows", "bp", "adam"], capsys))
    monkeypatch.setitem(sys.modules, "rmsgd", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"\[baselines\] extra"):
        make_trainer("rmsgd", model, 0.1)
