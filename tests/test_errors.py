"""Every user error is one line and exit code 2, found before any work; killed runs leave nothing a rerun trips on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import gi_envs
from agents import ENN, untrained_supervised_enn
from agents.cli import env_kwargs_arg, main
from agents.experiments import baselines
from agents.experiments import benchmark as benchmark_module
from agents.experiments.engine import Cell, EngineOptions, run_matrix
from agents.experiments.guide import run_guide
from agents.experiments.guide.registry import runnable_rows
from agents.report import atomic_write_text
from agents.rl.algorithms import load_agent_config
from tests.conftest import REPO, cli_error

TINY_ENV = "{episode_length: 4, steps_per_action: 2}"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train_agents.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["train", "--algo", "nope"], "unknown algorithm 'nope'"),
    (["train", "--algo", "ppo", "--env-kwargs", "{lr: -1}"], "lr=-1"),
    (["export", "--model", "missing/model.zip"], "no model at missing/model.zip"),
])
def test_a_user_error_is_one_line_and_exit_code_2_without_traceback(args: list[str], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("grad-instructor: error: ") and message in done.stderr


def test_debug_shows_the_traceback() -> None:
    done = run_cli("train", "--algo", "nope", "--debug")
    assert done.returncode == 2 and "Traceback" in done.stderr and "unknown algorithm 'nope'" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--algo", "ppo", "--timesteps", "-5"], "argument --timesteps: expected a positive integer, got -5"),
    (["train", "--algo", "ppo", "--n-envs", "0"], "argument --n-envs: expected a positive integer, got 0"),
    (["train", "--algo", "ppo", "--seed", "-1"], "argument --seed: expected a seed in [0, 2**32 - 1], got -1"),
    (["train", "--algo", "ppo", "--seed", str(2**32)], "argument --seed: expected a seed in [0, 2**32 - 1]"),
    (["train", "--algo", "ppo", "--env-kwargs", "not yaml: ["], "argument --env-kwargs: is not valid YAML"),
    (["benchmark", "--algos", "ppo", "--seeds", "0", "x"], "argument --seeds: expected a seed"),
    (["inspect", "--enn", "e.pt", "--keep", "0", "150"], "argument --keep: expected a percentage in (0, 100), got 0"),
    (["benchmark", "--algos", "ppo", "--resume", "--overwrite"], "not allowed with argument"),
])
def test_flags_blame_themselves_before_anything_is_written(args, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in cli_error(args, capsys)
    assert not any(tmp_path.iterdir())  # no run folder was written


def test_numbers_written_like_1e_3_are_numbers(tmp_path: Path) -> None:
    assert env_kwargs_arg("{lr: 1e-3, perturbation_scale: 2E+0}") == {"lr": 0.001, "perturbation_scale": 2.0}
    gi_envs.EnvConfig.from_kwargs(**env_kwargs_arg("{lr: 1e-3}"))
    config = tmp_path / "ppo.yaml"
    config.write_text("n_envs: 2\nn_timesteps: 64\nlearning_rate: 3e-4\nn_steps: 16\nbatch_size: 32\n")
    assert load_agent_config("ppo", config).hyperparams["learning_rate"] == pytest.approx(3e-4)


def test_export_refuses_foreign_files_and_a_folder_before_calibrating(tmp_path: Path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"algo": "ppo", "env_kwargs": {}}))
    with zipfile.ZipFile(run / "model.zip", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    assert "is not a saved PPO model" in cli_error(["export", "--model", str(run / "model.zip"),
                                                    "--out", str(tmp_path / "enn.pt")], capsys)
    import agents.rl.export

    def no_calibration(*args, **kwargs):
        raise AssertionError("the model was loaded and calibrated before --out was checked")

    monkeypatch.setattr(agents.rl.export, "export_calibrated_enn", no_calibration)
    assert "is a folder" in cli_error(["export", "--model", str(run / "model.zip"), "--out", str(tmp_path)], capsys)


def test_an_enn_file_with_a_damaged_body_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "enn.pt"
    torch.save({"format": "grad-instructor-enn/1", "metadata": "{not json", "state_dict": {}}, path)
    with pytest.raises(ValueError, match=rf"{path} has the ENN format tag but a damaged body \(JSONDecodeError"):
        ENN.load(path)
    torch.save({"format": "grad-instructor-enn/1", "metadata": '{"target": {}}', "state_dict": {}}, path)
    with pytest.raises(ValueError, match=r"damaged body \(KeyError"):
        ENN.load(path)


def test_inspect_checks_model_index_before_training(tmp_path: Path, capsys, monkeypatch) -> None:
    from agents.experiments import inspect as inspect_module

    def no_training(*args, **kwargs):
        raise AssertionError("MLPs were trained before --mlp-index was checked")

    monkeypatch.setattr(inspect_module, "train_mlps", no_training)
    untrained_supervised_enn({}).save(tmp_path / "enn.pt")
    message = cli_error(["inspect", "--enn", str(tmp_path / "enn.pt"), "--mlps", "5", "--mlp-index", "7",
                         "--out", str(tmp_path / "o")], capsys)
    assert "--mlp-index 7 is out of range: --mlps 5 fresh MLPs are trained" in message
    assert not (tmp_path / "o").exists()


def guide_config(tmp_path: Path, second: dict) -> Path:
    first = {"dataset": "digits", "hidden_sizes": [16], "lr": 0.05, "batch_size": 32, "epochs": 1}
    path = tmp_path / "guide.yaml"
    path.write_text(yaml.safe_dump({"seeds": [0], "rows": ["bp", "enn"],
                                    "settings": {"first": {**first, "enn": {"supervised_env_steps": 200}},
                                                "second": {**first, **second}}}))
    return path


def test_guide_checks_every_setting_before_training_any(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    message = cli_error(["guide", "--config", str(guide_config(tmp_path, {"lr": "0.05"})), "--out", str(out)], capsys)
    assert "setting 'second': lr='0.05' is not allowed; expected a number in (0, 100]" in message
    missing = guide_config(tmp_path, {"enn": {"path": str(tmp_path / "missing.pt")}})
    with pytest.raises(FileNotFoundError, match="setting 'second', enn: no ENN file at"):
        run_guide(missing, out, wandb_mode="disabled")
    wrong = tmp_path / "wide.pt"
    untrained_supervised_enn({"hidden_sizes": (8,)}).save(wrong)
    with pytest.raises(ValueError, match="setting 'second', enn: this ENN was made for an MLP with weight shapes"):
        run_guide(guide_config(tmp_path, {"enn": {"path": str(wrong)}}), out, wandb_mode="disabled")
    assert not out.exists()  # nothing trained, nothing written


def test_a_broken_baseline_fails_guide_at_once_and_quickstart_skips_it(monkeypatch, capsys) -> None:
    real_import = baselines.importlib.import_module

    def hub_too_new(name: str):  # what an rl-zoo3 install does to lfprop's chain
        if name.startswith("lfprop.propagation"):
            raise ImportError("huggingface-hub>=0.34.0,<1.0 is required for a normal functioning of this module")
        return real_import(name)

    monkeypatch.setattr(baselines.importlib, "import_module", hub_too_new)
    message = cli_error(["guide", "--config", "paper_digits.yaml", "--rows", "bp", "lfp"], capsys)
    assert "row 'lfp'" in message and "huggingface-hub" in message and "pip install -e '.[baselines]'" in message
    rows, skipped = runnable_rows(["bp", "rmsgd", "lfp"])
    assert rows == ["bp", "rmsgd"] and len(skipped) == 1 and skipped[0].startswith("skipping the row 'lfp'")


def test_a_silent_ray_address_fails_within_seconds_naming_it(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_cli("benchmark", "--algos", "ppo", "--seeds", "0", "--timesteps", "64", "--competitors", "none",
                   "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "--out", str(tmp_path / "never-written"),
                   timeout=90)  # bench/refusal_speed.py times it
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in done.stderr and "ray start --head" in done.stderr
    assert not (tmp_path / "never-written").exists()


def write_value(cell: Cell, folder: Path) -> None:
    (folder / "value.txt").write_text(cell.path)


def test_a_rerun_refuses_a_used_folder_resume_clears_scratch_overwrite_replaces(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    quiet = {"progress": False}
    run_matrix([Cell(("a",), "a")], write_value, out, lambda c, f: (f / "value.txt").exists(),
               options=EngineOptions(**quiet))
    with pytest.raises(FileExistsError, match=r"holds a run of matrix \(a\); pass resume=True .* or overwrite=True"):
        run_matrix([Cell(("b",), "b")], write_value, out, lambda c, f: False, options=EngineOptions(**quiet))
    (out / ".cell-killed").mkdir()  # what kill -9 leaves: a cell's scratch folder and a half-written file
    (out / ".cell-killed" / "model.zip").write_text("half")
    (out / ".results.csv.abc123.partial.csv").write_text("half")
    outcome = run_matrix([Cell(("a",), "a"), Cell(("b",), "b")], write_value, out,
                         lambda c, f: (f / "value.txt").exists(), options=EngineOptions(resume=True, **quiet))
    assert [str(c) for c in outcome.kept] == ["a"] and [str(c) for c in outcome.finished] == ["b"]
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    run_matrix([Cell(("c",), "c")], write_value, out, lambda c, f: False,
               options=EngineOptions(overwrite=True, **quiet))
    assert sorted(p.name for p in out.iterdir()) == ["c"]


def test_a_benchmark_whose_cells_fail_exits_non_zero(tmp_path: Path, monkeypatch, capsys) -> None:
    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(benchmark_module, "train_agent", crash)
    code = main(["benchmark", "--algos", "ars", "--seeds", "0", "--timesteps", "64", "--competitors", "none",
                 "--attempts", "1", "--env-kwargs", TINY_ENV, "--wandb-mode", "disabled", "--eval-episodes", "1",
                 "--out", str(tmp_path / "b")])
    assert code == 1 and "1 cell(s) failed" in capsys.readouterr().err


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_respect_the_umask(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "table.md", "| a |\n")
        untrained_supervised_enn({}).save(tmp_path / "enn.pt")
    finally:
        os.umask(before)
    for name in ("table.md", "enn.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_nan_action_and_a_grid_larger_than_a_layer_are_refused() -> None:
    env = gym.make(gi_envs.ENV_ID)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, np.float32)
    action[3] = np.nan
    with pytest.raises(ValueError, match=r"action contains NaN at position\(s\) \[3\]"):
        env.step(action)
    envs = gym.make_vec(gi_envs.ENV_ID, num_envs=2, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = np.zeros(envs.action_space.shape, np.float32)
    actions[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"action of model\(s\) \[1\] contains NaN"):
        envs.step(actions)
    with pytest.raises(ValueError, match=r"action_grid=\(16, 4\) is larger than weight matrix 1 of shape "
                                         r"\(out, in\)=\(10, 32\).*expected at most \(10, 32\)"):
        gym.make(gi_envs.ENV_ID, action_grid=(16, 4))


def test_the_next_write_of_a_file_removes_what_a_killed_write_left(tmp_path: Path) -> None:
    stale = tmp_path / ".enn.pt.k1ll3d.partial.pt"  # a write of enn.pt killed between its temporary and the rename
    stale.write_bytes(b"half an ENN")
    untrained_supervised_enn({}).save(tmp_path / "enn.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enn.pt"]
    assert ENN.load(tmp_path / "enn.pt").mlp_spec.layer_shapes == ((32, 64), (10, 32))
