"""The native vector env against N single envs, gymnasium's vectorization modes, and the SB3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from sb3_contrib import TQC
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

import gi_envs
from gi_envs import ENV_ID, SB3VecEnv
from tests.floats import FLOAT32_ATOL, FLOAT32_RTOL, assert_float32_close

SHORT = {"episode_length": 3, "steps_per_action": 2}
# lr 100 with strong perturbations: MLPs diverge at different steps, so sub-envs reset out of step
DIVERGING = {"episode_length": 4, "steps_per_action": 3, "lr": 100.0, "perturbation_scale": 50.0,
             "action_mode": "perturb"}


def native(num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def holding(infos: dict) -> dict:
    """`infos` without the keys whose mask holds no sub-env: the native env gives every key at every step,
    Gymnasium's sync env only the keys some sub-env's info has; both say the same."""
    empty = {k for k in infos if k.startswith("_") and not np.any(infos[k])}
    return {k: v for k, v in infos.items() if k not in empty and f"_{k}" not in empty}


def assert_infos_equal(mine: dict, theirs: dict) -> None:
    mine, theirs = holding(mine), holding(theirs)
    assert sorted(mine) == sorted(theirs)
    for key, value in theirs.items():
        if isinstance(value, dict):
            assert_infos_equal(mine[key], value)
        elif key == "final_obs":
            for a, b in zip(mine[key], value):
                assert (a is None and b is None) or np.allclose(a, b, rtol=FLOAT32_RTOL, atol=1e-5)
        else:
            assert_float32_close(mine[key], value, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP], ids=["next-step", "same-step"])
@pytest.mark.parametrize("kwargs", [SHORT, DIVERGING, {**SHORT, "action_mode": "perturb"},
                                    {**DIVERGING, "action_mode": "scale"}],
                         ids=["truncations", "staggered-divergence", "perturb-mode", "scale-divergence"])
def test_native_vector_env_matches_single_envs_with_the_same_seeds(kwargs: dict, mode: AutoresetMode,
                                                                   torch_threads: int) -> None:
    envs = native(4, autoreset_mode=mode, **kwargs)
    reference = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode},
                             **kwargs)
    assert envs.metadata["autoreset_mode"] == mode
    obs, infos = envs.reset(seed=11)
    ref_obs, ref_infos = reference.reset(seed=11)
    np.testing.assert_array_equal(obs, ref_obs)
    assert_infos_equal(infos, ref_infos)
    rng = np.random.default_rng(0)
    ended = np.zeros(4, dtype=int)
    for _ in range(10):
        actions = rng.uniform(-1, 1, envs.action_space.shape).astype(np.float32)
        mine, theirs = envs.step(actions), reference.step(actions)
        assert_float32_close(mine[0], theirs[0], atol=1e-5)
        assert_float32_close(mine[1], theirs[1])
        np.testing.assert_array_equal(mine[2], theirs[2])
        np.testing.assert_array_equal(mine[3], theirs[3])
        assert_infos_equal(mine[4], theirs[4])
        ended += mine[2] | mine[3]
    assert ended.min() >= 2  # every sub-env went through autoresets


def test_native_vector_env_seeds_each_sub_env_and_takes_the_time_limit() -> None:
    envs = native(3, **SHORT)
    obs_a, info_a = envs.reset(seed=[1, 2, 3])
    single, single_info = gi_envs.GradInstructorEnv(**SHORT).reset(seed=2)
    np.testing.assert_array_equal(obs_a[1], single)
    assert info_a["mlp_seed"][1] == single_info["mlp_seed"]
    assert len(set(info_a["mlp_seed"].tolist())) == 3
    assert native(2).unwrapped.config.episode_length == gi_envs.EnvConfig.episode_length
    assert native(2, max_episode_steps=7).unwrapped.config.episode_length == 7
    assert native(2, episode_length=5).unwrapped.config.episode_length == 5
    with pytest.raises(ValueError, match=r"actions of shape \(3, 2\)"):
        envs.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="2 seeds given for 3 sub-envs"):
        envs.reset(seed=[1, 2])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasium_sync_and_async_modes_run_the_single_env(mode: str) -> None:
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode=mode, **SHORT)
    try:
        obs, infos = envs.reset(seed=3)
        envs.action_space.seed(3)  # the same actions every run: the truncation below must not hinge on luck
        assert obs.shape == (2, 4, 5, 10) and infos["_val_accuracy"].all()
        for _ in range(3):
            obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
        assert truncated.all() and np.isfinite(rewards).all()  # NEXT_STEP mode: truncation reported here
        reference, _ = native(2, **SHORT).reset(seed=3)
    finally:
        envs.close()
    assert np.array_equal(gi_envs.GradInstructorEnv(**SHORT).reset(seed=4)[0], reference[1])


def test_sb3_adapter_gives_what_dummy_vec_env_gives(torch_threads: int) -> None:
    mine = SB3VecEnv(native(3, autoreset_mode=AutoresetMode.SAME_STEP, **DIVERGING))
    theirs = DummyVecEnv([lambda: gym.make(ENV_ID, **DIVERGING) for _ in range(3)])
    mine.seed(5)
    theirs.seed(5)
    np.testing.assert_array_equal(mine.reset(), theirs.reset())
    assert mine.reset_infos == theirs.reset_infos
    rng = np.random.default_rng(1)
    dones_seen = 0
    for _ in range(8):
        actions = rng.uniform(-1, 1, (3, *mine.action_space.shape)).astype(np.float32)
        obs, rewards, dones, infos = mine.step(actions)
        ref_obs, ref_rewards, ref_dones, ref_infos = theirs.step(actions)
        assert_float32_close(obs, ref_obs, atol=1e-5)
        assert_float32_close(rewards, ref_rewards)
        np.testing.assert_array_equal(dones, ref_dones)
        for a, b in zip(infos, ref_infos):
            if "terminal_observation" in b:
                assert_float32_close(a.pop("terminal_observation"), b.pop("terminal_observation"), atol=1e-5)
            assert a.keys() == b.keys()
            assert all(a[k] == pytest.approx(b[k], rel=FLOAT32_RTOL, abs=FLOAT32_ATOL) for k in b)
        for a, b in zip(mine.reset_infos, theirs.reset_infos):
            assert a == pytest.approx(b, rel=FLOAT32_RTOL, abs=FLOAT32_ATOL)
        dones_seen += int(dones.sum())
    assert dones_seen >= 3


def test_sb3_adapter_refuses_next_step_autoreset() -> None:
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", **SHORT))


@pytest.mark.parametrize("algo", [PPO, SAC, TQC], ids=lambda a: a.__name__)
def test_sb3_algorithms_learn_on_the_native_vector_env(algo, tmp_path) -> None:
    venv = VecNormalize(VecMonitor(gi_envs.make_sb3_vec_env(4, **SHORT)), norm_reward=False)
    venv.seed(0)
    kwargs = {"n_steps": 32, "batch_size": 64} if algo is PPO else {"learning_starts": 32, "batch_size": 32}
    model = algo("MlpPolicy", venv, seed=0, **kwargs)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    episodes = list(model.ep_info_buffer)
    assert len(episodes) >= 16 and all(e["l"] == SHORT["episode_length"] for e in episodes)
    assert all(0.0 < e["r"] <= SHORT["episode_length"] for e in episodes)  # returns are summed accuracies
    assert venv.obs_rms.count > 256  # VecNormalize saw the observations
    model.save(tmp_path / "model")
    reloaded = algo.load(tmp_path / "model")
    actions, _ = reloaded.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4, *venv.action_space.shape) and np.abs(actions).max() <= 1.0


def test_gymnasium_vector_wrappers_run_on_the_native_env() -> None:
    envs = native(3, **SHORT)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP  # Gymnasium's default
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs = gym.wrappers.vector.NormalizeObservation(envs)
    envs = gym.wrappers.vector.ClipAction(envs)
    obs, _ = envs.reset(seed=0)
    episodes = []
    for _ in range(2 * (SHORT["episode_length"] + 1)):
        obs, rewards, terminated, truncated, infos = envs.step(np.full(envs.action_space.shape, 5.0, np.float32))
        assert np.isfinite(obs).all()
        if "episode" in infos:
            episodes += [float(r) for r, done in zip(infos["episode"]["r"], infos["_episode"]) if done]
            assert (infos["episode"]["l"][infos["_episode"]] == SHORT["episode_length"]).all()
    assert len(episodes) == 6 and all(0.0 < r <= SHORT["episode_length"] for r in episodes)


def test_autoreset_mode_is_checked() -> None:
    with pytest.raises(ValueError, match=r"autoreset_mode='later' is not allowed; expected one of"):
        native(2, autoreset_mode="later")
    assert native(2, autoreset_mode="SameStep").metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
