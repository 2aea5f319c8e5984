"""One ENN for any width and depth: the any-shape encoders read MLPs of several shapes (a 3-hidden-layer one among
them) into one space, are invariant to permuting hidden units and differentiable, rank a shape-family zoo's
held-out runs, and flag shapes outside their zoo; a shape-family zoo draws runs no other zoo shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from agents.enn.any_shape import AnyShapeEncoder
from agents.enn.fit import fit_zoo_enn, untrained_value_enn
from agents.enn.zoo import ZooSpec
from agents.enn.zoo_family import SHAPE_FAMILY, UNSEEN_SHAPES, ZooFamilySpec, load_zoos, train_zoo_family
from agents.experiments.enn_ranking import pooled_held_out_scores
from agents.seeds import zoo_family_run_seeds, zoo_run_seeds
from gi_envs.spec import MLPSpec
from tests.conftest import cli_error

SHAPES = ((16,), (64,), (32, 32), (32, 16, 16))
ANY_SHAPE = ["any-stats", "any-probe+stats"]


@pytest.fixture(scope="module")
def family_zoos():
    """24 runs of each of four digits shapes (one with three hidden layers), 150 steps each."""
    return train_zoo_family(ZooFamilySpec("digits", SHAPES, runs=24, steps=150), progress=False)


@pytest.fixture(scope="module")
def fitted(family_zoos):
    return {encoder: fit_zoo_enn(family_zoos, encoder, epochs=60, progress=False) for encoder in ANY_SHAPE}


def sequential(hidden: tuple[int, ...], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return MLPSpec("digits", hidden).sequential()


@pytest.mark.parametrize("encoder", ANY_SHAPE)
def test_mlps_of_every_shape_are_read_into_one_space(encoder: str, fitted) -> None:
    enn = fitted[encoder]
    inputs = [enn.inputs_of([layer.weight for layer in m if isinstance(layer, nn.Linear)],
                            [layer.bias for layer in m if isinstance(layer, nn.Linear)])
              for m in (sequential(h, 0) for h in (*SHAPES, (200, 50), (24, 24, 24)))]
    assert len({tuple(x.shape) for x in inputs}) == 1
    mixed = [sequential(h, k) for k, h in enumerate((*SHAPES, (200, 50)))]
    together = enn.predict(mixed)
    apart = np.concatenate([enn.predict([m]) for m in mixed])
    np.testing.assert_allclose(together, apart, atol=1e-6)  # grouped by shape, each back in its place
    assert ((0 <= together) & (together <= 1)).all()


@pytest.mark.parametrize("encoder", ANY_SHAPE)
def test_it_ranks_the_held_out_runs_of_every_shape(encoder: str, fitted, family_zoos) -> None:
    enn = fitted[encoder]
    assert pooled_held_out_scores(enn, family_zoos)["kendall_tau"] > 0.5
    assert enn.shapes_read == "digits MLPs (64 inputs, 10 classes) of 1 to 3 hidden layers of widths 16 to 64"


@pytest.mark.parametrize("encoder", ANY_SHAPE)
def test_permuting_hidden_units_changes_nothing_and_gradients_reach_every_layer(encoder: str, fitted) -> None:
    enn = fitted[encoder]
    model = sequential((32, 16, 16), 3)
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    weights = [layer.weight.detach().clone().requires_grad_() for layer in linears]
    biases = [layer.bias.detach().clone() for layer in linears]
    predicted = enn(enn.inputs_of(weights, biases))
    predicted.sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
    permuted_w, permuted_b = [w.detach().clone() for w in weights], [b.clone() for b in biases]
    for k in range(len(linears) - 1):  # permute the units of hidden layer k: its rows and the next layer's columns
        order = torch.randperm(permuted_w[k].shape[0], generator=torch.Generator().manual_seed(k))
        permuted_w[k], permuted_b[k] = permuted_w[k][order], permuted_b[k][order]
        permuted_w[k + 1] = permuted_w[k + 1][:, order]
    again = enn(enn.inputs_of(permuted_w, permuted_b))
    torch.testing.assert_close(again, predicted.detach(), atol=1e-5, rtol=1e-5)


def test_shapes_outside_the_zoo_are_flagged_and_shapes_it_cannot_read_refused(fitted) -> None:
    enn = fitted["any-stats"]
    distance = enn.zoo_distance([sequential((300,), 0), sequential((16,), 0), sequential((16, 16, 16), 0)])
    assert distance.outside.tolist() == [True, False, False]
    assert "hidden width 300 lies outside the zoo's 16 to 64" in distance.reasons[0]
    with pytest.raises(ValueError, match=r"reads MLPs of 64 inputs and 10 outputs with 1 to 3 hidden layers of any "
                                         r"width; got weight shapes \[\(8, 64\), \(8, 8\), \(8, 8\), \(8, 8\), "):
        enn.predict([sequential((8, 8, 8, 8), 0)])
    with pytest.raises(ValueError, match=r"reads MLPs of 64 inputs and 10 outputs"):
        enn.predict([MLPSpec("mnist", (16,)).sequential()])


def test_learned_probes_are_refused_for_an_any_shape_encoder() -> None:
    with pytest.raises(ValueError, match=r"probes='learned' is not allowed for an any-shape encoder"):
        AnyShapeEncoder(64, 10, probes="learned")
    with pytest.raises(ValueError, match=r"encoder options \['statistics'\] are not settings of the 'any-stats'"):
        untrained_value_enn(MLPSpec(), "any-stats", encoder_options={"statistics": True})


def test_an_enn_of_one_shape_refuses_a_zoo_of_several(family_zoos) -> None:
    with pytest.raises(ValueError, match=r"zoos of MLPs of several shapes \(64-16-10, 64-64-10\) need an any-shape "
                                         r"encoder \(any-stats or any-probe\+stats\), not 'stats'"):
        fit_zoo_enn(family_zoos[:2], "stats", epochs=1, progress=False)


def test_the_family_is_fixed_and_its_runs_are_shared_with_no_other_zoo() -> None:
    assert {len(s) for s in SHAPE_FAMILY} == {1, 2, 3}
    assert min(min(s) for s in SHAPE_FAMILY) == 16 and max(max(s) for s in SHAPE_FAMILY) == 256
    assert not set(SHAPE_FAMILY) & set(UNSEEN_SHAPES)
    members = ZooFamilySpec("digits", SHAPES, runs=50, seed=0).members()
    seeds = [set(m.run_seeds()) for m in members]
    assert all(not a & b for i, a in enumerate(seeds) for b in seeds[i + 1:])
    plain = set(zoo_run_seeds(0, 1000)) | set(zoo_run_seeds(2**32 - 1, 1000))
    assert not plain & set().union(*seeds)
    assert not set(zoo_family_run_seeds(1, 0, 50)) & set().union(*seeds)
    with pytest.raises(ValueError, match=r"member=64 is not allowed; expected an integer in \[0, 63\]"):
        ZooSpec(member=64).run_seeds()


def test_the_command_line_trains_a_family_and_fits_an_any_shape_enn_on_its_folder(tmp_path, capsys) -> None:
    from agents.cli import main

    folder = tmp_path / "family"
    main(["zoo", "--dataset", "digits", "--family", "--runs", "3", "--steps", "6", "--out", str(folder)])
    assert "A shape-family zoo of digits MLPs: 8 shapes x 3 runs" in capsys.readouterr().out
    assert len(load_zoos([folder])) == len(SHAPE_FAMILY)
    main(["fit-enn", "--zoo", str(folder), "--encoder", "any-stats", "--epochs", "2", "--out", str(tmp_path / "e.pt")])
    assert "any-stats ENN fitted on 16 runs of" in capsys.readouterr().out
    err = cli_error(["fit-enn", "--zoo", str(folder), "--encoder", "stats", "--out", str(tmp_path / "s.pt")], capsys)
    assert "need an any-shape encoder (any-stats or any-probe+stats), not 'stats'" in err


def test_score_ranks_a_folder_of_checkpoints_of_several_shapes(fitted, tmp_path) -> None:
    from agents.experiments.score import score_checkpoints

    for hidden in ((16,), (48, 24), (32, 16, 16)):
        torch.save(sequential(hidden, 0).state_dict(), tmp_path / f"mlp-{'-'.join(map(str, hidden))}.pt")
    torch.save(MLPSpec("mnist", (16,)).sequential().state_dict(), tmp_path / "mnist.pt")
    scores = score_checkpoints(fitted["any-probe+stats"], [tmp_path])
    assert sorted(scores.table.checkpoint.map(lambda p: p.rsplit("/", 1)[-1])) == ["mlp-16.pt", "mlp-32-16-16.pt",
                                                                                    "mlp-48-24.pt"]
    [(skipped, why)] = scores.skipped
    assert skipped.endswith("mnist.pt") and "the ENN reads any of digits MLPs (64 inputs, 10 classes)" in str(why)


def test_a_saved_any_shape_enn_loads_with_its_zoo_shapes(fitted, tmp_path) -> None:
    from agents.enn.network import ENN

    enn = fitted["any-probe+stats"]
    enn.save(tmp_path / "any.pt")
    loaded = ENN.load(tmp_path / "any.pt")
    models = [sequential(h, 5) for h in ((16,), (48, 24), (32, 16, 16))]
    np.testing.assert_allclose(loaded.predict(models), enn.predict(models), atol=1e-6)
    np.testing.assert_allclose(loaded.zoo_distance(models).distance, enn.zoo_distance(models).distance, atol=1e-5)
    assert loaded.metadata["architecture"]["encoder"]["zoo_members"] == len(SHAPES)


@pytest.mark.parametrize("encoder", ANY_SHAPE)
def test_random_and_scaled_mlps_of_any_shape_are_flagged_and_never_ranked_above_a_trained_one(encoder: str, fitted,
                                                                                             family_zoos) -> None:
    enn = fitted[encoder]
    zoo = family_zoos[3]  # 32-16-16: three hidden layers
    finals = np.flatnonzero((zoo.stage == 1.0) & zoo.held_out)  # a typical trained MLP the ENN never saw
    best = int(finals[np.argsort(zoo.val_accuracy[finals])[len(finals) // 2]])
    trained = {f"{k}.weight": torch.from_numpy(w[best]) for k, w in enumerate(zoo.weights)} | {
        f"{k}.bias": torch.from_numpy(b[best]) for k, b in enumerate(zoo.biases)}
    random = {k: torch.randn_like(v) for k, v in trained.items()}
    scaled = {k: 8 * v for k, v in sequential((32, 16, 16), 1).state_dict().items()}
    predicted, distance = enn.predict([trained, random, scaled], flags=True)
    assert distance.outside.tolist() == [False, True, True], distance.reasons
    assert all(predicted[0] > p or flagged for p, flagged in zip(predicted[1:], distance.outside[1:]))
