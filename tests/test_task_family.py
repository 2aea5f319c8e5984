"""One controller for any MLP: shape-free observation parts, per-slot actions, task families and their splits."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import gi_envs
from gi_envs.datasets import SyntheticTask, dataset_dims, load_dataset
from gi_envs.family_task import FamilyTask
from gi_envs.layer_observation import layer_slots
from gi_envs.spec import MLPSpec
from gi_envs.task import SHAPE_FREE_OBSERVATION, EnvConfig
from gi_envs.task_family import HELD_OUT_SPLITS, SYNTHETIC_TRAIN_RANGE, TASK_SPLITS, TaskDistribution, task_distribution
from gi_envs.training import Training
from tests.floats import assert_float32_close

SHAPE_FREE = list(SHAPE_FREE_OBSERVATION)
FAST = {"steps_per_action": 2, "eval_samples": 128, "episode_length": 3}
SHAPES = [  # digits 64-32-10, MNIST 784-100-10, a 3-hidden-layer MLP, a synthetic task of another input size
    {"dataset": "digits", "hidden_sizes": (32,)},
    {"dataset": "mnist", "hidden_sizes": (100,)},
    {"dataset": "digits", "hidden_sizes": (64, 32, 16)},
    {"dataset": "synthetic-3", "hidden_sizes": (24, 24)},
]


def make(**kwargs: object) -> gym.Env:
    return gym.make("GradInstructor-v0", **{**FAST, **kwargs})


def test_equal_spaces_across_shapes_and_the_family() -> None:
    assert dataset_dims("synthetic-3")[0] not in (64, 784)  # another input size
    envs = [make(observation=SHAPE_FREE, max_hidden_layers=4, action_grid=(1, 1), **shape) for shape in SHAPES]
    envs.append(make(observation=SHAPE_FREE, task_family="meta-train"))
    envs.append(make(observation=SHAPE_FREE, task_family="held-out-shapes"))
    for env in envs:
        assert env.observation_space == envs[0].observation_space
        assert env.action_space == envs[0].action_space == gym.spaces.Box(-1, 1, (5,), np.float32)
        obs, _ = env.reset(seed=0)
        assert obs.shape == envs[0].observation_space.shape and envs[0].observation_space.contains(obs)


def test_slots_put_the_output_layer_last_and_refuse_a_deeper_mlp() -> None:
    assert layer_slots(2, 5) == [0, 4] and layer_slots(4, 5) == [0, 1, 2, 4] and layer_slots(5, 5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="does not fit 5 layer slots"):
        layer_slots(6, 5)
    with pytest.raises(ValueError, match="max_hidden_layers"):
        EnvConfig(hidden_sizes=(16, 16, 16), max_hidden_layers=2)


def test_splits_are_disjoint_from_meta_training() -> None:
    train = TASK_SPLITS["meta-train"].distribution
    drawn = [train.task_of(seed) for seed in range(400)]
    synthetic = [int(t.dataset.split("-")[1]) for t in drawn if t.dataset.startswith("synthetic-")]
    assert {t.dataset for t in drawn if not t.dataset.startswith("synthetic-")} == {"digits", "mnist"}
    assert synthetic and all(SYNTHETIC_TRAIN_RANGE[0] <= k < SYNTHETIC_TRAIN_RANGE[1] for k in synthetic)
    assert all(16 <= w <= 256 for t in drawn for w in t.hidden_sizes)
    assert {len(t.hidden_sizes) for t in drawn} == {1, 2, 3}
    assert {t.regime.optimizer for t in drawn} == {"sgd", "momentum", "adam"}
    train_synthetic = set(synthetic)
    for name in ("in-distribution", *HELD_OUT_SPLITS):
        split = [TASK_SPLITS[name].distribution.task_of(seed) for seed in range(200)]
        held = [int(t.dataset.split("-")[1]) for t in split if t.dataset.startswith("synthetic-")]
        assert not train_synthetic & set(held) and all(k >= SYNTHETIC_TRAIN_RANGE[1] for k in held)
        if name == "held-out-dataset":
            assert {t.dataset for t in split} == {"fashion-mnist"}
        if name == "held-out-shapes":
            assert all(w < 16 or w > 256 for t in split for w in t.hidden_sizes)
            assert 4 in {len(t.hidden_sizes) for t in split}
        if name == "held-out-optimizer":
            assert {t.regime.optimizer for t in split} == {"schedule-free-adamw"}
    assert "fashion-mnist" not in train.datasets and "schedule-free-adamw" not in train.optimizers
    assert TASK_SPLITS["long-horizon"].env_kwargs == {"episode_length": 40}


@pytest.mark.parametrize("parts", [["layer_stats"], ["layer_change_stats"], SHAPE_FREE])
def test_each_shape_free_part_passes_both_env_checkers(parts: list[str]) -> None:
    env = gi_envs.GradInstructorEnv(observation=parts, max_hidden_layers=3, **FAST)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(gi_envs.GradInstructorEnv(observation=parts, max_hidden_layers=3, **FAST), warn=False)


def test_a_family_env_passes_both_env_checkers_and_renders() -> None:
    env = gi_envs.GradInstructorEnv(observation=SHAPE_FREE, task_family="meta-train", render_mode="rgb_array", **FAST)
    gym_check_env(env)
    sb3_check_env(gi_envs.GradInstructorEnv(observation=SHAPE_FREE, task_family="meta-train", **FAST), warn=False)
    env.reset(seed=4)
    assert env.render().ndim == 3


def _zero_action_run(split: str, seed: int, action: float) -> tuple[FamilyTask, list[torch.Tensor]]:
    env = gi_envs.GradInstructorEnv(observation=SHAPE_FREE, task_family=split, **FAST)
    env.reset(options={"mlp_seed": seed})
    for _ in range(3):
        env.step(np.full(env.action_space.shape, action, np.float32))
    return env.task, [w[0].detach().clone() for w in env.task.member(0).mlp.weights]


@pytest.mark.parametrize("split", ["meta-train", "held-out-shapes", "held-out-optimizer"])
def test_the_zero_action_is_exactly_the_base_optimizer_on_every_shape(split: str) -> None:
    shapes, optimizers = set(), set()
    for seed in range(6):
        task, weights = _zero_action_run(split, seed, 0.0)
        drawn = task.drawn[0]
        training = Training(MLPSpec(drawn.dataset, drawn.hidden_sizes), load_dataset(drawn.dataset), 1)
        training.reset(0, seed, drawn.regime)
        training.run(3 * FAST["steps_per_action"])
        for mine, plain in zip(weights, training.mlp.weights):
            assert torch.equal(mine, plain[0].detach())
        shapes.add(drawn.hidden_sizes)
        optimizers.add(drawn.regime.optimizer)
    assert len(shapes) == 6


def test_a_uniform_action_is_the_base_optimizer_at_a_scaled_learning_rate() -> None:
    for seed in range(3):
        task, weights = _zero_action_run("meta-train", seed, 0.5)
        drawn = task.drawn[0]
        regime = dataclasses.replace(drawn.regime, lr=drawn.regime.lr * 16.0**0.5)
        training = Training(MLPSpec(drawn.dataset, drawn.hidden_sizes), load_dataset(drawn.dataset), 1)
        training.reset(0, seed, regime)
        training.run(3 * FAST["steps_per_action"])
        for mine, plain in zip(weights, training.mlp.weights):
            assert_float32_close(mine, plain[0].detach(), atol=1e-6, rtol=1e-4)


def test_the_vector_env_reports_each_drawn_task_and_replays_the_single_env() -> None:
    envs = gym.make_vec("GradInstructor-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        observation=SHAPE_FREE, task_family="held-out-shapes", **FAST)
    obs, info = envs.reset(seed=10)
    single = make(observation=SHAPE_FREE, task_family="held-out-shapes")
    for i in range(3):
        single_obs, single_info = single.reset(seed=10 + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert info["hidden_sizes"][i] == single_info["hidden_sizes"] and info["dataset"][i] == single_info["dataset"]
    actions = np.zeros((3, 5), np.float32)
    for _ in range(FAST["episode_length"]):
        obs, reward, terminated, truncated, info = envs.step(actions)
    assert truncated.all() and np.isfinite(info["test_accuracy"]).all()


def test_sb3_agents_of_each_family_train_on_the_family() -> None:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.env_util import make_vec_env

    from agents.rl.features import ShapeFreeMLP, enn_policy_kwargs

    config = EnvConfig.from_kwargs(observation=SHAPE_FREE, task_family="meta-train", **FAST)
    kwargs = enn_policy_kwargs(layout=config.observation_layout, features_dim=32)
    assert kwargs["features_extractor_class"] is ShapeFreeMLP
    venv = gi_envs.make_sb3_vec_env(2, 0, flatten_observation=True, observation=SHAPE_FREE,
                                    task_family="meta-train", **FAST)
    PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, policy_kwargs=kwargs, device="cpu").learn(16)
    RecurrentPPO("MlpLstmPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, device="cpu").learn(16)
    users = make_vec_env("GradInstructor-v0", n_envs=1, env_kwargs={"observation": SHAPE_FREE,
                                                                    "task_family": "meta-train", **FAST})
    SAC("MlpPolicy", users, learning_starts=4, batch_size=4, buffer_size=64, policy_kwargs=kwargs,
        device="cpu").learn(8)


def test_synthetic_tasks_are_reproducible_and_named_clearly() -> None:
    a, b = load_dataset("synthetic-7"), load_dataset("Synthetic-7")
    assert torch.equal(a.train.x, b.train.x) and (a.n_features, a.n_classes) == dataset_dims("synthetic-7")
    task = SyntheticTask.of(7)
    assert 8 <= task.n_features <= 128 and 2 <= task.n_classes <= 10
    assert len(a.test) == task.n_test and len(a.train) + len(a.val) == task.n_samples - task.n_test
    with pytest.raises(ValueError, match="synthetic-K"):
        load_dataset("synthetic-x")


def test_bad_family_arguments_name_the_value_and_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="image parts .*'weights'"):
        EnvConfig(task_family=True)
    with pytest.raises(ValueError, match="randomize_regime is not allowed"):
        EnvConfig(task_family=True, observation=SHAPE_FREE, randomize_regime=True)
    with pytest.raises(ValueError, match="task_family=.meta-tran. is not known"):
        EnvConfig(task_family="meta-tran", observation=SHAPE_FREE)
    with pytest.raises(ValueError, match="width_ranges"):
        TaskDistribution(width_ranges=((0, 8),))
    with pytest.raises(ValueError, match="unknown task distribution field"):
        task_distribution({"widths": [16, 32]})
    with pytest.raises(ValueError, match="action_grid"):
        EnvConfig(task_family=True, observation=SHAPE_FREE, action_grid=(4, 4))
    custom = EnvConfig(task_family={"datasets": ["digits"], "depths": [2]}, observation=SHAPE_FREE)
    assert custom.family.datasets == ("digits",) and EnvConfig(**custom.to_kwargs()) == custom


def test_the_benchmark_matrix_runs_the_universal_task_with_its_competitors(tmp_path, capsys) -> None:
    from tests.conftest import cli_error
    from train_agents import main

    main(["benchmark", "--task", "universal", "--algos", "ppo", "--seeds", "0", "--timesteps", "64", "--n-envs", "2",
          "--eval-episodes", "2", "--env-kwargs", "{episode_length: 2, steps_per_action: 1}", "--wandb-mode",
          "disabled", "--competitors", "adamw-lr-tuned", "--competitor-tuning", "2", "--out", str(tmp_path)])
    table = (tmp_path / "results.md").read_text()
    assert "#### meta-train, task `universal`: 2 unseen MLPs per seed" in table  # the family is the one column
    assert "| AdamW, lr tuned | 1/1 |" in table and "| zero action (sgd or momentum or adam as drawn) |" in table
    assert (tmp_path / "meta-train" / "ppo" / "seed0" / "model.zip").is_file()
    assert "--datasets and a dataset in --env-kwargs do not go with a task family" in cli_error(
        ["benchmark", "--task", "universal", "--algos", "ppo", "--datasets", "mnist", "--out", str(tmp_path / "x")],
        capsys)
