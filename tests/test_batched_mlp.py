"""The batched MLPs and the training core over them: gradients, batching, initialisation, data order, evaluation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gi_envs.batched_mlp import ACTIVATIONS, BatchedMLP, MinibatchSampler, gradient_rms
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.spec import MLPSpec
from gi_envs.training import Training, perturbation_hook
from tests.floats import assert_float32_close

SPEC = MLPSpec("digits", (32, 16))  # 64-32-16-10


def seeded_mlp(sizes=(64, 32, 16, 10), n=4, activation="relu", init="default") -> BatchedMLP:
    mlp = BatchedMLP(sizes, n_models=n, activation=activation)
    for i in range(n):
        mlp.initialize(i, torch.Generator().manual_seed(100 + i), init)
    return mlp


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_written_out_backward_matches_autograd(activation: str, torch_threads: int) -> None:
    data = load_dataset("digits")
    mlp = seeded_mlp(activation=activation)
    idx = torch.stack([torch.arange(32) + 40 * i for i in range(4)])
    x, y = data.train.x[idx], data.train.y[idx]
    loss, weight_grads, bias_grads = mlp.loss_and_gradients(x, y)

    logits = mlp.forward(x)
    reference_loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(4, 32).mean(1)
    reference = torch.autograd.grad(reference_loss.sum(), mlp.weights + mlp.biases)
    assert_float32_close(loss, reference_loss.detach(), atol=1e-6, rtol=1e-5)
    for mine, theirs in zip(weight_grads + bias_grads, reference):
        assert_float32_close(mine, theirs, atol=1e-6, rtol=1e-4)


def test_batched_models_train_exactly_like_separate_ones(torch_threads: int) -> None:
    data = load_dataset("digits")
    regime = Regime(lr=0.1, batch_size=32)
    together = Training(SPEC, data, 3)
    alone = [Training(SPEC, data, 1) for _ in range(3)]
    for i, single in enumerate(alone):
        together.reset(i, 100 + i, regime)
        single.reset(0, 100 + i, regime)
    for _ in range(150):  # four epochs
        together.step()
        for single in alone:
            single.step()
    for i, single in enumerate(alone):
        for a, b in zip(together.mlp.parameters(), single.mlp.parameters()):
            assert_float32_close(a[i], b[0], atol=1e-6, rtol=1e-5)
    loss, acc = together.evaluate(data.val)
    assert acc.min() > 0.8 and torch.isfinite(loss).all()


def test_initialisations_have_the_documented_scales() -> None:
    default = seeded_mlp(sizes=(400, 300, 10), n=2)
    w = default.weights[0].detach()
    bound = 1 / math.sqrt(400)
    assert float(w.abs().max()) <= bound
    assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.01 * bound
    he = seeded_mlp(sizes=(400, 300, 10), n=2, init="he")
    assert abs(float(he.weights[0].detach().std()) - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    assert torch.all(he.biases[0] == 0)
    again = seeded_mlp(sizes=(400, 300, 10), n=2)
    assert torch.equal(default.weights[1], again.weights[1])
    with pytest.raises(ValueError, match=r"init='xavier'.*default.*he"):
        default.initialize(0, torch.Generator(), "xavier")


def test_sampler_draws_whole_epochs_without_replacement_per_model() -> None:
    sampler = MinibatchSampler(n_samples=100, batch_size=10, n_models=2)
    sampler.reset(0, torch.Generator().manual_seed(0))
    sampler.reset(1, torch.Generator().manual_seed(1))
    epoch = torch.cat([sampler.next_indices() for _ in range(10)], dim=1)
    for row in epoch:
        assert sorted(row.tolist()) == list(range(100))
    assert not torch.equal(epoch[0], epoch[1])
    # a model's order does not depend on its neighbours, nor on when it was reset
    solo = MinibatchSampler(n_samples=100, batch_size=10, n_models=1)
    solo.reset(0, torch.Generator().manual_seed(1))
    assert torch.equal(torch.cat([solo.next_indices() for _ in range(10)], dim=1)[0], epoch[1])
    sampler.next_indices()
    sampler.reset(1, torch.Generator().manual_seed(1))  # out of step with model 0 now
    assert torch.equal(torch.cat([sampler.next_indices() for _ in range(10)], dim=1)[1], epoch[1])


def test_perturbation_is_added_in_units_of_the_gradient_rms() -> None:
    data = load_dataset("digits")
    regime = Regime(lr=0.1, batch_size=32)
    probe, plain, perturbed = (Training(SPEC, data, 2) for _ in range(3))
    for training in (probe, plain, perturbed):
        for i in range(2):
            training.reset(i, 100 + i, regime)
    idx = probe.sampler.next_indices()  # the batch the other two see first
    _, grads, _ = probe.mlp.loss_and_gradients(data.train.x[idx], data.train.y[idx])
    directions = [torch.ones_like(g) for g in grads]
    before = [w.detach().clone() for w in perturbed.mlp.weights]
    plain.step()
    perturbed.step(perturbation_hook(directions, 0.5))
    for w_plain, w_pert, g, w0 in zip(plain.mlp.weights, perturbed.mlp.weights, grads, before):
        shift = (w_plain - w_pert).detach()  # = lr * 0.5 * rms(g) per model
        expected = 0.1 * 0.5 * gradient_rms(g)[:, None, None].expand_as(shift)
        assert_float32_close(shift, expected, rtol=1e-5, atol=1e-6)
        assert not torch.equal(w_pert.detach(), w0)


def test_sequential_round_trip_and_shared_evaluation() -> None:
    data = load_dataset("digits")
    mlp = seeded_mlp(n=2, activation="tanh")
    model = mlp.to_sequential(1)
    with torch.no_grad():
        logits = model(data.val.x)
    loss, acc = mlp.evaluate(data.val.x, data.val.y)
    assert_float32_close(loss[1], F.cross_entropy(logits, data.val.y), rtol=1e-5, atol=1e-6)
    assert float(acc[1]) == pytest.approx(float((logits.argmax(1) == data.val.y).float().mean()))
    mlp.load_sequential(0, model)
    assert_float32_close(mlp.weights[0][0], mlp.weights[0][1])
    with pytest.raises(ValueError, match="differ"):
        mlp.load_sequential(0, seeded_mlp(sizes=(64, 10), n=1).to_sequential(0))


def test_bad_architecture_is_rejected() -> None:
    with pytest.raises(ValueError, match="activation='swish'"):
        BatchedMLP((4, 2), 1, activation="swish")
    with pytest.raises(ValueError, match="layer_sizes"):
        BatchedMLP((4,), 1)
    with pytest.raises(ValueError, match="batch_size=0"):
        MinibatchSampler(10, 0, 1)
