"""The randomized task: regime distributions from gym.make, observation parts, the oracle, export's refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import gi_envs
from agents.experiments.benchmark import results_table
from agents.rl.algorithms import ALGORITHMS, load_agent_config
from agents.rl.export import export_enn
from agents.rl.references import BEST_CONSTANT, CONSTANT_GRID, ORACLE, ZERO, constant_policy, reference_curves
from agents.rl.rollout import rollout_curves
from agents.rl.tasks import TASKS
from agents.rl.training import train_agent
from gi_envs.observation import (
    CHANGE_SCALE,
    OBSERVATION_PARTS,
    STATE_FIELDS,
    ObservationPart,
    register_observation_part,
)
from tests.floats import assert_float32_close

FAST = {"steps_per_action": 2, "episode_length": 3}
PARTS = [("weights", "weight_change"), ("weights", "training_state"), ("weights", "weight_change", "training_state")]


@pytest.mark.parametrize("parts", PARTS, ids=["+change", "+state", "+change+state"])
def test_each_observation_part_passes_both_checkers_and_shows_what_it_says(parts: tuple) -> None:
    kwargs = {"observation": parts, "randomize_regime": True, **FAST}
    gym_check_env(gi_envs.GradInstructorEnv(**kwargs), skip_render_check=True)
    sb3_check_env(gi_envs.GradInstructorEnv(**kwargs), warn=False)
    env = gym.make(gi_envs.ENV_ID, **kwargs)
    obs, info = env.reset(seed=1)
    image = obs["image"] if isinstance(obs, dict) else obs
    assert image.shape == ((8 if "weight_change" in parts else 4), 5, 10)
    action = np.full(env.action_space.shape, 0.5, np.float32)
    before = [w.detach().clone() for w in env.unwrapped.task.mlp.weights]
    obs, _, _, _, info = env.step(action)
    if "weight_change" in parts:
        assert np.abs(image[4:]).max() < 1e-3  # no change at reset (rms of zeros: its tiny epsilon)
        after = env.unwrapped.task.mlp.weights
        change = env.unwrapped.task.image_spec.image([a.detach() - b for a, b in zip(after, before)])[0]
        shown = obs["image"] if isinstance(obs, dict) else obs
        assert_float32_close(shown[4:], CHANGE_SCALE * change.numpy(), rtol=1e-5, atol=1e-5)
    if "training_state" in parts:
        state = dict(zip(STATE_FIELDS, obs["state"]))
        assert state["progress"] == pytest.approx(1 / 3) and state["val_accuracy"] == pytest.approx(
            info["val_accuracy"]) and state["log_train_loss"] == pytest.approx(np.log1p(info["train_loss"]))
        assert_float32_close(obs["state"][len(STATE_FIELDS):], action)


@pytest.mark.parametrize(("algo", "parts"), [(algo, PARTS[-1]) for algo in ALGORITHMS]
                         + [(algo, PARTS[0]) for algo in ("ppo", "sac", "recurrentppo")])
def test_every_algorithm_trains_on_every_observation_part(algo: str, parts: tuple, tmp_path: Path) -> None:
    env_kwargs = {"observation": parts, **FAST}
    config = load_agent_config(algo, overrides={"n_timesteps": 96, "n_envs": 2, "env_kwargs": env_kwargs},
                               task="randomized")
    if "learning_starts" in config.hyperparams:
        config.hyperparams["learning_starts"] = 16
    result = train_agent(config, seed=0, out=tmp_path, wandb_mode="disabled", eval_episodes=2, progress_bar=False)
    assert np.isfinite(result.evaluation[algo]["final_val_accuracy"])
    if algo != "ars":  # the features extractor reads the image channels and the state: its own layer, then both meet
        extractor = result.model.policy.actor.features_extractor if hasattr(result.model.policy, "actor") and \
            result.model.policy.actor is not None else result.model.policy.features_extractor
        assert extractor.image_shape == (8, 5, 10)
        assert extractor.state_dim == (5 + 32 if "training_state" in parts else 0)


def test_a_critic_that_reads_more_than_weights_is_refused_as_an_enn(tmp_path: Path) -> None:
    config = load_agent_config("ppo", overrides={"n_timesteps": 64, "n_envs": 2,
                                                 "env_kwargs": {"observation": ["weights", "training_state"], **FAST}})
    model = train_agent(config, seed=0, out=tmp_path, wandb_mode="disabled", eval_episodes=1, progress_bar=False).model
    with pytest.raises(ValueError, match=r"reads \['training_state'\] besides the weight image, so its value is no "
                                         r"function of an MLP's weights alone"):
        export_enn(model, "ppo", config.env_kwargs)


def test_the_oracle_keeps_each_mlps_best_constant_on_the_evaluation_mlps_never_the_test_split() -> None:
    env_kwargs = {"randomize_regime": True, **FAST}
    seeds = [11, 12, 13, 14]
    curves, settings = reference_curves(env_kwargs, seeds, tuning_episodes=3, oracle=True)
    runs = {a: rollout_curves(env_kwargs, constant_policy(a), seeds) for a in CONSTANT_GRID}
    finals = np.stack([runs[a].final_val_accuracy for a in CONSTANT_GRID])
    np.testing.assert_array_equal(curves[ORACLE].final_val_accuracy, finals.max(axis=0))  # the same MLPs, by seed
    best = finals.argmax(axis=0)
    tests = np.stack([runs[a].test_accuracy for a in CONSTANT_GRID])
    np.testing.assert_array_equal(curves[ORACLE].test_accuracy, tests[best, np.arange(4)])  # chosen on validation
    assert (curves[ORACLE].final_val_accuracy >= curves[BEST_CONSTANT].final_val_accuracy).all()
    assert "sees the outcome" in settings[ORACLE]


@pytest.mark.parametrize(("value", "message"), [
    ({"lr_range": [0.5, 0.01]}, r"randomize_regime: lr_range=\(0.5, 0.01\) is not allowed"),
    ({"init_scale_range": [0.0, 1.0]}, r"init_scale_range=\(0.0, 1.0\) is not allowed"),
    ({"batch_sizes": [4096]}, r"batch_sizes=\(4096,\) holds \[4096\], larger than the training split"),
    ({"lr": 0.1}, r"unknown regime distribution field\(s\) \['lr'\]"),
    ("narrow", r"randomize_regime='narrow' is not allowed; expected True or False, a distribution's name"),
])
def test_the_distribution_argument_rejects_bad_ranges_naming_them(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gi_envs.GradInstructorEnv(randomize_regime=value)


def test_a_distribution_set_from_gym_make_draws_every_mlps_regime_and_reset_reports_it() -> None:
    env = gym.make(gi_envs.ENV_ID, randomize_regime={"lr_range": [0.01, 0.02], "optimizers": ["adam"],
                                                     "batch_sizes": [64]}, **FAST)
    regimes = [env.reset(seed=s)[1] for s in range(6)]
    assert all(r["optimizer"] == "adam" and r["batch_size"] == 64 for r in regimes)
    assert all(0.01 * 0.02 <= r["lr"] <= 0.02 * 0.02 for r in regimes)  # Adam's share of the SGD range
    assert len({r["lr"] for r in regimes}) == 6
    assert TASKS["randomized"].env_kwargs["randomize_regime"] is True


def test_a_benchmark_on_the_randomized_task_shows_the_oracle_and_reevaluates_out_of_distribution(
        tmp_path: Path, capsys) -> None:
    import json

    import pandas as pd

    from train_agents import main

    bench, shifted = tmp_path / "bench", tmp_path / "wide"
    main(["benchmark", "--task", "randomized", "--algos", "ppo", "--seeds", "0", "--timesteps", "64", "--n-envs", "2",
          "--eval-episodes", "3", "--env-kwargs", "{episode_length: 3, steps_per_action: 2}",
          "--wandb-mode", "disabled", "--competitors", "adamw-lr-tuned", "schedule-free-adamw-lr-and-warm-up-tuned",
          "--competitor-tuning", "3", "--out", str(bench)])
    table = (bench / "results.md").read_text()
    assert "task `randomized`: 3 unseen MLPs per seed" in table and "| per-instance oracle |" in table
    # the competitors ran on the table's MLPs, tuned apart from them, and the best is a bar of its own
    assert "| AdamW, lr tuned | 1/1 |" in table and "| Schedule-Free AdamW, lr and warm-up tuned | 1/1 |" in table
    assert re.search(r"Schedule-Free AdamW, lr and warm-up tuned: lr [0-9.e-]+, warm-up (0|5|20) % of the updates, "
                     r"of \d+ tried", table)  # tuned on its two knobs
    assert "Δ val vs best competitor (pts)" in table and "The best agent, ppo, ends" in table
    assert "Competitors, tuned on the reference-tuning MLPs by mean final validation accuracy: AdamW" in table
    # time to target: every MLP reaches the best constant's own final accuracy under the best constant
    best = next(line for line in table.splitlines() if line.startswith("| best constant |"))
    assert "updates to target (reached)" in table and best.split(" | ")[-5].endswith("(100 %)")
    kept = json.loads((bench / "digits" / "competitors" / "adamw-lr-tuned" / "seed0.json").read_text())
    assert kept["key"]["eval_seeds"] == json.loads((bench / "digits" / "ppo" / "seed0" / "eval.json").read_text())[
        "eval_seeds"] and kept["key"]["tuning_episodes"] == 3
    main(["benchmark", "--task", "randomized", "--algos", "ppo", "a2c", "--seeds", "0", "1", "--eval-episodes", "3",
          "--env-kwargs", "{episode_length: 3, steps_per_action: 2}", "--wandb-mode", "disabled", "--tables-only",
          "--out", str(bench)])  # cells not run are counted, not trained
    rebuilt = (bench / "results.md").read_text()
    assert "| ppo | 1/2 |" in rebuilt and not (bench / "digits" / "a2c").exists()
    assert "| AdamW, lr tuned | 1/2 |" in rebuilt  # kept rows reused; seed 1 has none, and none is run
    assert "gap closed" in table and "mean final validation accuracy" in table
    main(["reevaluate", "--benchmark", str(bench), "--env-kwargs", "{randomize_regime: wide-lr}",
          "--competitors", "adamw-lr-tuned", "--competitor-tuning", "3", "--out", str(shifted)])
    assert "The agents of" in capsys.readouterr().out
    record = json.loads((shifted / "digits" / "ppo" / "seed0" / "eval.json").read_text())
    assert record["reevaluated_with"] == {"randomize_regime": "wide-lr"} and record["env_kwargs"]["episode_length"] == 3
    before = json.loads((bench / "digits" / "ppo" / "seed0" / "eval.json").read_text())
    assert record["eval_seeds"] == before["eval_seeds"] and record["policies"] != before["policies"]
    results = pd.read_csv(shifted / "results.csv")
    assert set(results.policy) >= {"ppo", "best constant", "per-instance oracle", "AdamW, lr tuned"}
    moved = json.loads((shifted / "digits" / "competitors" / "adamw-lr-tuned" / "seed0.json").read_text())
    assert moved["key"]["env_kwargs"]["randomize_regime"] == "wide-lr"  # run and tuned on the changed env
    written = (shifted / "digits" / "ppo" / "seed0" / "eval.json").stat().st_mtime_ns
    competitor_written = (shifted / "digits" / "competitors" / "adamw-lr-tuned" / "seed0.json").stat().st_mtime_ns
    main(["reevaluate", "--benchmark", str(bench), "--env-kwargs", "{randomize_regime: wide-lr}", "--out",
          str(shifted), "--resume", "--competitors", "adamw-lr-tuned", "--competitor-tuning", "3"])  # nothing again
    assert (shifted / "digits" / "ppo" / "seed0" / "eval.json").stat().st_mtime_ns == written
    assert (shifted / "digits" / "competitors" / "adamw-lr-tuned" / "seed0.json").stat().st_mtime_ns == \
        competitor_written


def test_an_agent_on_fewer_seeds_is_compared_with_the_references_on_its_own_mlps() -> None:
    """A budget-capped agent (seed 0 only) is judged against seed 0's references, not the mean over every seed:
    seed 1's MLPs are harder for everyone here, and would flatter it."""
    rows = []
    for seed, shift in ((0, 0.0), (1, -0.10)):
        for policy, accuracy in ((ZERO, 0.80), (BEST_CONSTANT, 0.90), (ORACLE, 0.95)):
            rows.append({"policy": policy, "seed": seed, "final_val_accuracy": accuracy + shift})
    rows.append({"policy": "td3", "seed": 0, "final_val_accuracy": 0.92, "train_wall_seconds": 60.0,
                 "env_steps_per_second": 50.0, "env_step_share": 0.1})
    results = pd.DataFrame(rows).assign(final_test_accuracy=lambda r: r.final_val_accuracy, episode_return=1.0)
    table, _ = results_table(results, ["td3"], n_seeds=2)
    td3 = next(line for line in table.splitlines() if line.startswith("| td3 |")).split(" | ")
    assert td3[1] == "1/2" and td3[5] == "+12.00" and td3[7] == "+2.00" and td3[9] == "+0.40"


def _weight_norms(task) -> np.ndarray:
    return np.stack([w.detach().flatten(1).norm(dim=1).numpy() for w in task.mlp.weights], axis=1)


@pytest.fixture
def weight_norms_part() -> Iterator[ObservationPart]:
    part = register_observation_part(ObservationPart("weight_norms", "state", lambda layout: layout.n_layers,
                                                     _weight_norms, "each weight matrix's Frobenius norm"))
    yield part
    del OBSERVATION_PARTS["weight_norms"]


def test_a_new_observation_part_is_one_entry_and_works_everywhere(weight_norms_part, tmp_path: Path) -> None:
    kwargs = {"observation": ("weights", "weight_change", "weight_norms"), **FAST}
    gym_check_env(gi_envs.GradInstructorEnv(**kwargs), skip_render_check=True)
    sb3_check_env(gi_envs.GradInstructorEnv(**kwargs), warn=False)
    env = gym.make(gi_envs.ENV_ID, **kwargs)
    obs, _ = env.reset(seed=0)
    assert env.observation_space["state"].shape == (2,) and obs["image"].shape == (8, 5, 10)
    assert_float32_close(obs["state"], _weight_norms(env.unwrapped.task)[0], rtol=1e-6)
    layout = env.unwrapped.task.observation_layout
    flat = gi_envs.observation.flatten({k: v[None] for k, v in obs.items()})[0]
    slices = layout.flat_slices()
    np.testing.assert_array_equal(flat[slices["weight_change"]], obs["image"][4:].reshape(-1))
    np.testing.assert_array_equal(flat[slices["weight_norms"]], obs["state"])
    config = load_agent_config("ppo", overrides={"n_timesteps": 64, "n_envs": 2, "env_kwargs": kwargs})
    result = train_agent(config, seed=0, out=tmp_path, wandb_mode="disabled", eval_episodes=2, progress_bar=False)
    extractor = result.model.policy.features_extractor
    assert extractor.image_shape == (8, 5, 10) and extractor.state_dim == 2  # read from the parts
