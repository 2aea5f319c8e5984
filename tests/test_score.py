"""`grad-instructor score`: checkpoints ranked by an ENN, bad files named, the same numbers as ENN.predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    # its "zoo": fresh MLPs at init scales 0.5 to 2, a.pt among them in distribution
    zoo = [[w.detach() * scale for w in (m[0].weight, m[2].weight)]
           for m, scale in zip([SPEC.sequential() for _ in range(32)], np.linspace(0.5, 2.0, 32))]
    enn.encoder.standardize(enn.inputs_of([torch.stack([z[i] for z in zoo]) for i in (0, 1)]))
    enn.metadata["quality"] = {"mae": 0.031}
    enn.save(tmp_path / "enn.pt")
    main(["score", str(folder), "--enn", str(tmp_path / "enn.pt"), "--out", str(tmp_path / "scores.csv")])
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "scores.csv")
    expected = dict(zip(["a.pt", "b.pth", "c.pt"], ENN.load(tmp_path / "enn.pt").predict(models)))
    assert sorted(Path(p).name for p in table.checkpoint) == sorted(expected)
    for row in table.itertuples():  # in the printed table's units: percent and points
        assert row.predicted_val_accuracy_percent == pytest.approx(100 * expected[Path(row.checkpoint).name], abs=1e-4)
    for part in (table[~table.outside_zoo], table[table.outside_zoo]):  # the flagged ones after the others
        assert list(part.predicted_val_accuracy_percent) == sorted(part.predicted_val_accuracy_percent, reverse=True)
    assert list(table.outside_zoo) == sorted(table.outside_zoo) and list(table["rank"]) == [1, 2, 3]
    # the held-out error (3.1 points) within the zoo's bulk, growing with the distance beyond it
    assert list(table.typical_error_points) == pytest.approx(list(3.1 * np.maximum(1, table.zoo_distance / 2)))
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
    written = pd.read_csv(tmp_path / "s.csv")
    assert "junk.ckpt" in printed and written["rank"].notna().sum() == 3
    reasons = dict(zip(written.checkpoint.map(lambda c: Path(c).name), written.note.fillna("")))
    assert reasons["junk.ckpt"].startswith("skipped: ") and "its Linear weights have shapes" in reasons["wide.pt"]
    torch.save(TwoLayers(), folder / "own.pt")
    message = cli_error(["score", str(folder / "own.pt"), "--enn", str(enn_path)], capsys)
    assert "weights_only loading refused it" in message and "pass --trust-pickles to unpickle it" in message
    main(["score", str(folder / "own.pt"), "--enn", str(enn_path), "--trust-pickles", "--out", str(tmp_path / "t.csv")])
    assert pd.read_csv(tmp_path / "t.csv")["rank"].tolist() == [1]
    assert "no shipped ENN of that name; shipped: [" in cli_error(["score", str(folder), "--enn", "cifar-mlp"], capsys)


def test_score_skips_and_reports_each_bad_file_of_a_mixed_folder_reads_safetensors_and_warns_on_tanh(
        checkpoints, tmp_path: Path, capsys, monkeypatch) -> None:
    import sys

    from safetensors.torch import save_file

    folder, models = checkpoints
    torch.save(TwoLayers(), folder / "own.pt")  # a custom class: skipped, the others still ranked
    save_file({k: v.contiguous() for k, v in models[0].state_dict().items()}, folder / "a.safetensors")
    tanh = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    torch.save(tanh, folder / "tanh.pt")
    module_dir = tmp_path / "gone"  # a class importable when saved and not when scored (a script's __main__)
    module_dir.mkdir()
    (module_dir / "my_script_model.py").write_text(
        "from torch import nn\nclass Mine(nn.Sequential):\n    pass\n")
    monkeypatch.syspath_prepend(str(module_dir))
    import my_script_model

    torch.save(my_script_model.Mine(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), folder / "script.pt")
    del sys.modules["my_script_model"]
    (module_dir / "my_script_model.py").unlink()
    enn_path = tmp_path / "enn.pt"
    untrained_value_enn(SPEC, "stats").save(enn_path)

    assert main(["score", str(folder), "--enn", str(enn_path), "--out", str(tmp_path / "m.csv")]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {folder / 'own.pt'}: weights_only loading refused it" in printed
    assert "pass --trust-pickles to unpickle it" in printed and "5 checkpoint(s) ranked" in printed
    table = pd.read_csv(tmp_path / "m.csv")
    by_name = {Path(c).name: row for c, row in zip(table.checkpoint, table.itertuples())}
    assert by_name["a.safetensors"].predicted_val_accuracy_percent == pytest.approx(
        by_name["a.pt"].predicted_val_accuracy_percent)  # the same weights, read from safetensors
    assert "activation Tanh: the ENN was made for relu MLPs" in by_name["tanh.pt"].note
    assert by_name["own.pt"].note.startswith("skipped: ") and pd.isna(by_name["own.pt"].rank)

    assert main(["score", str(folder), "--enn", str(enn_path), "--trust-pickles"]) == 0  # no --out: no CSV
    printed = capsys.readouterr().out
    assert f"skipped {folder / 'more' / 'c.pt'}" not in printed and "6 checkpoint(s) ranked" in printed
    assert f"skipped {folder / 'script.pt'}: its pickled class cannot be found here" in printed
    assert "Pass --out FILE.csv to keep the table" in printed and not Path("runs/score.csv").exists()


def test_enn_predict_unwraps_checkpoint_dicts_and_stays_in_zero_one() -> None:
    enn = untrained_value_enn(SPEC, "stats")
    model = SPEC.sequential()
    plain = enn.predict([model.state_dict()])
    assert enn.predict([{"model": model.state_dict(), "epoch": 3}]) == pytest.approx(plain)
    assert enn.predict([{"state_dict": model.state_dict()}]) == pytest.approx(plain)
    enn.set_calibration(1e3, 0.5)  # a calibration that would leave [0, 1] for any MLP off its mean
    with torch.no_grad():
        huge = SPEC.sequential()
        for layer in (huge[0], huge[2]):
            layer.weight.mul_(1e3)
    predicted = enn.predict([model, huge])
    assert ((0.0 <= predicted) & (predicted <= 1.0)).all()


def test_random_and_scaled_init_mlps_are_flagged_and_never_ranked_above_a_trained_one(tmp_path: Path, capsys) -> None:
    from gi_envs.datasets import load_dataset
    from gi_envs.regime import Regime
    from gi_envs.training import train_mlps

    trained = train_mlps(SPEC, load_dataset("digits"), Regime(lr=0.1), [0], epochs=10).to_sequential(0)
    torch.manual_seed(1)
    random_weights, scaled = SPEC.sequential(), SPEC.sequential()
    with torch.no_grad():
        for layer in (random_weights[0], random_weights[2]):
            layer.weight.normal_(0.0, 1.0)
        for layer in (scaled[0], scaled[2]):
            layer.weight.mul_(8.0)
    enn = ENN.pretrained("digits-64-32-10")
    predicted, zoo = enn.predict([trained, random_weights, scaled], flags=True)
    assert ((0.0 <= predicted) & (predicted <= 1.0)).all() and zoo.outside.tolist() == [False, True, True]
    assert "robust standard deviations from the zoo's median" in zoo.reasons[1] and zoo.reasons[0] == ""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, model in (("trained", trained), ("random", random_weights), ("scaled", scaled)):
        torch.save(model.state_dict(), folder / f"{name}.pt")
    main(["score", str(folder), "--enn", "digits-64-32-10", "--out", str(tmp_path / "s.csv")])
    table = pd.read_csv(tmp_path / "s.csv")
    assert Path(table.checkpoint[0]).name == "trained.pt" and not table.outside_zoo[0]
    assert table.outside_zoo[1:].all() and (table.typical_error_points[1:] > 2 * table.typical_error_points[0]).all()
    assert "| **yes** |" in capsys.readouterr().out
