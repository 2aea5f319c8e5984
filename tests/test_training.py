"""The one training core: regimes, distributions, each optimizer against torch.optim, mixed batches, data shares."""

from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gi_envs  # noqa: F401  (registers the env)
from gi_envs.datasets import load_dataset
from gi_envs.optimizers import OPTIMIZERS, ModelGroup, OptimizerKind, per_model, register_optimizer
from gi_envs.regime import REGIME_DISTRIBUTIONS, Regime, RegimeDistribution
from gi_envs.spec import MLPSpec
from gi_envs.training import Training, train_mlps
from tests.floats import assert_float32_close

SPEC = MLPSpec("digits", (16,))


def torch_optimizer(regime: Regime, params, lr: float) -> torch.optim.Optimizer:
    """What the regime's `OPTIMIZERS` entry says it equals."""
    return OPTIMIZERS[regime.optimizer].torch_optimizer(params, lr, regime.weight_decay)


def reference_run(regime: Regime, seed: int, steps: int, lr_factor: float = 1.0) -> nn.Sequential:
    """An independent plain loop: the same init and data order as `Training.reset` draws, torch.optim."""
    data = load_dataset("digits")
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
            layer.weight *= regime.init_scale
    n = len(data.train)
    size = regime.subset_size(n)
    subset = torch.randperm(n, generator=generator)[:size] if size < n else torch.arange(n)
    optimizer = torch_optimizer(regime, model.parameters(), regime.lr * lr_factor)
    if hasattr(optimizer, "train"):  # Schedule-Free: trained in train mode, its model read in eval mode
        optimizer.train()
    order, cursor = subset[torch.randperm(size, generator=generator)], 0
    for _ in range(steps):
        if cursor + regime.batch_size > size:
            order, cursor = subset[torch.randperm(size, generator=generator)], 0
        idx = order[cursor : cursor + regime.batch_size]
        cursor += regime.batch_size
        optimizer.zero_grad()
        F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
        optimizer.step()
    if hasattr(optimizer, "eval"):
        optimizer.eval()
    return model


def assert_same_weights(training: Training, model_index: int, model: nn.Sequential) -> None:
    for mine, theirs in zip(training.mlp.parameters(), model.parameters()):
        assert_float32_close(mine[model_index].detach(), theirs.detach(), atol=2e-6, rtol=2e-5)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_each_optimizer_equals_torch_optim_on_a_sequential(optimizer: str, weight_decay: float,
                                                           torch_threads: int) -> None:
    lr = {"sgd": 0.1, "momentum": 0.02, "adam": 2e-3, "schedule-free-adamw": 5e-3}[optimizer]
    regime = Regime(lr=lr, batch_size=24, init_scale=1.5, weight_decay=weight_decay, data_share=0.3,
                    optimizer=optimizer)
    training = Training(SPEC, load_dataset("digits"), 1)
    training.reset(0, 11, regime)
    steps = 60  # several passes over the 345-sample share
    training.run(steps)
    assert_same_weights(training, 0, reference_run(regime, 11, steps))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_a_uniform_update_scale_is_the_optimizer_at_a_scaled_learning_rate(optimizer: str) -> None:
    regime = Regime(lr={"sgd": 0.05, "momentum": 0.01, "adam": 1e-3, "schedule-free-adamw": 1e-3}[optimizer],
                    weight_decay=1e-3,
                    optimizer=optimizer)
    training = Training(SPEC, load_dataset("digits"), 1)
    training.reset(0, 5, regime)
    scales = ([torch.full((1, *s), 3.0) for s in training.mlp.layer_shapes],
              [torch.full((1, s[0]), 3.0) for s in training.mlp.layer_shapes])
    for _ in range(40):
        training.step(update_scales=scales)
    assert_same_weights(training, 0, reference_run(regime, 5, 40, lr_factor=3.0))


def test_models_of_different_optimizers_and_batch_sizes_train_together_as_alone(torch_threads: int) -> None:
    regimes = [Regime(lr=0.1, batch_size=16, data_share=0.5), Regime(lr=0.01, batch_size=64, optimizer="momentum"),
               Regime(lr=1e-3, batch_size=32, weight_decay=1e-2, optimizer="adam", init_scale=0.5),
               Regime(lr=3e-3, batch_size=24, weight_decay=1e-3, optimizer="schedule-free-adamw")]
    data = load_dataset("digits")
    together = Training(SPEC, data, len(regimes))
    for i, regime in enumerate(regimes):
        together.reset(i, 20 + i, regime)
    together.run(50)
    for i, regime in enumerate(regimes):
        alone = Training(SPEC, data, 1)
        alone.reset(0, 20 + i, regime)
        alone.run(50)
        for a, b in zip(together.mlp.parameters(), alone.mlp.parameters()):
            assert_float32_close(a[i], b[0], atol=2e-6, rtol=2e-5)
    _, accuracy = together.evaluate(data.val)
    assert accuracy.min() > 0.3  # every optimizer learns: chance is 0.1


def test_a_reset_clears_the_optimizer_state_of_that_model_only() -> None:
    data = load_dataset("digits")
    regime = Regime(lr=1e-3, optimizer="adam")
    training = Training(SPEC, data, 2)
    training.reset(0, 1, regime)
    training.reset(1, 2, regime)
    training.run(10)
    training.reset(1, 2, regime)  # model 1 starts again; model 0 keeps its moments
    training.run(10)
    fresh = Training(SPEC, data, 1)
    fresh.reset(0, 2, regime)
    fresh.run(10)
    for a, b in zip(training.mlp.parameters(), fresh.mlp.parameters()):
        assert_float32_close(a[1], b[0], atol=2e-6, rtol=2e-5)
    straight = Training(SPEC, data, 1)
    straight.reset(0, 1, regime)
    straight.run(20)
    for a, b in zip(training.mlp.parameters(), straight.mlp.parameters()):
        assert_float32_close(a[0], b[0], atol=2e-6, rtol=2e-5)


def test_train_mlps_trains_one_mlp_per_seed_for_whole_epochs() -> None:
    data = load_dataset("digits")
    mlp = train_mlps(SPEC, data, Regime(lr=0.1), seeds=[0, 1], epochs=2)
    _, accuracy = mlp.evaluate(data.val.x, data.val.y)
    assert mlp.n_models == 2 and accuracy.min() > 0.85
    assert Regime(batch_size=32).steps_per_epoch(len(data.train)) == len(data.train) // 32


def test_a_distribution_draws_each_field_in_its_range_and_the_same_regime_from_the_same_seed() -> None:
    distribution = REGIME_DISTRIBUTIONS["any-optimizer"]
    regimes = [distribution.regime_of(seed) for seed in range(400)]
    assert regimes[7] == distribution.regime_of(7) and regimes[7] != regimes[8]
    for name in ("init_scale", "data_share"):
        values = np.array([getattr(r, name) for r in regimes])
        low, high = getattr(distribution, f"{name}_range")
        assert low <= values.min() and values.max() <= high and values.std() > 0.1 * (high - low)
    assert {r.optimizer for r in regimes} == {"sgd", "momentum", "adam"}  # the zoo's, fixed as published
    assert {r.batch_size for r in regimes} == {16, 32, 64, 128}
    assert 0.4 < np.mean([r.weight_decay > 0 for r in regimes]) < 0.6
    for optimizer in distribution.optimizers:
        kind = OPTIMIZERS[optimizer]
        lrs = np.array([r.lr for r in regimes if r.optimizer == optimizer]) / kind.lr_scale
        assert 0.005 <= lrs.min() and lrs.max() <= 0.5 and lrs.max() / lrs.min() > 30
    sgd_only = REGIME_DISTRIBUTIONS["default"].regime_of(7)
    assert sgd_only.optimizer == "sgd" and sgd_only.init_scale == regimes[7].init_scale
    wide = REGIME_DISTRIBUTIONS["wide-lr"].lr_range
    assert wide[0] == pytest.approx(0.0005) and wide[1] == pytest.approx(5.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": 0.0}, r"lr=0.0 is not allowed; expected a number in \(0, 100\]"),
    ({"batch_size": 0}, r"batch_size=0 is not allowed"),
    ({"data_share": 1.5}, r"data_share=1.5 is not allowed; expected a number in \(0, 1\]"),
    ({"weight_decay": -1.0}, r"weight_decay=-1.0"),
    ({"init_scale": float("nan")}, r"init_scale=nan"),
    ({"optimizer": "rmsprop"}, r"optimizer='rmsprop' is not allowed; expected one of \['sgd', 'momentum', 'adam', "
                                   r"'schedule-free-adamw'\]"),
])
def test_a_bad_regime_names_the_field_and_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Regime(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr_range": (0.5, 0.005)}, r"lr_range=\(0.5, 0.005\) is not allowed; expected \(low, high\)"),
    ({"lr_range": (0.0, 1.0)}, r"lr_range=\(0.0, 1.0\)"),
    ({"init_scale_range": (1.0,)}, r"init_scale_range=\(1.0,\)"),
    ({"data_share_range": (0.5, 2.0)}, r"data_share_range=\(0.5, 2.0\)"),
    ({"weight_decay_share": 2.0}, r"weight_decay_share=2.0"),
    ({"batch_sizes": (16, 16)}, r"batch_sizes=\(16, 16\) is not allowed; expected distinct positive integers"),
    ({"optimizers": ("sgd", "lion")}, r"optimizers=\('sgd', 'lion'\) is not allowed"),
])
def test_a_bad_distribution_names_the_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegimeDistribution(**kwargs)


def test_regimes_and_distributions_round_trip_through_plain_dicts() -> None:
    regime = Regime(lr=0.2, batch_size=64, optimizer="adam")
    assert Regime.from_dict(regime.to_dict()) == regime
    distribution = RegimeDistribution(lr_range=(0.01, 0.1), optimizers=("adam",))
    assert RegimeDistribution.from_dict(distribution.to_dict()) == distribution
    assert RegimeDistribution.from_dict({"batch_sizes": [32]}).batch_sizes == (32,)
    with pytest.raises(ValueError, match=r"unknown regime distribution field\(s\) \['lr'\]; expected some of"):
        RegimeDistribution.from_dict({"lr": 0.1})
    with pytest.raises(ValueError, match=r"unknown regime field\(s\) \['momentum'\]"):
        Regime.from_dict({"momentum": 0.5})


def _nesterov(p: torch.Tensor, g: torch.Tensor, state: tuple[torch.Tensor, ...], scale: torch.Tensor | None,
              group: ModelGroup) -> tuple[torch.Tensor, ...]:
    """torch.optim.SGD(nesterov=True) on stacked models, written from its docs."""
    if group.decayed:
        g = g + per_model(group.decay, p) * p
    buffer = torch.where(per_model(group.steps == 1, p), g, state[0] * 0.9 + g)
    group.apply(p, g + 0.9 * buffer, scale)
    return (buffer,)


@pytest.fixture
def nesterov() -> Iterator[OptimizerKind]:
    kind = register_optimizer(OptimizerKind(
        "nesterov", 0.1, _nesterov, 1,
        lambda params, lr, decay: torch.optim.SGD(params, lr, momentum=0.9, nesterov=True, weight_decay=decay)))
    yield kind
    del OPTIMIZERS["nesterov"]


def test_a_new_optimizer_is_one_entry_and_works_everywhere(nesterov: OptimizerKind) -> None:
    regime = Regime(lr=0.01, batch_size=24, weight_decay=1e-3, data_share=0.3, optimizer="nesterov")
    training = Training(SPEC, load_dataset("digits"), 1)
    training.reset(0, 11, regime)
    training.run(60)
    assert_same_weights(training, 0, reference_run(regime, 11, 60))  # the entry's own torch equivalent
    mixed = RegimeDistribution(optimizers=("sgd", "nesterov"))
    assert {mixed.regime_of(s).optimizer for s in range(20)} == {"sgd", "nesterov"}
    env = gym.make("GradInstructor-v0", hidden_sizes=(16,), optimizer="nesterov", lr=0.05)
    _, info = env.reset(seed=0)
    for _ in range(3):
        _, reward, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert reward > info["val_accuracy"] + 0.2  # the env trains with it
