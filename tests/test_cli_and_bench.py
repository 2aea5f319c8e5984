"""The command line and the benchmark scripts, run as a user runs them (small settings)."""

from __future__ import annotations

import csv
import subprocess
import sys

from tests.conftest import REPO, cli_error
from train_agents import main


def test_rollout_prints_the_reference_curves_and_writes_csv_and_png(tmp_path, capsys) -> None:
    out = tmp_path / "rollout"
    main(["rollout", "--episodes", "2", "--seed", "3", "--out", str(out),
          "--env-kwargs", "{episode_length: 4, steps_per_action: 10}"])
    printed = capsys.readouterr().out
    assert "zero action (plain SGD)" in printed and "random actions" in printed and "| best constant | a=" in printed
    assert "| 4 |" in printed and "final test accuracy" in printed
    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert len(rows) == 4 * 2 * 5  # policies x episodes x (reset + 4 steps)
    assert {r["name"] for r in rows} == {"zero action (plain SGD)", "random actions", "best constant", "schedule"}
    final = [float(r["validation accuracy"]) for r in rows if r["env step"] == "4"]
    assert all(0.3 < v <= 1.0 for v in final)  # 40 minibatches already learn digits
    assert (out / "curves.png").stat().st_size > 1000


def test_bad_env_kwargs_fail_before_any_work(tmp_path, capsys) -> None:
    assert "dataset='cifar'" in cli_error(["rollout", "--out", str(tmp_path / "x"), "--env-kwargs", "{dataset: cifar}"],
                                          capsys)
    assert not (tmp_path / "x").exists()
    assert "expected a mapping" in cli_error(["rollout", "--env-kwargs", "[1, 2]"], capsys)


def test_guide_help_names_every_row_the_guide_knows() -> None:
    import argparse

    from agents.cli import build_parser
    from agents.experiments.guide import GUIDE_ROWS

    # the help string itself: rendered help wraps at hyphens ("zoo-" / "enn") by terminal width
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    rows_help = next(a.help for a in subcommands.choices["guide"]._actions if "--rows" in a.option_strings)
    assert set(GUIDE_ROWS) <= set(rows_help.split(":", 1)[1].split())


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_env_step_benchmark_prints_its_table() -> None:
    out = run_script("bench/env_step.py", "--datasets", "digits", "--episodes", "1", "--repeats", "1")
    assert "| digits 64-32-10 | plain PyTorch loop |" in out and "env, random actions" in out


def test_throughput_benchmark_prints_its_table() -> None:
    out = run_script("bench/env_throughput.py", "--datasets", "digits", "--sizes", "2",
                     "--min-seconds", "0", "--repeats", "1")
    for runner in ["(a) DummyVecEnv", "(b) Subproc x2", "(c) native", "(d) plain loop"]:
        assert f"| digits | 2 | {runner} |" in out


def test_resolution_study_writes_its_table(tmp_path) -> None:
    out = run_script("bench/enn_resolution.py", "--resolutions", "0.1", "0.5", "--env-steps", "200",
                     "--epochs", "2", "--quality-episodes", "4", "--out", str(tmp_path))
    assert "| 0.1 | 2x3x6 |" in out and "| 0.5 | 2x16x32 |" in out
    assert (tmp_path / "resolution.md").is_file() and (tmp_path / "resolution.png").is_file()


def test_guidance_overhead_benchmark_prints_its_table() -> None:
    out = run_script("bench/guidance_overhead.py", "--datasets", "digits", "--steps", "20", "--repeats", "1")
    for encoder in ("image", "stats"):
        assert f"| digits 64-32-10 | Sequential + SGD, guided ({encoder}) |" in out
        assert f"| digits 64-32-10 | ENN forward + backward alone ({encoder}) |" in out
    assert "guided every 10th step" in out
    for trainer in ("Sequential + SGD", "training core"):  # each trainer's guided rows are against its own plain step
        plain_row = out.split(f"| digits 64-32-10 | {trainer}, plain |")[1].split("\n")[0]
        assert plain_row.endswith("| 1.00x |"), plain_row


def test_zoo_benchmark_ranks_every_predictor_on_held_out_runs(tmp_path) -> None:
    out = run_script("bench/enn_encoders.py", "--datasets", "digits", "--runs", "16", "--sizes", "10", "16", "--steps",
                     "40", "--epochs", "2", "--out", str(tmp_path))
    for predictor in ("StatNN (GBM on per-layer statistics)", "image CNN, paper's image (mean, 0.15)",
                      "image CNN, mean + rms (0.15)", "statistics encoder (stats)", "NFN (nfn)",
                      "mean of StatNN and the statistics ENN"):
        assert f"| digits 64-32-10, 3 held-out runs | {predictor} |" in out
    assert "tau at 10 runs" in out and (tmp_path / "tau_vs_zoo_size_digits.png").stat().st_size > 1000
    merged = run_script("bench/enn_encoders.py", "--merge", str(tmp_path), "--out", str(tmp_path / "merged"))
    assert "| digits 64-32-10, 3 held-out runs | statistics encoder (stats) | 16 |" in merged  # its largest zoo
    lines = merged.splitlines()
    first_rows = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("|---")]
    assert len(first_rows) == 2 and all("StatNN" in row for row in first_rows), first_rows  # the bar leads both tables


def test_engine_overhead_benchmark_prints_its_table() -> None:
    out = run_script("bench/engine_overhead.py", "--cells", "4", "--steps", "5")
    for engine in ["no engine (plain loop)", "local engine"]:
        assert f"| {engine} |" in out
    assert "| ray engine, " in out and "cells at a time |" in out
    assert "Ray cluster start" in out


def test_headroom_benchmark_prints_the_oracle_beside_the_best_constant() -> None:
    out = run_script("bench/headroom.py", "--datasets", "digits", "--episodes", "3", "--tuning-episodes", "2")
    assert "| digits, randomized | 3 |" in out and "per-instance oracle" in out


def test_agent_speed_benchmark_prints_steps_per_second() -> None:
    out = run_script("bench/agent_speed.py", "--timesteps", "256", "--variants", "shipped", "32 envs, n_steps 16")
    assert "| shipped |" in out and "| 32 envs, n_steps 16 |" in out and "time in env.step" in out
