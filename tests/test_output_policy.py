"""Nothing a user made is lost or mixed up: the output policy of every command (`agents.outputs`), names
normalised before a benchmark's cells are made, and the one-line errors of issue 26's cases.

Each case runs through the command line (or the API where the command line would spend minutes) and
checks the exit code, a single line without a traceback, and that the user's files are as they were.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from stable_baselines3 import PPO

from agents import ENN, ENNGuidance, untrained_supervised_enn
from agents.cli import main
from agents.enn.zoo import ZooSpec, train_zoo
from agents.experiments.benchmark import BenchmarkCell, report_discarded
from agents.experiments.engine import Cell
from agents.experiments.engine.matrix import machine_cpus
from agents.outputs import OUTPUTS, claim_output
from agents.rl.algorithms import load_agent_config
from gi_envs import memory
from gi_envs.spec import MLPSpec
from gi_envs.training import Training
from tests.conftest import cli_error

TINY_ENV = "{episode_length: 4, steps_per_action: 2}"
TINY_RUN = ["--timesteps", "64", "--env-kwargs", TINY_ENV, "--eval-episodes", "1", "--wandb-mode", "disabled"]
TINY_BENCH = [*TINY_RUN, "--competitors", "adamw-lr-tuned", "--competitor-tuning", "2"]  # a competitor's rows too


def digest(root: Path) -> dict[str, str]:
    """Every file under `root` (or `root` itself) -> its SHA-256: what "unchanged" means in these tests."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def finished_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-cell benchmark run through the command line with the algorithm spelled `PPO`."""
    out = tmp_path_factory.mktemp("bench") / "b"
    assert main(["benchmark", "--algos", "PPO", "--datasets", "DIGITS", "--seeds", "0", *TINY_BENCH,
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def digits_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zoo") / "zoo.npz"
    train_zoo(ZooSpec(mlp=MLPSpec("digits", (8,)), runs=10, steps=4), progress=False).save(path)
    return path


# ---- one output policy: the kind of --out, a writable parent, a used folder refused ----

FOLDER_COMMANDS = {  # command -> the arguments it needs besides --out (inputs may be missing: --out comes first)
    "rollout": ["rollout"],
    "train": ["train", "--algo", "ppo"],
    "benchmark": ["benchmark", "--algos", "ppo", "--seeds", "0"],
    "reevaluate": ["reevaluate", "--benchmark", "missing", "--env-kwargs", "{randomize_regime: wide-lr}"],
    "evaluate-enn": ["evaluate-enn", "--zoo", "missing.npz", "missing.pt"],
    "guide": ["guide"],
    "inspect": ["inspect", "--enn", "missing.pt"],
    "quickstart": ["quickstart"],
}
FILE_COMMANDS = {
    "export": ["export", "--model", "missing/model.zip"],
    "zoo": ["zoo"],
    "fit-enn": ["fit-enn", "--zoo", "missing.npz"],
    "score": ["score", "missing.pt"],
}


def test_every_command_that_writes_has_one_policy() -> None:
    assert set(OUTPUTS) == set(FOLDER_COMMANDS) | set(FILE_COMMANDS)


@pytest.mark.parametrize("command", [*FOLDER_COMMANDS, *FILE_COMMANDS])
def test_an_unwritable_out_is_refused_before_any_work(command: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = {**FOLDER_COMMANDS, **FILE_COMMANDS}[command]

    def no_work(*args, **kwargs):
        raise AssertionError("training began before --out was checked")

    monkeypatch.setattr(Training, "__init__", no_work)  # every command's work trains MLPs in the one core
    message = cli_error([*argv, "--out", "/proc/x"], capsys)
    assert "--out /proc/x cannot be written: /proc does not take new files" in message
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", list(FOLDER_COMMANDS))
def test_a_folder_command_refuses_an_existing_file_as_out(command: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    user_file = tmp_path / "afile.txt"
    user_file.write_text("mine")
    message = cli_error([*FOLDER_COMMANDS[command], "--out", str(user_file)], capsys)
    assert f"--out {user_file} is a file; {command} writes a folder" in message
    assert user_file.read_text() == "mine"


@pytest.mark.parametrize("command", list(FILE_COMMANDS))
def test_a_file_command_refuses_a_folder_and_an_existing_file(command: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert f"--out {tmp_path} is a folder; {command} writes a file" in cli_error(
        [*FILE_COMMANDS[command], "--out", str(tmp_path)], capsys)
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"a user's file")
    message = cli_error([*FILE_COMMANDS[command], "--out", str(kept)], capsys)
    assert f"--out {kept} already exists; pass --overwrite to replace it" in message
    assert kept.read_bytes() == b"a user's file"


def test_train_into_an_existing_run_exits_2_and_changes_nothing(finished_benchmark: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    run = tmp_path / "ppo-seed0"
    shutil.copytree(finished_benchmark / "digits" / "ppo" / "seed0", run)
    before = digest(run)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "a2c", "--out", str(run), *TINY_RUN])
    assert exit_info.value.code == 2
    assert digest(run) == before
    monkeypatch.chdir(tmp_path)  # the default folder, runs/ALGO-seedSEED, is a run too
    shutil.copytree(run, tmp_path / "runs" / "ppo-seed0")
    before = digest(tmp_path / "runs")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "ppo", *TINY_RUN])
    assert exit_info.value.code == 2 and digest(tmp_path / "runs") == before


def test_train_refusal_names_what_the_folder_holds(finished_benchmark: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_benchmark / "digits" / "ppo" / "seed0", run)
    message = cli_error(["train", "--algo", "ppo", "--out", str(run)], capsys)
    assert f"--out {run} already holds a run of train (cell.json, config.yaml, eval.json" in message
    assert "pass --overwrite to replace it" in message


def test_overwrite_removes_only_what_the_command_wrote_and_lists_it(finished_benchmark: Path, tmp_path: Path,
                                                                    capsys) -> None:
    out = tmp_path / "b"
    shutil.copytree(finished_benchmark, out)
    (out / "notes.txt").write_text("a user's notes")
    (out / "digits" / "plots").mkdir()
    (out / "digits" / "plots" / "mine.png").write_bytes(b"png")
    removed = claim_output(out, "benchmark", overwrite=True)
    said = capsys.readouterr().out
    assert {p.name for p in removed} == {"seed0", "competitors", "results.csv", "results.md",
                                         "learning_curves_digits.csv", "learning_curves_digits.png"}
    assert ("removed 6 entries a previous benchmark wrote there: digits/competitors, digits/ppo/seed0, "
            "learning_curves_digits.csv") in said
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["digits", "digits/plots",
                                                                       "digits/plots/mine.png", "notes.txt"]


def test_quickstart_keeps_a_used_folder_as_it_was(finished_benchmark: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "q"
    shutil.copytree(finished_benchmark, out / "benchmark")
    (out / "benchmark" / "notes.txt").write_text("a user's notes")
    before = digest(out)
    message = cli_error(["quickstart", "--out", str(out)], capsys)
    assert f"--out {out} already holds a run of quickstart (benchmark/digits/competitors, benchmark/digits/ppo/seed0" \
        in message
    assert "pass --resume to keep what it finished, or --overwrite to replace it" in message
    assert digest(out) == before
    claim_output(out, "quickstart", overwrite=True, quiet=True)  # what --overwrite does before any work
    assert sorted(p.name for p in out.rglob("*")) == ["benchmark", "notes.txt"]


# ---- names normalised before cells are made ----

def test_algorithm_and_data_set_names_are_case_insensitive_and_counted_once(finished_benchmark: Path) -> None:
    table = (finished_benchmark / "results.md").read_text()
    assert "| ppo | 1/1 |" in table and "PPO" not in table and "#### digits" in table
    assert (finished_benchmark / "digits" / "ppo" / "seed0" / "model.zip").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--algos", "ppo", "PPO"], "--algos names 'ppo' twice ('ppo' and 'PPO'; names are case-insensitive)"),
    (["--algos", "ppo", "ppo"], "--algos names 'ppo' twice"),
    (["--algos", "ppo", "--datasets", "digits", "Digits"], "--datasets names 'digits' twice"),
    (["--algos", "ppo", "--datasets", "digits", "--env-kwargs", "{dataset: mnist}"],
     "--datasets and --env-kwargs both name the data set (digits / dataset: mnist); give one of them"),
    (["--algos", "ppo", "--cpus-per-cell", str(machine_cpus() + 1)],
     f"--cpus-per-cell {machine_cpus() + 1} is more than the {machine_cpus()} CPU(s) this process may use"),
])
def test_a_benchmark_refuses_duplicates_and_conflicts_before_work(argv, message, tmp_path, capsys) -> None:
    assert message in cli_error(["benchmark", *argv, "--seeds", "0", "--out", str(tmp_path / "b")], capsys)
    assert not (tmp_path / "b").exists()


def test_resume_says_which_cells_it_trains_again(finished_benchmark: Path) -> None:
    changed = load_agent_config("ppo", overrides={"n_timesteps": 128, "env_kwargs": yaml.safe_load(TINY_ENV)})
    said: list[str] = []
    lines = report_discarded(finished_benchmark, [Cell(("digits", "ppo", 0), "digits/ppo/seed0")],
                             {("digits", "ppo"): changed}, [0], 1, said.append)
    assert lines == ["digits/ppo/seed0: n_timesteps 64 -> 128"]
    assert said[0].startswith("resuming: 1 finished cell(s) ran another config and are trained again")


# ---- the poor cases: one line each, before the work ----

def test_a_truncated_or_half_written_zoo_is_one_line(digits_zoo: Path, tmp_path: Path, capsys) -> None:
    data = digits_zoo.read_bytes()
    truncated, partial = tmp_path / "zoo.npz", tmp_path / ".zoo.npz.k1ll3d.partial.npz"
    truncated.write_bytes(data[: len(data) // 2])
    partial.write_bytes(data[: len(data) // 3])
    for command in (["fit-enn", "--out", str(tmp_path / "enn.pt")], ["evaluate-enn", "e.pt", "--out",
                                                                      str(tmp_path / "ev")]):
        message = cli_error([*command, "--zoo", str(truncated)], capsys)
        assert f"{truncated} is not a zoo written by `Zoo.save` (`train_zoo`), or it is truncated or damaged" in message
        assert "BadZipFile" in message
        assert "half-written file of a killed `train_zoo`" in cli_error([*command, "--zoo", str(partial)], capsys)


@pytest.mark.parametrize("config, message", [
    ("n_steps: sixty-four", "n_steps='sixty-four' must be an integer (PPO's default is 2048)"),
    ("batch_size: 8.5", "batch_size=8.5 must be an integer"),
    ("learning_rate: fast", "learning_rate='fast' must be a number"),
    ("policy_kwargs: {net_arch: {pi: [-5], vf: [8]}}", "policy_kwargs.net_arch={'pi': [-5], 'vf': [8]} must be a "
                                                       "list of positive layer widths"),
])
def test_a_config_value_of_the_wrong_kind_is_named(config: str, message: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "ppo.yaml"
    path.write_text(f"n_envs: 2\nn_timesteps: 64\n{config}\n")
    assert message in cli_error(["train", "--algo", "ppo", "--config", str(path), "--out", str(tmp_path / "r")],
                                capsys)


def test_a_folder_given_as_config_is_called_a_folder(tmp_path: Path, capsys) -> None:
    assert f"config file {tmp_path} is a folder" in cli_error(
        ["train", "--algo", "ppo", "--config", str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    assert f"config '{tmp_path}' is a folder" in cli_error(
        ["guide", "--config", str(tmp_path), "--out", str(tmp_path / "g")], capsys)


def test_export_of_a_model_whose_config_names_another_algorithm(finished_benchmark: Path, tmp_path: Path,
                                                               capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_benchmark / "digits" / "ppo" / "seed0", run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "algo": "sac"}))
    message = cli_error(["export", "--model", str(run / "model.zip"), "--out", str(tmp_path / "enn.pt")], capsys)
    assert "is not a saved SAC model, which config.yaml beside it says it is (algo: sac)" in message


def test_zoo_reports_the_snapshots_it_stores(tmp_path: Path, capsys) -> None:
    main(["zoo", "--runs", "10", "--steps", "1", "--hidden-sizes", "8", "--out", str(tmp_path / "z.npz")])
    assert "2 snapshots per run (20 in all)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["zoo", "--runs", "100000000"], "a zoo of 100,000,000 runs x 7 snapshots of 2,410 parameters"),
    (["zoo", "--hidden-sizes", "100000000"], "a zoo of 400 runs x 7 snapshots of 7,500,000,010 parameters"),
    (["train", "--algo", "ppo", "--n-envs", "1000000"], "1,000,000 MLP(s) of layer sizes 64-32-10"),
])
def test_a_size_the_machine_cannot_hold_is_refused_with_the_estimate(argv, message, tmp_path, capsys,
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 24 * 10**9)  # this machine's 24 GB, on any machine
    error = cli_error([*argv, "--out", str(tmp_path / "out")], capsys)
    assert message in error and "needs about" in error and "24.0 GB available" in error
    assert not (tmp_path / "out").exists()


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, capsys) -> None:
    nested = "[1, 1, 1, 1, 1, 1, 1, 1, 1]"
    for level in "abcdefgh":  # each level holds 9 copies of the one below: 9**9 values once expanded
        nested = f"[&{level} {nested}" + f", *{level}" * 8 + "]"
    (tmp_path / "bomb.yaml").write_text(f"n_envs: 2\nn_timesteps: 64\nenv_kwargs:\n  hidden_sizes: {nested}\n")
    message = cli_error(["train", "--algo", "ppo", "--config", str(tmp_path / "bomb.yaml"), "--out",
                         str(tmp_path / "r")], capsys)  # bench/refusal_speed.py times it
    assert "expands to more than 1,000,000 values through its aliases" in message


@pytest.mark.filterwarnings("ignore:An input array is constant")  # an untrained ENN predicts one value
def test_an_enn_made_for_another_data_set_is_noted(data_dir: Path, tmp_path: Path, capsys) -> None:
    zoo = tmp_path / "fashion.npz"
    train_zoo(ZooSpec(mlp=MLPSpec("fashion-mnist", (8,)), runs=10, steps=4), data_dir=str(data_dir),
              progress=False).save(zoo)
    untrained_supervised_enn({"dataset": "mnist", "hidden_sizes": (8,)}, encoder="stats").save(tmp_path / "mnist.pt")
    assert main(["evaluate-enn", "--zoo", str(zoo), str(tmp_path / "mnist.pt"), "--out", str(tmp_path / "ev")]) == 0
    note = "Note: mnist.pt was made for mnist MLPs and is scored here on fashion-mnist ones (same weight shapes)."
    assert note in capsys.readouterr().out and note in (tmp_path / "ev" / "results.md").read_text()


@pytest.mark.parametrize("weight", [math.nan, math.inf, -math.inf, "strong"])
def test_a_guidance_weight_that_is_no_finite_number_is_refused(weight: object) -> None:
    with pytest.raises(ValueError, match=r"weight=.* must be a finite number \(0 turns guidance off\)"):
        ENNGuidance(untrained_supervised_enn({}), weight=weight)


def test_a_budget_rounded_up_by_the_algorithm_is_reported(tmp_path: Path, capsys) -> None:
    assert main(["train", "--algo", "ars", "--timesteps", "20", "--out", str(tmp_path / "ars"), *TINY_RUN[2:]]) == 0
    out = capsys.readouterr().out
    assert "note: ars ran " in out and "env steps for a budget of 20" in out and "rounds the budget up" in out


def test_a_damaged_enn_file_is_one_short_line_without_colour_codes(tmp_path: Path, capsys) -> None:
    path = tmp_path / "enn.pt"
    untrained_supervised_enn({}).save(path)
    path.write_bytes(path.read_bytes()[:200])
    torch.save({"format": "x", "object": object.__new__(ENN)}, tmp_path / "pickled.pt")
    for damaged in (path, tmp_path / "pickled.pt"):
        message = cli_error(["inspect", "--enn", str(damaged), "--out", str(tmp_path / "i")], capsys)
        assert "\x1b[" not in message and len(message) < 300
        assert "it is truncated, damaged or of another kind" in message


# ---- no benchmark lost to --overwrite, no half-written train run ----


@pytest.fixture(scope="module")
def two_seed_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench2") / "b"
    assert main(["benchmark", "--algos", "ppo", "a2c", "--seeds", "0", "1", *TINY_BENCH, "--out", str(out)]) == 0
    return out


CELLS = ["digits/ppo/seed0", "digits/ppo/seed1", "digits/a2c/seed0", "digits/a2c/seed1"]


def test_overwrite_of_a_two_seed_benchmark_keeps_old_cells_until_new_ones_are_done(
        two_seed_benchmark: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "b"
    shutil.copytree(two_seed_benchmark, out)
    old = {cell: digest(out / cell) for cell in CELLS}
    calls = []
    real_cell = BenchmarkCell.__call__

    def killed_at_the_third_cell(self, cell, folder):
        calls.append(cell.path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_cell(self, cell, folder)

    monkeypatch.setattr(BenchmarkCell, "__call__", killed_at_the_third_cell)
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--algos", "ppo", "a2c", "--seeds", "0", "1", *TINY_BENCH, "--out", str(out), "--overwrite"])
    assert exit_info.value.code == 130
    replaced, waiting = calls[:2], [c for c in CELLS if c not in calls[:2]]
    assert all(digest(out / c) != old[c] for c in replaced)  # the two finished cells are the new ones
    assert all(digest(out / c) == old[c] for c in waiting)  # the others are the old ones, untouched
    assert set(waiting) <= set(json.loads((out / ".replacing.json").read_text()))
    monkeypatch.setattr(BenchmarkCell, "__call__", real_cell)
    assert main(["benchmark", "--algos", "ppo", "a2c", "--seeds", "0", "1", *TINY_BENCH, "--out", str(out),
                 "--resume"]) == 0  # a resume retrains the cells the killed overwrite had still to replace
    assert all(digest(out / c) != old[c] for c in CELLS) and not (out / ".replacing.json").exists()
    assert (out / "results.md").is_file()


def test_overwrite_with_fewer_seeds_removes_the_old_ones_when_done(two_seed_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    shutil.copytree(two_seed_benchmark, out)
    assert main(["benchmark", "--algos", "ppo", "--seeds", "0", *TINY_BENCH, "--out", str(out), "--overwrite"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.glob("*/*/seed*")) == ["digits/ppo/seed0"]
    assert not (out / ".replacing.json").exists() and not list(out.glob(".cell-*"))


def test_a_killed_train_leaves_the_old_run_as_it_was_and_no_half_written_one(
        finished_benchmark: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_benchmark / "digits" / "ppo" / "seed0", run)
    before = digest(run)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PPO, "learn", interrupted)
    for argv in (["--out", str(run), "--overwrite"], ["--out", str(tmp_path / "fresh")]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--algo", "ppo", *TINY_RUN, *argv])
        assert exit_info.value.code == 130
    assert digest(run) == before  # --overwrite replaces the old run only with a complete one
    assert not (tmp_path / "fresh").exists()  # Ctrl-C leaves no config.yaml, monitor.csv, empty progress.csv
    (run / ".train-x1").mkdir()  # what a kill -9 leaves: only the scratch
    for name in [p.name for p in run.iterdir() if p.name != ".train-x1"]:
        (run / name).unlink() if (run / name).is_file() else shutil.rmtree(run / name)
    message = cli_error(["train", "--algo", "ppo", "--out", str(run)], capsys)
    assert "already holds an unfinished run of train (stopped before it ended" in message


def test_claim_output_removes_every_seed_of_every_algorithm(two_seed_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    shutil.copytree(two_seed_benchmark, out)
    removed = claim_output(out, "benchmark", overwrite=True, quiet=True)  # two seeds share their parents
    assert {str(p.relative_to(out)) for p in removed} >= set(CELLS) and not (out / "digits").exists()


# ---- the poor cases of the clients-and-faults issue: one line, exit 2, the user's files as they were ----

POOR_CASES = [
    (["rollout", "--env-kwargs", "{hidden_sizes: [1000000]}"], "needs about"),
    (["rollout", "--env-kwargs", "{data_dir: 123}"], "data_dir=123 is not allowed"),
    (["train", "--algo", "ppo", "--wandb-mode", "online"], "--wandb-mode online needs a W&B API key"),
    (["benchmark", "--algos", "ppo", "--seeds", "0", "--hyperparams", "{learning_rate: -1}"],
     "the default config ppo.yaml with learning_rate=-1 set over it"),
    (["train", "--algo", "ppo", "--config", "EMPTY"], "sets no n_envs (how many MLPs train side by side)"),
    (["fit-enn", "--zoo", "ZOO", "--encoder", "image", "--image-stats", "mean", "mean"],
     "image_stats=('mean', 'mean') is not allowed"),
    (["fit-enn", "--zoo", "ZOO", "--resolution", "0.3"], "--resolution 0.3 set(s) the weight image, which the 'stats'"),
    (["evaluate-enn", "digits-64-32-10", "--zoo", "ZOO"], "digits-64-32-10: this ENN"),  # a shipped name is read
]


@pytest.mark.parametrize(("argv", "message"), POOR_CASES, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in
                                                               enumerate(POOR_CASES)])
def test_each_poor_case_is_one_line_before_work_and_changes_nothing(argv, message, digits_zoo: Path, tmp_path: Path,
                                                                    capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no W&B key
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "EMPTY").write_text("")
    shutil.copy(digits_zoo, tmp_path / "ZOO")
    (tmp_path / "notes.txt").write_text("a user's notes")
    before = digest(tmp_path)
    assert message in cli_error([*argv, "--out", str(tmp_path / "out" / ("x.pt" if argv[0] == "fit-enn" else "x"))],
                                capsys)
    assert digest(tmp_path) == before and not (tmp_path / "out").exists()


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path: Path, monkeypatch) -> None:
    from agents.report import atomic_write_text

    (tmp_path / "results.csv").write_text("the old table")

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match=rf"{tmp_path / 'results.csv'} was not written \(No space left on device\)"):
        atomic_write_text(tmp_path / "results.csv", "the new table")
    monkeypatch.undo()
    assert (tmp_path / "results.csv").read_text() == "the old table" and len(list(tmp_path.iterdir())) == 1
