"""RL agents on GradInstructor-v0: every algorithm trains, saves and reloads; configs fail early;
the ENN body fits small weight images; the benchmark writes its table; W&B offline runs hold what we log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from agents.experiments.benchmark import run_benchmark
from agents.experiments.engine import EngineOptions
from agents.rl.algorithms import ALGORITHMS, load_agent_config
from agents.rl.evaluation import agent_policy
from agents.rl.features import WeightImageCNN
from agents.rl.rollout import random_policy, rollout_curves
from agents.rl.training import train_agent
from agents.seeds import evaluation_seeds
from tests.conftest import cli_error
from train_agents import main

TINY_ENV = {"episode_length": 4, "steps_per_action": 2}


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_trains_saves_and_reloads(algo: str, tmp_path: Path) -> None:
    config = load_agent_config(algo, overrides={"n_timesteps": 200, "env_kwargs": TINY_ENV})
    result = train_agent(config, seed=0, out=tmp_path, wandb_mode="disabled", eval_episodes=2, progress_bar=False)
    assert result.model.num_timesteps >= 200
    for name in ["model.zip", "config.yaml", "monitor.csv", "progress.csv", "eval.json", "learning_curve.png"]:
        assert (tmp_path / name).is_file(), name
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["algo"] == algo and saved["seed"] == 0 and saved["env_kwargs"] == TINY_ENV
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert set(evaluation["policies"]) == {algo, "zero action (plain SGD)", "random actions", "best constant",
                                           "schedule"}
    assert set(evaluation["reference_settings"]) == {"best constant", "schedule"}
    assert evaluation["eval_seeds"] == evaluation_seeds(0, 2)
    assert 0.0 < evaluation["policies"][algo]["final_test_accuracy"] <= 1.0
    reloaded = ALGORITHMS[algo].cls.load(tmp_path / "model.zip", device="cpu")
    curves = rollout_curves(TINY_ENV, agent_policy(reloaded), [5])
    assert curves.val_accuracy.shape == (1, 5) and np.isfinite(curves.returns).all()


def test_critics_sit_on_the_enn_body() -> None:
    config = load_agent_config("ppo", overrides={"n_timesteps": 64, "env_kwargs": TINY_ENV})
    from agents.rl.algorithms import build_model
    from agents.rl.training import make_training_env

    model = build_model(config, make_training_env(TINY_ENV, 2, 0, None), seed=0)
    assert isinstance(model.policy.features_extractor, WeightImageCNN)
    assert model.policy.normalize_images is False


@pytest.mark.parametrize(
    ("algo", "raw", "message"),
    [
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "learning_rat": 0.1}, r"unknown key\(s\) \['learning_rat'\] for PPO"),
        ("sac", {"n_envs": 2, "n_timesteps": 10, "n_epochs": 3}, r"unknown key\(s\) \['n_epochs'\] for SAC"),
        ("ppo", {"n_envs": 0, "n_timesteps": 10}, r"n_envs=0 must be a positive integer"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "policy": "CnnPolicyX"}, r"policy='CnnPolicyX'"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "policy_kwargs": {"net_arc": [8]}},
         r"unknown policy_kwargs \['net_arc'\]"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "enn": {"depth": 3}}, r"unknown enn key\(s\) \['depth'\]"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "action_noise": {"type": "normal"}}, r"action_noise=.*off-policy"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "env_kwargs": {"dataset": "cifar"}}, r"dataset='cifar'"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "learning_rate": "fast"}, r"learning_rate='fast' must be a number"),
        ("ppo", {"n_envs": 2, "n_timesteps": 10, "batch_size": 1}, r"PPO rejected the config"),
    ],
)
def test_bad_configs_fail_before_training_with_a_clear_message(algo, raw, message, tmp_path: Path) -> None:
    path = tmp_path / f"{algo}.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        config = load_agent_config(algo, path)
        train_agent(config, seed=0, out=out, wandb_mode="disabled", progress_bar=False)
    assert not (out / "model.zip").exists() and not (out / "monitor.csv").exists()


def test_unknown_algorithm_and_missing_config_fail_from_the_command_line(tmp_path: Path, capsys) -> None:
    assert re.search(r"unknown algorithm 'ppo2'; expected one of \['a2c', 'ars'",
                     cli_error(["train", "--algo", "ppo2", "--out", str(tmp_path / "x")], capsys))
    assert "nope.yaml does not exist" in cli_error(["train", "--algo", "ppo", "--config", str(tmp_path / "nope.yaml")],
                                                   capsys)
    assert "unknown algorithm 'dqn'" in cli_error(["benchmark", "--algos", "ppo", "dqn", "--seeds", "0", "--out",
                                                   str(tmp_path / "b")], capsys)
    assert not (tmp_path / "b").exists()  # nothing trained before the bad name was found


@pytest.mark.parametrize("shape", [(2, 5, 10), (2, 15, 118), (3, 1, 2), (2, 100, 784)])
def test_enn_body_reads_small_and_wide_weight_images(shape) -> None:
    import gymnasium as gym

    extractor = WeightImageCNN(gym.spaces.Box(-20, 20, shape, np.float32), features_dim=64)
    images = torch.randn(4, *shape, requires_grad=True)
    features = extractor(images)
    assert features.shape == (4, 64)
    features.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_benchmark_writes_csv_markdown_png_with_welch_tests(tmp_path: Path) -> None:
    result = run_benchmark(["a2c", "ars"], [0, 1], timesteps=160, out=tmp_path, env_kwargs=TINY_ENV,
                           competitors=[],
                           wandb_mode="disabled", eval_episodes=2, options=EngineOptions(progress=False))
    results = pd.read_csv(tmp_path / "results.csv")
    assert sorted(results.policy.unique()) == ["a2c", "ars", "best constant", "random actions", "schedule",
                                               "zero action (plain SGD)"]
    assert len(results) == 6 * 2
    agents_rows = results[results.policy.isin(["a2c", "ars"])]
    assert (agents_rows.env_steps_per_second > 0).all() and agents_rows.env_step_share.between(0, 1).all()
    table = (tmp_path / "results.md").read_text()
    assert "Δ val vs zero action (pts)" in table and "Δ val vs best constant (pts)" in table
    assert "| a2c |" in table and "| random actions |" in table and "| best constant |" in table
    assert "Tuned on separate seeds by mean episode return: best constant: a=" in table
    assert "plain SGD" in result.verdict and "best constant" in result.verdict
    assert "| a2c | 2/2 |" in table
    assert (tmp_path / "learning_curves_digits.png").stat().st_size > 1000
    curves = pd.read_csv(tmp_path / "learning_curves_digits.csv")
    assert set(curves.name) == {"a2c", "ars"} and set(curves.run) == {0, 1}


def test_benchmark_hyperparams_reach_every_cell_and_a_change_trains_again(tmp_path: Path, capsys) -> None:
    kwargs = dict(out=tmp_path, env_kwargs=TINY_ENV, wandb_mode="disabled", eval_episodes=2, timesteps=64)
    run_benchmark(["trpo"], [0], competitors=[],
                  hyperparams={"sub_sampling_factor": 4, "n_steps": 8, "batch_size": 64},
                  options=EngineOptions(progress=False), **kwargs)
    saved = yaml.safe_load((tmp_path / "digits" / "trpo" / "seed0" / "config.yaml").read_text())
    assert saved["sub_sampling_factor"] == 4 and saved["n_steps"] == 8
    capsys.readouterr()
    again = run_benchmark(["trpo"], [0], competitors=[],
                          hyperparams={"sub_sampling_factor": 2, "n_steps": 8, "batch_size": 64},
                          options=EngineOptions(resume=True), **kwargs)
    assert "sub_sampling_factor 4 -> 2" in capsys.readouterr().out  # the change that trains it again
    assert len(again.outcome.finished) == 1 and not again.outcome.kept


def test_benchmark_hyperparams_reject_keys_an_algorithm_lacks_or_the_matrix_sets(tmp_path: Path, capsys) -> None:
    base = ["benchmark", "--algos", "trpo", "ppo", "--seeds", "0", "--out", str(tmp_path / "b"), "--hyperparams"]
    error = cli_error([*base, "{sub_sampling_factor: 4}"], capsys)
    assert "--hyperparams sets ['sub_sampling_factor'], which PPO does not take; it takes [" in error
    assert "--hyperparams sets ['n_envs'], which the matrix sets through --n-envs" in cli_error([*base, "{n_envs: 4}"],
                                                                                               capsys)
    assert "expected a mapping such as '{sub_sampling_factor: 4}'" in cli_error([*base, "[4]"], capsys)
    assert not (tmp_path / "b").exists()


def test_wandb_offline_run_holds_config_metrics_image_and_model(tmp_path: Path) -> None:
    config = load_agent_config("ppo", overrides={"n_timesteps": 128, "n_envs": 4, "env_kwargs": TINY_ENV})
    config.hyperparams.update(n_steps=16, batch_size=32)
    train_agent(config, seed=3, out=tmp_path, wandb_mode="offline", eval_episodes=2, progress_bar=False)
    run_dirs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1 and list(run_dirs[0].glob("run-*.wandb"))
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    summary = json.loads(subprocess.run([wandb_cli, "leet", "inspect", "--summary", "--json", str(run_dirs[0])],
                                        capture_output=True, text=True, check=True).stdout)
    assert summary["name"] == "ppo-seed3" and summary["state"] == "finished"
    assert summary["config"]["algo"] == "ppo" and summary["config"]["seed"] == 3
    assert summary["config"]["env_kwargs"] == TINY_ENV and summary["config"]["task"] == "default"
    logged = summary["summary"]
    assert isinstance(logged["train/approx_kl"], float)  # a NumPy float32 in SB3's logger: it reaches W&B too
    for key in ["rollout/ep_rew_mean", "train/value_loss", "time/total_timesteps", "episode/val_accuracy",
                "eval/ppo/final_test_accuracy", "eval/zero action (plain SGD)/final_val_accuracy",
                "train/env_step_share"]:
        assert key in logged, key
    assert logged["learning_curve"]["_type"] == "image-file"
    records = subprocess.run([wandb_cli, "leet", "inspect", "--json", str(run_dirs[0])],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    artifacts = [json.loads(r)["artifact"] for r in records if '"type":"artifact"' in r]
    assert [(a["name"], a["type"]) for a in artifacts] == [("ppo-seed3", "model")]
    assert [c["path"] for c in artifacts[0]["manifest"]["contents"]] == ["model.zip"]


def test_a_train_run_is_named_after_its_folder_and_records_its_task(tmp_path: Path) -> None:
    out = tmp_path / "lr-probe-3"
    assert main(["train", "--algo", "ppo", "--timesteps", "64", "--n-envs", "2", "--eval-episodes", "1",
                 "--task", "randomized", "--env-kwargs", "{episode_length: 2, steps_per_action: 1}",
                 "--out", str(out), "--wandb-mode", "offline"]) == 0
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    summary = json.loads(subprocess.run([wandb_cli, "leet", "inspect", "--summary", "--json", str(run_dir)],
                                        capture_output=True, text=True, check=True).stdout)
    assert summary["name"] == "lr-probe-3" and summary["config"]["task"] == "randomized"
    assert not list(out.glob(".train-*"))  # the scratch it trained in is gone


@pytest.mark.slow
def test_ppo_beats_random_actions_on_unseen_mlps(tmp_path: Path) -> None:
    config = load_agent_config("ppo")
    result = train_agent(config, seed=0, out=tmp_path, wandb_mode="disabled", eval_episodes=2, progress_bar=False)
    seeds = evaluation_seeds(0, 30)
    agent = rollout_curves({}, agent_policy(result.model), seeds)
    random = rollout_curves({}, random_policy, seeds)
    from scipy import stats

    assert agent.returns.mean() > random.returns.mean()
    assert stats.ttest_rel(agent.returns, random.returns, alternative="greater").pvalue < 0.05


def test_benchmark_resume_keeps_finished_runs_and_redoes_changed_ones(tmp_path: Path, capsys) -> None:
    kwargs = dict(out=tmp_path, env_kwargs=TINY_ENV, wandb_mode="disabled", eval_episodes=2, competitors=[])
    first = run_benchmark(["a2c"], [0, 1], timesteps=160, options=EngineOptions(progress=False), **kwargs)
    model_time = (tmp_path / "digits" / "a2c" / "seed0" / "model.zip").stat().st_mtime_ns
    capsys.readouterr()
    again = run_benchmark(["a2c"], [0, 1], timesteps=160, options=EngineOptions(resume=True), **kwargs)
    assert "kept 2 finished cell(s)" in capsys.readouterr().out
    assert (tmp_path / "digits" / "a2c" / "seed0" / "model.zip").stat().st_mtime_ns == model_time
    pd.testing.assert_frame_equal(first.results, again.results)
    assert len(again.outcome.kept) == 2 and not again.outcome.finished
    retrained = run_benchmark(["a2c"], [0], timesteps=320, options=EngineOptions(resume=True, progress=False),
                              **kwargs)  # another budget: trained again
    assert not retrained.outcome.kept and len(retrained.outcome.finished) == 1
