"""The probing encoders (``probe``, ``probe+stats``) on a small randomized digits zoo.

They read what an MLP outputs on its probes: invariant to permuting hidden units and to reordering the
probes, differentiable in the weights (guidance works), fitted from the zoo's training inputs, saved with
their probes inside the file, and they rank held-out runs of the zoo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from agents import ENN, ENNGuidance
from agents.enn.fit import data_probes, fit_zoo_enn, untrained_value_enn
from agents.enn.probe_encoder import probe_summary
from agents.enn.zoo import Zoo
from agents.experiments.enn_ranking import enn_predictions
from gi_envs import load_dataset
from gi_envs.spec import MLPSpec
from tests.conftest import cli_error
from tests.floats import assert_float32_close
from tests.test_encoders import permuted_hidden_units
from train_agents import main


@pytest.fixture(scope="module")
def zoo(small_zoo: Zoo) -> Zoo:
    return small_zoo


@pytest.fixture(scope="module")
def enns(zoo: Zoo) -> dict[str, ENN]:
    return {encoder: fit_zoo_enn(zoo, encoder, epochs=30, progress=False) for encoder in ("probe", "probe+stats")}


def test_the_probe_summary_ignores_probe_order_and_class_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, 10, generator=generator)
    summary = probe_summary(logits)
    assert summary.shape == (3, 3 * 10 + 6) and torch.isfinite(summary).all()
    shuffled = logits[:, torch.randperm(50, generator=generator)][:, :, torch.randperm(10, generator=generator)]
    assert_float32_close(probe_summary(shuffled), summary, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encoder", ["probe", "probe+stats"])
def test_a_probing_encoder_ignores_hidden_unit_order_and_is_differentiable(enns: dict[str, ENN],
                                                                          encoder: str) -> None:
    generator = torch.Generator().manual_seed(1)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    other = permuted_hidden_units(mlp, generator)
    enn = enns[encoder]
    pair = enn.predict([mlp, other])
    assert pair[0] == pytest.approx(pair[1], abs=1e-5)
    guidance = ENNGuidance(enn, weight=1.0)
    guidance(mlp).backward()
    assert mlp[0].weight.grad.abs().sum() > 0 and mlp[2].weight.grad.abs().sum() > 0
    assert mlp[0].bias.grad.abs().sum() > 0  # the outputs depend on the biases too


def test_data_probes_come_from_the_training_split_and_travel_in_the_file(enns: dict[str, ENN], zoo: Zoo,
                                                                        tmp_path: Path) -> None:
    enn = enns["probe"]
    train = load_dataset("digits").train.x
    probes = enn.encoder.probes
    assert probes.shape == (128, 64)
    assert_float32_close(probes, data_probes("digits", 128, seed=0))
    rows = {tuple(row) for row in train.numpy().round(5)}
    assert all(tuple(row) in rows for row in probes.numpy().round(5))  # inputs of the training split, unlabeled
    enn.save(tmp_path / "probe.pt")
    loaded = ENN.load(tmp_path / "probe.pt")
    assert loaded.metadata["architecture"]["encoder"]["probes"] == "data"
    assert_float32_close(loaded.encoder.probes, probes)
    assert_float32_close(enn_predictions(loaded, zoo, zoo.held_out), enn_predictions(enn, zoo, zoo.held_out))


def test_probing_encoders_rank_held_out_runs_and_the_stats_part_measures_zoo_distance(enns: dict[str, ENN],
                                                                                    zoo: Zoo) -> None:
    held = zoo.held_out
    real = zoo.targets("current")[held]
    for encoder, enn in enns.items():
        predicted = enn_predictions(enn, zoo, held)
        tau = stats.kendalltau(predicted, real).statistic
        assert tau > 0.4, (encoder, tau)
    fresh = [MLPSpec("digits", (32,)).sequential() for _ in range(3)]
    with torch.no_grad():
        for model in fresh[1:]:
            for layer in model:
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, 1.0)
    assert np.isnan(enns["probe"].zoo_distance(fresh).distance).all()  # no weight statistics recorded
    distance = enns["probe+stats"].zoo_distance(fresh)
    assert not distance.outside[0] and distance.outside[1:].all()


def test_learned_probes_train_with_the_enn_and_a_users_inputs_replace_them(zoo: Zoo) -> None:
    learned = fit_zoo_enn(zoo, "probe", epochs=3, progress=False, encoder_options={"probes": "learned",
                                                                                     "n_probes": 16})
    assert isinstance(learned.encoder.probes, nn.Parameter)
    initial = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    assert (learned.encoder.probes - initial).abs().max() > 1e-4  # moved by the fit
    users = load_dataset("digits").train.x[:40].numpy()
    own = fit_zoo_enn(zoo, "probe", epochs=3, progress=False, probe_inputs=users)
    assert own.metadata["architecture"]["encoder"]["probes"] == "inputs"
    assert own.encoder.probes.shape == (40, 64)
    with pytest.raises(ValueError, match=r"probe inputs of shape \(5, 3\) do not fit: expected \(P, 64\)"):
        own.encoder.set_probe_inputs(torch.zeros(5, 3))


def test_bad_probe_settings_name_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"probes='images' is not known; expected one of \['data', 'gaussian'"):
        untrained_value_enn(MLPSpec(), "probe", encoder_options={"probes": "images"})
    with pytest.raises(ValueError, match=r"encoder options \['n_probe'\] are not settings of the 'probe' encoder"):
        untrained_value_enn(MLPSpec(), "probe", encoder_options={"n_probe": 8})
    with pytest.raises(ValueError, match=r"n_probes=1 is not allowed; expected at least 2"):
        untrained_value_enn(MLPSpec(), "probe", encoder_options={"n_probes": 1})


def test_fit_enn_and_score_take_probes_from_the_command_line(zoo: Zoo, tmp_path: Path, capsys) -> None:
    zoo.save(tmp_path / "zoo.npz")
    users = load_dataset("digits").train.x[100:150].numpy()
    np.save(tmp_path / "mine.npy", users)
    np.savetxt(tmp_path / "mine.csv", users[:30], delimiter=",")
    main(["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", "probe+stats", "--probes", "gaussian",
          "--n-probes", "32", "--epochs", "3", "--out", str(tmp_path / "gauss.pt")])
    assert "probe+stats ENN fitted on 32 runs" in capsys.readouterr().out
    fitted = ENN.load(tmp_path / "gauss.pt")
    assert fitted.metadata["architecture"]["encoder"]["probes"] == "gaussian"
    assert fitted.encoder.probes.shape == (32, 64)
    main(["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", "probe", "--probe-inputs",
          str(tmp_path / "mine.npy"), "--epochs", "3", "--out", str(tmp_path / "mine.pt")])
    assert_float32_close(ENN.load(tmp_path / "mine.pt").encoder.probes, torch.from_numpy(users))
    model = MLPSpec("digits", (32,)).sequential()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    main(["score", str(tmp_path / "model.pt"), "--enn", str(tmp_path / "gauss.pt"), "--probe-inputs",
          str(tmp_path / "mine.csv")])
    assert "1 checkpoint(s) ranked by the probe+stats ENN" in capsys.readouterr().out
    assert "--probes gaussian set(s) the probes, which the 'stats' encoder does not use" in cli_error(
        ["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", "stats", "--probes", "gaussian"], capsys)
    assert "are the probes themselves: drop --n-probes 8" in cli_error(
        ["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", "probe", "--probe-inputs",
         str(tmp_path / "mine.npy"), "--n-probes", "8"], capsys)
    assert "reads none; give a probing ENN" in cli_error(
        ["score", str(tmp_path / "model.pt"), "--enn", "digits-64-32-10", "--probe-inputs", str(tmp_path / "mine.csv")],
        capsys)
    (tmp_path / "bad.txt").write_text("1,2\n")
    assert "probe inputs are read from a .npy or .csv file" in cli_error(
        ["score", str(tmp_path / "model.pt"), "--enn", str(tmp_path / "gauss.pt"), "--probe-inputs",
         str(tmp_path / "bad.txt")], capsys)
    np.savetxt(tmp_path / "narrow.csv", users[:5, :3], delimiter=",")
    assert "do not fit: expected (P, 64)" in cli_error(
        ["score", str(tmp_path / "model.pt"), "--enn", str(tmp_path / "gauss.pt"), "--probe-inputs",
         str(tmp_path / "narrow.csv")], capsys)
