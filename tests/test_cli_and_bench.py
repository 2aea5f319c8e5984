"""The command line and the benchmark scripts, run as a user runs them (small settings)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

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


def row_numbers(out: str, prefix: str) -> list[float]:
    """The numbers of the table row that starts with `prefix` (``2,767``, ``1.13x``, ``43 %``, ``+0.3`` read as
    numbers; cells holding no single number are skipped)."""
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    numbers = []
    for cell in line[len(prefix):].strip(" |").split("|"):
        text = cell.strip().replace(",", "").rstrip("x%").strip()
        try:
            numbers.append(float(text.split(" ")[0]))
        except ValueError:
            continue
    return numbers


def test_env_step_benchmark_prints_its_table() -> None:
    out = run_script("bench/env_step.py", "--datasets", "digits", "--episodes", "1", "--repeats", "1")
    plain = row_numbers(out, "| digits 64-32-10 | plain PyTorch loop |")
    assert plain[0] > 0 and plain[1] == pytest.approx(10 * plain[0], rel=0.01) and plain[2] == 1.0
    for runner in ("env, zero action", "env, random actions"):
        steps, minibatches, ratio = row_numbers(out, f"| digits 64-32-10 | {runner} |")
        assert steps > 0 and minibatches == pytest.approx(10 * steps, rel=0.01)  # 10 minibatches an env step
        # the ratio of the unrounded timings, against the printed whole steps per second: their rounding's share
        assert ratio == pytest.approx(plain[0] / steps, abs=0.005 + ratio * (0.5 / steps + 0.5 / plain[0]))


def test_throughput_benchmark_prints_its_table() -> None:
    out = run_script("bench/env_throughput.py", "--datasets", "digits", "--sizes", "2",
                     "--min-seconds", "0", "--repeats", "1")
    speeds = {}
    for runner in ["(a) DummyVecEnv", "(b) Subproc x2", "(c) native", "(d) plain loop"]:
        speeds[runner] = row_numbers(out, f"| digits | 2 | {runner} |")
        assert speeds[runner][0] > 0 and speeds[runner][1] == pytest.approx(10 * speeds[runner][0], rel=0.01)
    assert speeds["(a) DummyVecEnv"][2] == 1.0 and speeds["(d) plain loop"][3] == 1.0
    native = speeds["(c) native"]
    assert native[2] == pytest.approx(native[0] / speeds["(a) DummyVecEnv"][0], abs=0.02)


def test_resolution_study_writes_its_table(tmp_path) -> None:
    out = run_script("bench/enn_resolution.py", "--resolutions", "0.1", "0.5", "--env-steps", "200",
                     "--epochs", "2", "--quality-episodes", "4", "--out", str(tmp_path))
    assert "| 0.1 | 2x3x6 |" in out and "| 0.5 | 2x16x32 |" in out
    assert (tmp_path / "resolution.md").is_file() and (tmp_path / "resolution.png").is_file()


def test_guidance_overhead_benchmark_prints_its_table() -> None:
    out = run_script("bench/guidance_overhead.py", "--datasets", "digits", "--steps", "20", "--repeats", "1")
    for encoder in ("image", "stats"):
        guided = row_numbers(out, f"| digits 64-32-10 | Sequential + SGD, guided ({encoder}) |")
        alone = row_numbers(out, f"| digits 64-32-10 | ENN forward + backward alone ({encoder}) |")
        assert guided[0] > 0 and alone[0] > 0 and guided[1] > 0  # times only: their order is measured, not asserted
        plain = row_numbers(out, "| digits 64-32-10 | Sequential + SGD, plain |")[0]
        assert guided[1] == pytest.approx(guided[0] / plain, rel=0.05, abs=0.02)  # the ratio column is the ratio
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
    wall, per_cell, ratio, _ = row_numbers(out, "| local engine |")
    assert wall > 0 and per_cell > 0 and ratio == 1.0
    assert all(v > 0 for v in row_numbers(out, "| no engine (plain loop) |")[:3])
    ray = row_numbers(out, "| ray engine, ")[1:]  # after "N cells at a time": wall, ms / cell, ratio, overhead
    assert ray[1] > 0 and ray[2] == pytest.approx(ray[1] / per_cell, rel=0.1)
    assert "Ray cluster start" in out


def test_headroom_benchmark_prints_the_oracle_beside_the_best_constant() -> None:
    out = run_script("bench/headroom.py", "--datasets", "digits", "--episodes", "3", "--tuning-episodes", "2")
    for task in ("default", "randomized"):
        zero, best, oracle, gap, _ = row_numbers(out, f"| digits, {task} | 3 |")
        assert 10 < zero <= 100 and 0 < best <= 100 and max(zero, best) <= oracle <= 100  # the oracle can keep a=0
        assert gap == pytest.approx(oracle - best, abs=0.11)


def test_agent_speed_benchmark_prints_steps_per_second() -> None:
    out = run_script("bench/agent_speed.py", "--timesteps", "256", "--variants", "shipped", "32 envs, n_steps 16")
    shipped = row_numbers(out, "| shipped |")
    other = row_numbers(out, "| 32 envs, n_steps 16 |")
    assert shipped[0] > 0 and shipped[1] == 1.0 and 0 < shipped[2] < 100
    assert other[1] == pytest.approx(other[0] / shipped[0], abs=0.02) and 0 < other[2] < 100


def test_refusal_speed_benchmark_times_each_refusal_against_start_up() -> None:
    out = run_script("bench/refusal_speed.py", "--repeats", "1")
    start_up = row_numbers(out, "| start-up (`--help`) |")
    assert start_up[0] > 0 and start_up[1] == 1.0
    for case in ("unwritable --out", "YAML alias bomb", "silent Ray address"):
        seconds, ratio = row_numbers(out, f"| {case} |")
        assert seconds > 0 and ratio == pytest.approx(seconds / start_up[0], abs=0.06)


def test_competitor_benchmark_prints_its_rows_beside_the_references_out_of_distribution(tmp_path) -> None:
    out = run_script("bench/competitors.py", "--seeds", "0", "1", "--episodes", "2", "--tuning-episodes", "2",
                     "--competitors", "AdamW, lr tuned", "Prodigy, default (lr 1)",
                     "--env-kwargs", "{randomize_regime: wide-lr}", "--out", str(tmp_path))
    assert "task randomized, env changes {'randomize_regime': 'wide-lr'}: 2 seeds x 2 unseen MLPs" in out
    accuracy, delta, _, _, seconds = row_numbers(out, "| AdamW, lr tuned |")
    best = row_numbers(out, "| best constant |")[0]
    assert 10 < accuracy <= 100 and delta == pytest.approx(accuracy - best, abs=0.11) and seconds > 0
    assert "- digits: AdamW, lr tuned: lr " in out and "- digits: Prodigy, default (lr 1): lr 1 (untuned)" in out
    assert {"results.csv", "results.md", "settings.json"} <= {p.name for p in tmp_path.iterdir()}


def test_zoo_distance_benchmark_flags_random_and_scaled_mlps_only() -> None:
    out = run_script("bench/zoo_distance.py", "--mlps", "2", "--epochs", "3")
    assert row_numbers(out, "| fresh (default init) |")[0] < 6 and "| N(0, 1) weights | " in out
    for kind in ("N(0, 1) weights", "default init x8"):
        distance = row_numbers(out, f"| {kind} |")[0]
        assert distance > 6 and "| 2/2 |" in out.split(f"| {kind} |")[1].splitlines()[0]


def test_agent_speed_benchmark_times_the_universal_task_beside_the_randomized_one() -> None:
    out = run_script("bench/agent_speed.py", "--timesteps", "128", "--tasks", "randomized", "universal",
                     "--variants", "shipped")
    randomized, universal = row_numbers(out, "| randomized: shipped |"), row_numbers(out, "| universal: shipped |")
    assert randomized[1] == 1.0 and universal[1] == pytest.approx(universal[0] / randomized[0], abs=0.02)
    assert 0 < universal[2] < 100


def test_universal_benchmark_judges_a_split_under_both_rulesets(tmp_path) -> None:
    import json

    out = run_script("bench/universal.py", "--splits", "held-out-dataset", "--episodes", "2", "--tuning-episodes",
                     "1", "--out", str(tmp_path))
    assert "### held-out-dataset (held out: the data set: Fashion-MNIST" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    split = summary["splits"][0]
    rows = {row["policy"]: row for row in split["rows"]}
    assert rows[split["best_self_tuning"]]["ruleset"] == "self-tuning"
    gap = rows[split["best_self_tuning"]]["gap closed (self-tuning → external)"]
    assert gap == 0.0 or gap != gap  # 0, or NaN where both rulesets tie
    oracle_gap = rows["per-instance oracle over constants"]["gap closed (constant → oracle)"]
    assert oracle_gap == pytest.approx(1.0) or oracle_gap != oracle_gap  # NaN where the oracle ties the constant
    assert "### Aggregate over the held-out splits" in out
    assert rows[split["best_external"]]["ruleset"] == "external tuning"
    oracle = rows["per-instance oracle over constants"]["final val acc (%)"]
    constants = [r["final val acc (%)"] for name, r in rows.items() if "constant" in name or "zero action" in name]
    assert oracle >= max(constants) - 1e-9 and 0 < oracle <= 100
    assert {"Prodigy, default (lr 1)", "zero action (base optimizer as drawn)"} <= set(rows)
    assert (tmp_path / "curves_held-out-dataset.png").is_file() and (tmp_path / "tables.md").is_file()
    again = run_script("bench/universal.py", "--from-summary", str(tmp_path), "--out", str(tmp_path / "again"))
    assert (tmp_path / "again" / "tables.md").read_text() == (tmp_path / "tables.md").read_text()
    assert "### held-out-dataset" in again


def test_universal_specialist_benchmark_puts_the_agents_on_the_specialists_mlps(tmp_path) -> None:
    from train_agents import main

    short = ["--timesteps", "64", "--n-envs", "2", "--eval-episodes", "1", "--wandb-mode", "disabled",
             "--env-kwargs", "{episode_length: 2, steps_per_action: 1}"]
    for task in ("randomized", "universal"):
        assert main(["train", "--algo", "ppo", "--task", task, *short, "--out", str(tmp_path / task)]) == 0
    specialist, universal = tmp_path / "randomized" / "model.zip", tmp_path / "universal" / "model.zip"
    out = run_script("bench/universal_specialist.py", "--specialist", str(specialist), "--models", str(universal),
                     "--episodes", "3", "--tuning-episodes", "2")
    assert "Randomized digits 64-32-10, 3 unseen MLPs (the same for every row)" in out
    oracle = row_numbers(out, "| per-instance oracle over constants |")
    a, *best = row_numbers(out, "| best constant (a = ")  # its multiplier's exponent, then the row
    assert a in (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
    assert oracle[1] == 1.0 and best[1] == 0.0  # gap closed: the constant -> oracle measure
    specialist_row = row_numbers(out, "| specialist: ppo (randomized) |")
    assert specialist_row[2] == 0.0  # its own gap to itself
    mine = row_numbers(out, "| universal: ppo (universal) |")
    assert mine[2] == pytest.approx(mine[1] - specialist_row[1], abs=0.011)  # the rounded difference of gaps
    assert oracle[0] >= max(best[0], row_numbers(out, "| zero action (plain SGD) |")[0]) - 1e-9
    done = subprocess.run([sys.executable, "bench/universal_specialist.py", "--specialist", str(universal),
                           "--models", str(universal)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "was not trained on the randomized digits task" in done.stderr


def test_task_zoo_enn_benchmark_scores_both_fits_on_the_same_fresh_mlps(tmp_path) -> None:
    out = run_script("bench/enn_task_zoo.py", "--runs", "3", "--test-runs", "6", "--steps", "60", "--epochs", "20",
                     "--out", str(tmp_path))
    fresh = "fresh task-family zoo, every snapshot of 6 runs |"
    family = row_numbers(out, f"| shape family (8 shapes x 3 runs) | {fresh}")
    drawn = row_numbers(out, f"| task-family zoo (24 drawn runs) | {fresh}")
    assert family[3] == drawn[3] == 6 * 7  # the same 6 runs x 7 snapshots for both ENNs
    assert row_numbers(out, "| shape family (8 shapes x 3 runs) | its own held-out runs |")[3] == 8 * 1 * 7
    assert row_numbers(out, "| task-family zoo (24 drawn runs) | its own held-out runs |")[3] == 5 * 7  # 20 % of 24
    assert all(-1 <= tau <= 1 for tau in family[:2] + drawn[:2]) and 0 < family[2] < 100 and 0 < drawn[2] < 100
    assert (tmp_path / "results.md").read_text().startswith("any-stats ENNs on digits, 60 steps per run")
