"""A task-family zoo: runs drawn as the env's task family draws its MLPs, one zoo per data set and shape, split over
the whole zoo, resumable from its folder, and fitted by an any-shape ENN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import gi_envs
from agents.enn.fit import check_zoos_fit
from agents.enn.task_zoo import TaskZooSpec, train_task_zoo
from agents.enn.zoo import Zoo
from agents.enn.zoo_family import load_zoos
from gi_envs.task import SHAPE_FREE_OBSERVATION
from tests.conftest import cli_error
from tests.floats import assert_float32_close
from train_agents import main

SMALL = TaskZooSpec(runs=6, steps=20, stages=(0.0, 0.5, 1.0), seed=4)


@pytest.fixture(scope="module")
def task_zoo() -> list[Zoo]:
    return train_task_zoo(SMALL, progress=False)


def test_a_task_zoo_run_is_the_family_envs_mlp_of_its_seed_under_the_zero_action(task_zoo: list[Zoo]) -> None:
    seeds = SMALL.run_seeds()
    for member, zoo in zip(SMALL.members(), task_zoo):
        for j, run in enumerate(member.runs):
            env = gym.make(gi_envs.ENV_ID, task_family="meta-train", observation=list(SHAPE_FREE_OBSERVATION),
                           steps_per_action=10, episode_length=2, eval_samples=0)
            _, info = env.reset(seed=0, options={"mlp_seed": seeds[run]})
            assert zoo.seeds[j] == seeds[run] and zoo.regime(j) == env.unwrapped.task.regime(0)
            assert (info["dataset"], info["hidden_sizes"]) == (zoo.spec.mlp.dataset,
                                                               "-".join(map(str, zoo.spec.mlp.hidden_sizes)))
            for k, snapshot in enumerate(np.flatnonzero(zoo.run == j)):  # stages 0, 0.5 and 1: reset, then each step
                if k:
                    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
                assert info["val_accuracy"] == pytest.approx(zoo.val_accuracy[snapshot], abs=1e-6)
                for mine, zoos in zip(env.unwrapped.task.member(0).mlp.weights, zoo.weights):
                    assert_float32_close(mine[0].detach().numpy(), zoos[snapshot], rtol=2e-5, atol=2e-6)
    assert len({z.spec.mlp.dataset for z in task_zoo}) > 1  # the runs drew several data sets


def test_a_task_zoo_is_split_over_all_its_runs_and_resumes_from_its_folder(task_zoo: list[Zoo],
                                                                            tmp_path: Path) -> None:
    members = SMALL.members()
    assert sorted(np.concatenate([m.runs for m in members]).tolist()) == list(range(SMALL.runs))
    assert sum(int(z.held_out_runs.sum()) for z in task_zoo) == round(SMALL.held_out * SMALL.runs)
    written = train_task_zoo(SMALL, tmp_path, progress=False)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == len(members)
    stamps = [f.stat().st_mtime_ns for f in files]
    again = train_task_zoo(SMALL, tmp_path, progress=False)  # every member is read, none trained
    assert [f.stat().st_mtime_ns for f in files] == stamps
    for zoos in (again, load_zoos([tmp_path])):
        assert [z.spec for z in zoos] == [m.spec for m in members]
        assert all(np.array_equal(a.weights[0], b.weights[0]) for a, b in zip(zoos, written))
    with pytest.raises(ValueError, match="holds a zoo of another spec"):
        train_task_zoo(replace(SMALL, steps=21), tmp_path, progress=False)
    with pytest.raises(ValueError, match="runs=1 is not allowed"):
        TaskZooSpec(runs=1)
    with pytest.raises(ValueError, match="task_family='nope' is not known"):
        TaskZooSpec(tasks="nope")
    with pytest.raises(ValueError, match="train it with agents.enn.task_zoo.train_task_zoo"):
        members[0].spec.run_seeds()
    with pytest.raises(ValueError, match=r"pass one data set.s files \(DATASET-\*.npz\) or draw the zoo from one"):
        check_zoos_fit(task_zoo, "any-stats", any_shape=True)  # the runs drew several data sets


def test_the_zoo_command_draws_a_task_family_and_an_any_shape_enn_fits_it(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "task-zoo"
    main(["zoo", "--task-family", "meta-train", "--dataset", "digits", "--runs", "10", "--steps", "60",
          "--out", str(folder)])
    assert "A task-family zoo of 10 runs drawn from 'meta-train' (data set digits only)" in capsys.readouterr().out
    assert all(f.name.startswith("digits-64-") for f in folder.glob("*.npz"))
    main(["fit-enn", "--encoder", "any-stats", "--zoo", str(folder), "--epochs", "20", "--out", str(tmp_path / "e.pt")])
    assert "any-stats ENN fitted on 8 runs" in capsys.readouterr().out
    assert "--family and --task-family meta-train are two kinds of zoo" in cli_error(
        ["zoo", "--task-family", "meta-train", "--family", "--out", str(tmp_path / "x")], capsys)
    (tmp_path / "file").write_text("")
    assert "is a file; a family zoo is a folder" in cli_error(
        ["zoo", "--task-family", "meta-train", "--out", str(tmp_path / "file")], capsys)
