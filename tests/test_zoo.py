"""The randomized zoo: runs differ in their hyper-parameters, snapshots are split by run, files round-trip;
StatNN fits and ranks held-out runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from agents.enn.statnn import StatNN, layer_statistics
from agents.enn.zoo import Zoo, ZooSpec, train_zoo
from gi_envs.regime import REGIME_DISTRIBUTIONS, RegimeDistribution
from tests.conftest import cli_error
from tests.floats import assert_float32_close
from train_agents import main

SMALL = ZooSpec(runs=40, steps=300, seed=3, distribution=REGIME_DISTRIBUTIONS["default"])  # plain SGD runs


@pytest.fixture(scope="module")
def zoo() -> Zoo:
    return train_zoo(SMALL, progress=False)


def test_runs_draw_their_own_regimes_and_are_snapshotted_at_every_stage(zoo: Zoo) -> None:
    hp = zoo.regimes
    assert len(zoo) == SMALL.runs * len(SMALL.stages) and zoo.weights[0].shape == (len(zoo), 32, 64)
    assert 1e-3 <= hp["lr"].min() and hp["lr"].max() <= 1.0 and hp["lr"].max() / hp["lr"].min() > 30
    assert (hp["weight_decay"] == 0).any() and (hp["weight_decay"] > 0).any()
    assert set(hp["batch_size"]) <= set(SMALL.distribution.batch_sizes) and len(set(hp["batch_size"])) > 1
    for run in range(SMALL.runs):
        assert sorted(zoo.stage[zoo.run == run]) == list(SMALL.stages)
    final = zoo.stage == 1.0
    assert zoo.val_accuracy[final].max() > 0.9  # good settings learn digits ...
    assert stats.spearmanr(np.log(hp["lr"]), zoo.val_accuracy[final][np.argsort(zoo.run[final])]).statistic > 0.3
    assert zoo.val_accuracy[zoo.stage == 0].max() < 0.4  # ... and every run starts untrained


def test_the_zoo_is_split_by_run_never_by_snapshot(zoo: Zoo) -> None:
    assert zoo.held_out_runs.sum() == round(SMALL.held_out * SMALL.runs)
    held_runs, fit_runs = set(zoo.run[zoo.held_out]), set(zoo.run[~zoo.held_out])
    assert held_runs and fit_runs and not held_runs & fit_runs
    again = train_zoo(SMALL, progress=False)  # seeded: the same runs, split and numbers
    assert (again.held_out_runs == zoo.held_out_runs).all() and np.array_equal(again.val_accuracy, zoo.val_accuracy)


def test_a_zoo_file_round_trips_and_the_command_writes_one(zoo: Zoo, tmp_path: Path, capsys) -> None:
    zoo.save(tmp_path / "zoo.npz")
    loaded = Zoo.load(tmp_path / "zoo.npz")
    assert loaded.spec == zoo.spec and all(np.array_equal(a, b) for a, b in zip(loaded.weights, zoo.weights))
    (tmp_path / "bad.npz").write_bytes(b"not a zoo")
    with pytest.raises(ValueError, match="is not a zoo written by"):
        Zoo.load(tmp_path / "bad.npz")
    main(["zoo", "--runs", "8", "--steps", "20", "--out", str(tmp_path / "cli.npz")])
    assert len(Zoo.load(tmp_path / "cli.npz")) == 8 * len(SMALL.stages)
    assert "8 runs of digits 64-32-10 MLPs" in capsys.readouterr().out
    assert "argument --runs: expected an integer of at least 2, got 1" in cli_error(["zoo", "--runs", "1"], capsys)
    assert "is a folder" in cli_error(["zoo", "--out", str(tmp_path)], capsys)
    with pytest.raises(ValueError, match=r"lr_range=\(1.0, 0.1\) is not allowed"):
        ZooSpec(distribution=RegimeDistribution(lr_range=(1.0, 0.1)))


def test_statnn_fits_the_fit_runs_and_ranks_held_out_ones(zoo: Zoo) -> None:
    features = layer_statistics(zoo.weights, zoo.biases)
    assert features.shape == (len(zoo), 2 * 2 * 7) and np.isfinite(features).all()
    fit, held = ~zoo.held_out, zoo.held_out
    statnn = StatNN(seed=0).fit([w[fit] for w in zoo.weights], [b[fit] for b in zoo.biases], zoo.val_accuracy[fit])
    predicted = statnn.estimated_accuracy([w[held] for w in zoo.weights], [b[held] for b in zoo.biases])
    assert stats.kendalltau(predicted, zoo.val_accuracy[held]).statistic > 0.4


@pytest.mark.parametrize("through", ["the zoo's distribution", "the run's own regime"])
def test_a_zoo_run_is_an_env_episode_of_the_same_seed_and_regime_under_the_zero_action(through: str,
                                                                                        torch_threads: int) -> None:
    import gymnasium as gym

    import gi_envs

    spec = ZooSpec(runs=6, steps=40, stages=(0.0, 0.5, 1.0), seed=5)  # the any-optimizer distribution
    zoo = train_zoo(spec, progress=False)
    assert len(set(zoo.regimes["optimizer"])) > 1 and len(set(zoo.regimes["batch_size"])) > 1
    for run in range(spec.runs):
        regime = zoo.regime(run)
        kwargs = {"randomize_regime": spec.distribution} if through == "the zoo's distribution" else regime.to_dict()
        env = gym.make(gi_envs.ENV_ID, steps_per_action=20, episode_length=2, eval_samples=0, **kwargs)
        _, info = env.reset(seed=0, options={"mlp_seed": int(zoo.seeds[run])})
        assert env.unwrapped.task.regime(0) == regime
        snapshots = np.flatnonzero(zoo.run == run)  # stages 0, 0.5 and 1: the reset, then each env step
        for k, snapshot in enumerate(snapshots):
            if k:
                _, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
            assert info["val_accuracy"] == pytest.approx(zoo.val_accuracy[snapshot], abs=1e-6)
            for mine, zoos in zip(env.unwrapped.task.mlp.weights, zoo.weights):
                assert_float32_close(mine[0].detach().numpy(), zoos[snapshot], rtol=2e-5, atol=2e-6)


def test_a_zoo_file_of_the_old_format_names_itself_and_how_to_remake_it(tmp_path: Path) -> None:
    np.savez(tmp_path / "old.npz", format=np.array("grad-instructor-zoo/1"), spec=np.array("{}"))
    with pytest.raises(ValueError, match=r"old.npz is a zoo of format 1.*make it again with `train_zoo`"):
        Zoo.load(tmp_path / "old.npz")


def test_the_default_zoo_trains_every_optimizer_to_useful_accuracy() -> None:
    zoo = train_zoo(ZooSpec(runs=30, steps=300, seed=2), progress=False)
    final = zoo.stage == 1.0
    for optimizer in ("sgd", "momentum", "adam"):
        runs = final & (zoo.optimizer == optimizer)
        assert runs.sum() >= 5 and np.median(zoo.val_accuracy[runs]) > 0.7, optimizer
