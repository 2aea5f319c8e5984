"""GradInstructor-v0 as a user drives it: checkers, the zero action, seeding, errors, episode ends."""

from __future__ import annotations

import dataclasses
import inspect

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from torch import nn

import gi_envs
from gi_envs.datasets import load_dataset
from tests.conftest import REPO
from tests.floats import assert_float32_close

FAST = {"steps_per_action": 2, "episode_length": 3}


def reference_sequential(generator: torch.Generator, init_scale: float = 1.0) -> nn.Sequential:
    """A 64-32-10 `nn.Sequential` drawn from `generator` as the env draws its MLP (PyTorch's init, layer by layer:
    weight, then bias), its weight matrices times `init_scale`."""
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1 / layer.in_features**0.5
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        for layer in (model[0], model[2]):
            layer.weight *= init_scale
    return model


@pytest.mark.parametrize("action_mode", ["scale", "perturb"])
@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_env_passes_gymnasium_and_sb3_checkers(dataset: str, action_mode: str, data_dir) -> None:
    kwargs = {"dataset": dataset, "data_dir": str(data_dir), "action_mode": action_mode, **FAST}
    env = gym.make(gi_envs.ENV_ID, **kwargs)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gi_envs.GradInstructorEnv(**kwargs), warn=False)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    expected = (4, 5, 10) if dataset == "digits" else (4, 5, 118)  # mean + rms channels; 32*0.15 -> 5 rows
    assert obs.shape == expected


@pytest.mark.parametrize("action_mode, action, randomize",
                         [("scale", 0.0, False), ("perturb", 0.0, False), ("scale", 0.5, False), ("scale", -1.0, False),
                          ("scale", 0.0, True), ("scale", 0.5, True)],
                         ids=["scale-zero", "perturb-zero", "scale-uniform-0.5", "scale-uniform-minus-1",
                              "randomized-regime-zero", "randomized-regime-uniform-0.5"])
def test_zero_action_is_plain_sgd_and_a_uniform_scale_action_is_sgd_at_the_scaled_rate(
        action_mode: str, action: float, randomize: bool, torch_threads: int) -> None:
    """The zero action is plain SGD in every mode; in scale mode a uniform action `a` is plain SGD at
    learning rate lr * max_scale ** a (weights and biases alike), checked against nn.Sequential + SGD.
    Under randomize_regime, the same holds in the MLP's own regime (reset info): its learning rate,
    batch size, init scale, weight decay and share of the training data."""
    base_lr, steps, length, max_scale = 0.05, 10, 8, 16.0
    env = gym.make(gi_envs.ENV_ID, lr=base_lr, batch_size=32, steps_per_action=steps, episode_length=length,
                   action_mode=action_mode, max_scale=max_scale, randomize_regime=randomize)
    _, info = env.reset(seed=7)
    assert ("lr" in info) is randomize and ("init_scale" in info) is randomize
    if randomize:
        assert 0.1 * base_lr <= info["lr"] <= 10 * base_lr and info["lr"] != base_lr and 0.25 <= info["init_scale"] <= 2
    regime = env.unwrapped.task.regime(0)
    assert regime.to_dict() == {k: info[k] for k in regime.to_dict()} if randomize else regime.lr == base_lr
    lr, batch = regime.lr * max_scale**action, regime.batch_size
    task = env.unwrapped.task

    # An independent plain loop: nn.Linear layers, torch.optim.SGD, shuffled epochs of the MLP's share, drop_last.
    generator = torch.Generator().manual_seed(info["mlp_seed"])
    model = reference_sequential(generator, regime.init_scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=regime.weight_decay)
    data = load_dataset("digits")
    n = len(data.train)
    share = regime.subset_size(n)
    subset = torch.randperm(n, generator=generator)[:share] if share < n else torch.arange(n)
    order, cursor = subset[torch.randperm(share, generator=generator)], 0

    uniform = np.full(env.action_space.shape, action, np.float32)
    for t in range(length):
        _, reward, terminated, truncated, info = env.step(uniform)
        for _ in range(steps):
            if cursor + batch > len(order):
                order, cursor = subset[torch.randperm(share, generator=generator)], 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            optimizer.zero_grad()
            F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            optimizer.step()
        for mine, theirs in zip(task.mlp.parameters(), model.parameters()):
            assert_float32_close(mine[0].detach(), theirs.detach(), atol=2e-6, rtol=1e-5)
        with torch.no_grad():
            accuracy = (model(data.val.x).argmax(1) == data.val.y).float().mean()
        assert reward == pytest.approx(float(accuracy), abs=1e-6)
        assert terminated is False and truncated is (t == length - 1)
    with torch.no_grad():
        test_accuracy = float((model(data.test.x).argmax(1) == data.test.y).float().mean())
    assert info["test_accuracy"] == pytest.approx(test_accuracy, abs=1e-6)
    assert test_accuracy > 0.8 or lr < 0.04  # SGD really learns digits in 80 minibatches (unless lr is small)


def rollout(seed: int, n_steps: int = 4, **kwargs) -> tuple[list[np.ndarray], list[float]]:
    env = gym.make(gi_envs.ENV_ID, **{**FAST, "episode_length": 10, **kwargs})
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(n_steps):
        obs, reward, *_ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


def test_same_seed_same_trajectory_and_other_seeds_differ() -> None:
    obs_a, rew_a = rollout(3)
    obs_b, rew_b = rollout(3)
    obs_c, rew_c = rollout(4)
    assert rew_a == rew_b and all(np.array_equal(a, b) for a, b in zip(obs_a, obs_b))
    assert not np.array_equal(obs_a[0], obs_c[0]) and rew_a != rew_c


def test_actions_change_training_and_out_of_box_actions_are_clipped() -> None:
    env = gym.make(gi_envs.ENV_ID, **FAST)
    results = {}
    for name, value in [("zero", 0.0), ("one", 1.0), ("five", 5.0)]:
        env.reset(seed=1)
        obs, *_ = env.step(np.full(env.action_space.shape, value, np.float32))
        results[name] = obs
    assert not np.array_equal(results["zero"], results["one"])
    assert np.array_equal(results["one"], results["five"])


def test_wrongly_shaped_action_raises() -> None:
    env = gym.make(gi_envs.ENV_ID, **FAST)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action of shape \(5,\)"):
        env.step(np.zeros(5, np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "cifar10"}, r"dataset='cifar10'.*\['digits', 'mnist', 'fashion-mnist'\]"),
        ({"activation": "swish"}, r"activation='swish'.*relu"),
        ({"init": "xavier"}, r"init='xavier'.*\['default', 'he'\]"),
        ({"reward": "loss"}, r"reward='loss'.*\['accuracy', 'delta'\]"),
        ({"resolution": 0.0}, r"resolution=0.0.*\(0.0, 1.0\]"),
        ({"resolution": 2}, r"resolution=2"),
        ({"hidden_sizes": (32, 0)}, r"hidden_sizes=\(32, 0\).*positive integers"),
        ({"action_grid": (4,)}, r"action_grid=\(4,\).*2 positive integers"),
        ({"steps_per_action": 0}, r"steps_per_action=0.*integer"),
        ({"batch_size": 2.5}, r"batch_size=2.5.*integer"),
        ({"lr": -1.0}, r"lr=-1.0"),
        ({"perturbation_scale": -0.1}, r"perturbation_scale=-0.1"),
        ({"episode_length": 0}, r"episode_length=0"),
        ({"eval_samples": -1}, r"eval_samples=-1"),
        ({"action_mode": "add"}, r"action_mode='add'.*\['scale', 'perturb'\]"),
        ({"max_scale": 1.0}, r"max_scale=1.0.*\(1, 1000\]"),
        ({"max_scale": 0.5}, r"max_scale=0.5"),
        ({"randomize_regime": "yes"}, r"randomize_regime='yes'.*True or False"),
        ({"learning_rate": 0.1}, r"unknown GradInstructor-v0 argument\(s\) \['learning_rate'\]"),
    ],
)
def test_bad_keyword_values_name_the_parameter_and_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gi_envs.GradInstructorEnv(**kwargs)


def test_batch_larger_than_the_training_split_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"batch_size=5000 must lie in \[1, 1150\]"):
        gi_envs.GradInstructorEnv(batch_size=5000)


def test_diverging_mlp_terminates_with_finite_observation_and_reward() -> None:
    env = gym.make(gi_envs.ENV_ID, lr=100.0, steps_per_action=5, episode_length=10, action_mode="perturb")
    env.reset(seed=0)
    # The strongest perturbation, every step: an unseeded random action let the MLP survive all 10
    # steps in about 1 run of 40, so the test failed now and then.
    strongest = np.ones(env.action_space.shape, dtype=np.float32)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(strongest)
        assert np.isfinite(obs).all() and np.isfinite(reward) and env.observation_space.contains(obs)
        if terminated:
            break
    assert terminated and info["diverged"] and not truncated
    assert reward == 0.0 and info["test_accuracy"] == 0.0


def test_episode_truncates_with_test_accuracy_and_delta_rewards_sum_up() -> None:
    env = gym.make(gi_envs.ENV_ID, reward="delta", **FAST)
    _, info = env.reset(seed=2)
    start, total, truncated, steps = info["val_accuracy"], 0.0, False, 0
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        total += reward
        steps += 1
        assert not terminated and ("test_accuracy" in info) is truncated
    assert steps == FAST["episode_length"]
    assert total == pytest.approx(info["val_accuracy"] - start, abs=1e-6)
    assert 0.0 <= info["test_accuracy"] <= 1.0


def test_eval_samples_zero_uses_the_whole_validation_split() -> None:
    env = gi_envs.GradInstructorEnv(eval_samples=0)
    assert len(env.task.eval_y) == len(load_dataset("digits").val)
    assert len(gi_envs.GradInstructorEnv(eval_samples=100).task.eval_y) == 100


def test_image_stats_add_channels_to_the_observation() -> None:
    env = gym.make(gi_envs.ENV_ID, image_stats=("mean", "rms"), **FAST)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 5, 10) and env.observation_space.shape == (4, 5, 10)
    assert float(obs[2:].mean()) > 0.3  # rms channels of a fresh MLP: about the init's std (0.58)
    with pytest.raises(ValueError, match=r"image_stats=\('mean', 'mean'\)"):
        gi_envs.GradInstructorEnv(image_stats=("mean", "mean"))


def test_episode_length_alone_sets_the_episode_length_and_the_spec_says_so() -> None:
    env = gym.make(gi_envs.ENV_ID, episode_length=50, steps_per_action=1)
    assert env.spec.max_episode_steps == 50
    env.reset(seed=0)
    steps, info = 0, {}
    while True:
        _, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert steps == 50 and truncated and "test_accuracy" in info
    assert gym.make(gi_envs.ENV_ID).spec.max_episode_steps == gi_envs.EnvConfig.episode_length


def test_a_scale_action_that_diverges_ends_the_episode_without_nan() -> None:
    env = gym.make(gi_envs.ENV_ID, lr=10.0, max_scale=1000.0, init="he", steps_per_action=10, episode_length=10)
    env.reset(seed=0)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(np.ones(env.action_space.shape, np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward) and np.isfinite(info["train_loss"] if not
                                                                              info["diverged"] else 0.0)
        if terminated:
            break
    assert terminated and info["diverged"] and reward == 0.0


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("action", [0.0, 0.5])
def test_the_zero_action_is_the_plain_optimizer_and_a_uniform_action_its_scaled_learning_rate(
        optimizer: str, action: float) -> None:
    """In scale mode an action scales each block's update, for momentum and Adam as for SGD: the zero action is
    the plain optimizer, a uniform action `a` the optimizer at learning rate lr * max_scale ** a."""
    lr = {"momentum": 0.01, "adam": 2e-3}[optimizer]
    env = gym.make(gi_envs.ENV_ID, optimizer=optimizer, lr=lr, weight_decay=1e-3, steps_per_action=5,
                   episode_length=4)
    _, info = env.reset(seed=3)
    generator = torch.Generator().manual_seed(info["mlp_seed"])
    model = reference_sequential(generator)
    scaled = lr * 16.0**action
    reference = torch.optim.SGD(model.parameters(), lr=scaled, momentum=0.9, weight_decay=1e-3) \
        if optimizer == "momentum" else torch.optim.AdamW(model.parameters(), lr=scaled, weight_decay=1e-3)
    data = load_dataset("digits")
    order, cursor = torch.randperm(len(data.train), generator=generator), 0
    for _ in range(4):
        env.step(np.full(env.action_space.shape, action, np.float32))
        for _ in range(5):
            if cursor + 32 > len(order):
                order, cursor = torch.randperm(len(data.train), generator=generator), 0
            idx = order[cursor : cursor + 32]
            cursor += 32
            reference.zero_grad()
            F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            reference.step()
    for mine, theirs in zip(env.unwrapped.task.mlp.parameters(), model.parameters()):
        assert_float32_close(mine[0].detach(), theirs.detach(), atol=2e-6, rtol=2e-5)


def test_the_env_arguments_docs_agree_with_envconfig() -> None:
    from gi_envs.task import arguments_table

    table = arguments_table()
    names = [f.name for f in dataclasses.fields(gi_envs.EnvConfig)]
    assert [line.split("`")[1] for line in table.splitlines()[2:]] == names and all(
        f.metadata.get("doc") for f in dataclasses.fields(gi_envs.EnvConfig))
    assert table in (REPO / "docs" / "environment.md").read_text()  # the user's guide repeats it verbatim
    docstring = inspect.cleandoc(gi_envs.GradInstructorEnv.__doc__ or "")
    assert table in docstring  # and so does `help(GradInstructorEnv)`
    defaults = gi_envs.EnvConfig()
    assert all(f"| `{name}` | `{repr(getattr(defaults, name)).replace(chr(39), chr(34))}` |" in table
               for name in names)  # the defaults shown are the defaults used


# ---- the clients users bring ----


def test_sb3_make_vec_env_and_render_mode_none_work() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(gi_envs.ENV_ID, n_envs=2, seed=0, env_kwargs={"episode_length": 2, "steps_per_action": 1})
    assert venv.reset().shape == (2, 4, 5, 10) and venv.get_attr("render_mode") == ["rgb_array", "rgb_array"]
    frames = venv.get_images()
    assert len(frames) == 2 and frames[0].shape[2] == 3 and frames[0].dtype == np.uint8 and frames[0].std() > 0
    env = gym.make(gi_envs.ENV_ID, render_mode=None)
    assert env.unwrapped.render_mode is None and env.metadata["render_modes"] == ["rgb_array"]
    with pytest.raises(ValueError, match=r"render_mode='ansi' is not allowed; expected None or one of"):
        gi_envs.GradInstructorEnv(render_mode="ansi")


def test_an_unknown_keyword_is_a_type_error_in_pythons_words() -> None:
    with pytest.raises(TypeError, match=r"__init__\(\) got an unexpected keyword argument 'frameskip'"):
        gym.make(gi_envs.ENV_ID, frameskip=4)  # TorchRL's GymEnv passes it and retries without on exactly this
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'frameskip'"):
        gym.make_vec(gi_envs.ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", frameskip=4)


def test_the_vector_env_gives_every_info_key_at_reset_and_at_every_step() -> None:
    envs = gym.make_vec(gi_envs.ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", episode_length=2,
                        steps_per_action=1, randomize_regime=True)
    _, infos = envs.reset(seed=0)
    keys = {k for k in infos if not k.startswith("_")}
    assert {"mlp_seed", "val_accuracy", "train_loss", "diverged", "test_accuracy", "lr"} <= keys
    seeds = infos["mlp_seed"].copy()
    for _ in range(4):
        _, _, _, _, infos = envs.step(envs.action_space.sample())
        assert {k for k in infos if not k.startswith("_")} == keys and infos["_mlp_seed"].all()
    assert not np.array_equal(infos["mlp_seed"], seeds)  # new MLPs after the autoresets, in the step infos too
    assert envs.unwrapped.get_attr("num_envs") == (3, 3, 3) and envs.unwrapped.call("render") == (None,) * 3


@pytest.mark.parametrize("seed", [2**64, "abc", None, 1.7, -1, True])
def test_a_bad_mlp_seed_option_is_refused_naming_it(seed: object) -> None:
    env = gym.make(gi_envs.ENV_ID)
    with pytest.raises(ValueError, match=r"reset option mlp_seed=.* is not allowed; expected an integer in"):
        env.reset(options={"mlp_seed": seed})


def test_step_after_the_episode_ended_needs_a_reset() -> None:
    env = gi_envs.GradInstructorEnv(episode_length=1, steps_per_action=1)
    env.reset(seed=0)
    _, _, _, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
    assert truncated
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.step(np.zeros(env.action_space.shape, np.float32))
    env.reset()
    env.step(np.zeros(env.action_space.shape, np.float32))  # a reset starts the next episode
