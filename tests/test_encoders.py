"""ENN encoders on a small randomized zoo: the image CNN and the permutation-invariant statistics encoder.

Each encoder saves and loads without SB3 to the same numbers, predicts for every input kind, and the
`fit-enn` / `evaluate-enn` commands fit, score and tabulate them beside StatNN on held-out runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from agents import ENN, ENNGuidance
from agents.enn.encoder import ENCODERS, EncoderKind, register_encoder
from agents.enn.fit import fit_zoo_enn, untrained_value_enn
from agents.enn.quality import Snapshots, final_accuracy
from agents.enn.zoo import Zoo
from agents.experiments.enn_ranking import enn_predictions
from gi_envs import BatchedMLP, Regime, load_dataset, train_mlps
from gi_envs.spec import MLPSpec
from gi_envs.weight_statistics import STATISTICS_PER_LAYER, order_statistics, quantile_ranks, weight_statistics
from tests.conftest import cli_error, run_without_sb3
from tests.floats import assert_float32_close
from train_agents import main


@pytest.fixture(scope="module")
def zoo(small_zoo: Zoo) -> Zoo:
    return small_zoo


@pytest.fixture(scope="module")
def enns(zoo: Zoo) -> dict[str, ENN]:
    return {encoder: fit_zoo_enn(zoo, encoder, epochs=30, progress=False) for encoder in ("stats", "image")}


def permuted_hidden_units(mlp: nn.Sequential, generator: torch.Generator) -> nn.Sequential:
    """The same function with its hidden units reordered."""
    order = torch.randperm(mlp[0].out_features, generator=generator)
    other = nn.Sequential(nn.Linear(mlp[0].in_features, len(order)), nn.ReLU(),
                          nn.Linear(len(order), mlp[2].out_features))
    with torch.no_grad():
        other[0].weight.copy_(mlp[0].weight[order])
        other[0].bias.copy_(mlp[0].bias[order])
        other[2].weight.copy_(mlp[2].weight[:, order])
        other[2].bias.copy_(mlp[2].bias)
    return other


def test_the_statistics_encoder_ignores_hidden_unit_order_and_is_differentiable(enns: dict[str, ENN]) -> None:
    generator = torch.Generator().manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    other = permuted_hidden_units(mlp, generator)
    x = torch.randn(16, 64, generator=generator)
    assert_float32_close(mlp(x), other(x))  # the same function
    features = weight_statistics([mlp[0].weight[None], mlp[2].weight[None]])
    assert features.shape == (1, 2 * STATISTICS_PER_LAYER) and torch.isfinite(features).all()
    assert_float32_close(features, weight_statistics([other[0].weight[None], other[2].weight[None]]),
                               rtol=1e-5, atol=1e-6)
    stats_pair, image_pair = (enns[e].predict([mlp, other]) for e in ("stats", "image"))
    assert stats_pair[0] == pytest.approx(stats_pair[1], abs=1e-5)
    assert abs(image_pair[0] - image_pair[1]) > 1e-6  # the paper's image CNN sees a different MLP
    guidance = ENNGuidance(enns["stats"], weight=1.0)
    guidance(mlp).backward()
    assert mlp[0].weight.grad.abs().sum() > 0 and mlp[2].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("n", [1, 2, 7, 640, 25_088, 78_400])  # a lone weight up to MNIST 784-100's first layer
def test_the_quantiles_are_the_sorted_weights_at_their_ranks_with_the_same_gradients(n: int) -> None:
    generator = torch.Generator().manual_seed(n)
    weights = torch.randn(3, n, generator=generator)
    weights[1, : n // 2] = 0.0  # ties, as in pruned or zero-initialised weights
    ranks = quantile_ranks(n)
    fast, by_sort = weights.clone().requires_grad_(True), weights.clone().requires_grad_(True)
    values = order_statistics(fast, ranks)
    expected = by_sort.sort(dim=1).values[:, ranks]
    assert torch.equal(values, expected)
    upstream = torch.randn(values.shape, generator=generator)
    (values * upstream).sum().backward()
    (expected * upstream).sum().backward()
    # among tied weights the rank's element is ambiguous: compare the gradient each distinct value gets
    for row in range(len(weights)):
        values_in_row, group = weights[row].unique(return_inverse=True)
        per_value = [torch.zeros(len(values_in_row)).index_add_(0, group, g[row]) for g in (fast.grad, by_sort.grad)]
        assert_float32_close(*per_value)


def test_a_statistics_enn_ranks_held_out_runs_like_statnn(zoo: Zoo, enns: dict[str, ENN]) -> None:
    held = zoo.held_out
    predicted = enn_predictions(enns["stats"], zoo, held)
    assert stats.kendalltau(predicted, zoo.val_accuracy[held]).statistic > 0.5
    assert enns["stats"].metadata["source"]["kind"] == "zoo" and enns["stats"].metadata["image"] is None


@pytest.mark.parametrize("encoder", ["stats", "image"])
def test_every_encoder_saves_loads_without_sb3_and_predicts_the_same(encoder: str, enns: dict[str, ENN],
                                                                     tmp_path: Path) -> None:
    enn = enns[encoder]
    assert enn.metadata["architecture"]["encoder"]["type"] == encoder
    enn.save(tmp_path / "enn.pt")
    mlp = BatchedMLP((64, 32, 10), 4)
    for i in range(4):
        mlp.initialize(i, torch.Generator().manual_seed(i))
    mlp.save(tmp_path / "mlps.pt")
    expected = enn.predict(mlp)
    lines = run_without_sb3(
        "from agents import ENN\nfrom gi_envs import BatchedMLP\n"
        f"enn = ENN.load({str(tmp_path / 'enn.pt')!r})\n"
        f"mlp, _ = BatchedMLP.load({str(tmp_path / 'mlps.pt')!r})\n"
        "print(repr(enn.predict(mlp).tolist())); print(enn.encoder_type)\n"
    )
    assert_float32_close(eval(lines[0]), expected, rtol=1e-5, atol=1e-6)
    assert lines[1] == encoder


def test_a_statistics_enn_predicts_every_input_kind_and_rejects_wrong_shapes(enns: dict[str, ENN]) -> None:
    enn = enns["stats"]
    mlp = BatchedMLP((64, 32, 10), 2)
    for i in range(2):
        mlp.initialize(i, torch.Generator().manual_seed(10 + i))
    from_list = enn.predict([mlp.to_sequential(0), mlp.to_sequential(1).state_dict()])
    assert_float32_close(from_list, enn.predict(mlp), rtol=1e-5, atol=1e-6)
    wrong = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.raises(ValueError, match=r"was made for an MLP with weight shapes"):
        enn.predict([wrong])
    with pytest.raises(ValueError, match="needs an ENN that reads weight images; this ENN's encoder is 'stats'"):
        enn.image_of([w[0] for w in mlp.weights])


def test_the_final_accuracy_target_is_what_each_run_ends_with(zoo: Zoo) -> None:
    final = zoo.targets("final")
    for run in (0, 7, 21):
        mine = zoo.run == run
        assert (final[mine] == zoo.val_accuracy[mine & (zoo.stage == 1.0)]).all()
    snapshots = Snapshots(torch.zeros(5, 1, 1, 1), np.array([0.1, 0.5, 0.2, 0.9, 0.3]), np.array([0, 1, 0, 2, 1]),
                          np.array([0, 0, 1, 0, 1]))  # two env episodes: 0 ends at 0.9, 1 at 0.3
    assert final_accuracy(snapshots).tolist() == [0.9, 0.9, 0.3, 0.9, 0.3]
    with pytest.raises(ValueError, match=r"target='best' is not known; expected one of \['current', 'final'\]"):
        zoo.targets("best")


def test_fit_enn_and_evaluate_enn_write_their_table_beside_statnn(zoo: Zoo, tmp_path: Path, capsys) -> None:
    zoo.save(tmp_path / "zoo.npz")
    for encoder in ("stats", "image", "nfn"):
        main(["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", encoder, "--epochs", "3" if encoder == "nfn"
              else "10", "--out", str(tmp_path / f"{encoder}.pt")])
        assert f"{encoder} ENN fitted on 32 runs" in capsys.readouterr().out
    assert ENN.load(tmp_path / "stats.pt").metadata["quality"]["kendall_tau"] > 0
    main(["evaluate-enn", "--zoo", str(tmp_path / "zoo.npz"), str(tmp_path / "stats.pt"), str(tmp_path / "image.pt"),
          str(tmp_path / "nfn.pt"), "--out", str(tmp_path / "ev")])
    table = pd.read_csv(tmp_path / "ev" / "results.csv")
    assert list(table.predictor) == ["StatNN (GBM on layer statistics)", "stats.pt", "image.pt", "nfn.pt"]
    assert {"kendall_tau_sgd", "kendall_tau_momentum", "kendall_tau_adam"} <= set(table.columns)  # per optimizer
    assert (table.n == zoo.held_out.sum()).all() and table.kendall_tau.between(-1, 1).all()
    markdown = (tmp_path / "ev" / "results.md").read_text()
    assert "| stats.pt | stats |" in markdown and "| image.pt | image mean+rms @ 0.15 |" in markdown
    assert (tmp_path / "ev" / "scatter.png").stat().st_size > 1000

    untrained_value_enn(MLPSpec("digits", (16,)), "stats").save(tmp_path / "other.pt")
    err = cli_error(["evaluate-enn", "--zoo", str(tmp_path / "zoo.npz"), str(tmp_path / "other.pt")], capsys)
    assert "other.pt: " in err and "was made for an MLP with weight shapes" in err
    assert "is a folder" in cli_error(["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--out", str(tmp_path)], capsys)
    assert "argument --encoder: invalid choice: 'cnn'" in cli_error(
        ["fit-enn", "--zoo", str(tmp_path / "zoo.npz"), "--encoder", "cnn"], capsys)
    assert "needs an ENN that reads weight images" in cli_error(
        ["inspect", "--enn", str(tmp_path / "stats.pt"), "--out", str(tmp_path / "insp")], capsys)


def test_the_nfn_encoder_is_invariant_to_permuting_hidden_units_and_reads_biases() -> None:
    enn = untrained_value_enn(MLPSpec("digits", (32, 16)), "nfn")
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(3, 32, 64, generator=generator), torch.randn(3, 16, 32, generator=generator),
               torch.randn(3, 10, 16, generator=generator)]
    biases = [torch.randn(3, 32, generator=generator), torch.randn(3, 16, generator=generator),
              torch.randn(3, 10, generator=generator)]
    first, second = torch.randperm(32, generator=generator), torch.randperm(16, generator=generator)
    permuted = [weights[0][:, first], weights[1][:, second][:, :, first], weights[2][:, :, second]]
    permuted_biases = [biases[0][:, first], biases[1][:, second], biases[2]]
    with torch.no_grad():
        plain = enn(enn.inputs_of(weights, biases))
        assert_float32_close(enn(enn.inputs_of(permuted, permuted_biases)), plain, atol=1e-5, rtol=1e-5)
        inputs_swapped = [weights[0][:, :, torch.randperm(64, generator=generator)], *weights[1:]]
        assert not torch.allclose(enn(enn.inputs_of(inputs_swapped, biases)), plain)  # inputs are not exchangeable
        assert not torch.allclose(enn(enn.inputs_of(weights, [b + 1 for b in biases])), plain)  # biases count
    with pytest.raises(ValueError, match="an ENN with an 'nfn' encoder reads biases too"):
        enn.inputs_of(weights)
    model = MLPSpec("digits", (32, 16)).sequential()
    assert enn.predict([model, model.state_dict()]) == pytest.approx(enn.predict([model, model])[0], abs=1e-6)


class NormsEncoder(nn.Module):
    """A test's own encoder: each layer's Frobenius norm, into one linear layer."""

    def __init__(self, layers: int, features_dim: int = 8):
        super().__init__()
        self.linear = nn.Linear(layers, features_dim)

    def forward(self, norms: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(norms))


@pytest.fixture
def norms_encoder():
    kind = register_encoder(EncoderKind(
        "norms", NormsEncoder, lambda shapes, channels: {"layers": len(shapes), "features_dim": 8},
        lambda weights, biases, image: torch.stack([w.flatten(1).norm(dim=1) for w in weights], dim=1),
        "each layer's Frobenius norm"))
    yield kind
    del ENCODERS["norms"]


def test_a_new_encoder_is_one_entry_and_works_everywhere(norms_encoder, zoo: Zoo, tmp_path: Path) -> None:
    enn = fit_zoo_enn(zoo, "norms", epochs=3, progress=False)  # fit-enn's path, with the entry's zoo_fit
    assert enn.image_spec is None and not enn.reads_biases
    enn.save(tmp_path / "norms.pt")
    loaded = ENN.load(tmp_path / "norms.pt")
    mlp = train_mlps(zoo.spec.mlp, load_dataset(zoo.spec.mlp.dataset), Regime(), seeds=[0, 1, 2], epochs=0)
    np.testing.assert_array_equal(loaded.predict(mlp), enn.predict(mlp))
    model = zoo.spec.mlp.sequential()
    ENNGuidance(loaded, weight=1.0)(model).backward()  # differentiable in the weights, through the entry's inputs
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0
