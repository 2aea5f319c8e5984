"""`grad-instructor score`: checkpoints ranked by an ENN, bad files named, the same numbers as ENN.predict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from agents.enn.fit import untrained_value_enn
from agents.enn.network import ENN
from gi_envs.spec import MLPSpec
from tests.conftest import cli_error
from train_agents import main

SPEC = MLPSpec("digits", (32,))


class TwoLayers(nn.Module):  # a user's own class: not one weights_only loading knows
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture
def checkpoints(tmp_path: Path) -> tuple[Path, list[nn.Module]]:
    folder = tmp_path / "ckpts"
    (folder / "more").mkdir(parents=True)
    torch.manual_seed(0)
    models = [SPEC.sequential() for _ in range(3)]
    with torch.no_grad():
        models[1][0].weight.mul_(3.0)  # three MLPs that differ
        models[2][2].weight.zero_()
    torch.save(models[0].state_dict(), folder / "a.pt")
    torch.save({"state_dict": models[1].state_dict(), "epoch": 3}, folder / "b.pth")
    torch.save(models[2], folder / "more" / "c.pt")  # a whole nn.Sequential
    return folder, models


def test_score_ranks_a_checkpoint_folder_with_the_numbers_of_enn_predict(checkpoints, tmp_path: Path,
                                                                         capsys) -> None:
    folder, models = checkpoints
    enn = untrained_value_enn(SPEC, "stats")
    enn.encoder.standardize(enn.inputs_of([torch.randn(8, 32, 64) * 0.1, torch.randn(8, 10, 32) * 0.2]))
    enn.metadata["quality"] = {"mae": 0.031}
    enn.save(tmp_path / "enn.pt")
    main(["score", str(folder), "--enn", str(tmp_path / "enn.pt"), "--out", str(tmp_path / "scores.csv")])
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "scores.csv")
    expected = dict(zip(["a.pt", "b.pth", "c.pt"], ENN.load(tmp_path / "enn.pt").predict(models)))
    assert sorted(Path(p).name for p in table.checkpoint) == sorted(expected)
    for row in table.itertuples():
        assert row.predicted_accuracy == pytest.approx(expected[Path(row.checkpoint).name], abs=1e-6)
    assert list(table.predicted_accuracy) == sorted(table.predicted_accuracy, reverse=True)
    assert list(table["rank"]) == [1, 2, 3] and (table.uncertainty == 0.031).all()
    assert "| 1 |" in printed and "± 3.1" in printed and "3 checkpoint(s) ranked" in printed


def test_score_names_a_bad_file_and_refuses_unsafe_pickles_unless_trusted(checkpoints, tmp_path: Path,
                                                                          capsys) -> None:
    folder, _ = checkpoints
    torch.save(nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).state_dict(), folder / "wide.pt")
    (folder / "junk.ckpt").write_text("not a checkpoint")
    enn_path = tmp_path / "enn.pt"
    untrained_value_enn(SPEC, "stats").save(enn_path)
    main(["score", str(folder), "--enn", str(enn_path), "--out", str(tmp_path / "s.csv")])
    printed = capsys.readouterr().out
    assert "skipped " + str(folder / "wide.pt") + ": its Linear weights have shapes [(16, 64), (10, 16)] (out, in); " \
        "the ENN reads [(32, 64), (10, 32)]" in printed
    assert "junk.ckpt" in printed and len(pd.read_csv(tmp_path / "s.csv")) == 3
    torch.save(TwoLayers(), folder / "own.pt")
    message = cli_error(["score", str(folder / "own.pt"), "--enn", str(enn_path)], capsys)
    assert "weights_only loading refused it" in message and "pass --trust-pickles to unpickle it" in message
    main(["score", str(folder / "own.pt"), "--enn", str(enn_path), "--trust-pickles", "--out", str(tmp_path / "t.csv")])
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1
    assert "no shipped ENN of that name; shipped: [" in cli_error(["score", str(folder), "--enn", "cifar-mlp"], capsys)
