"""The benchmark matrix engines: local and Ray give the same cells; failures, retries and resume;
a real `ray start --head` node joined by address. Ray stays on 127.0.0.1 throughout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psutil
import pytest

from agents.experiments import benchmark as benchmark_module
from agents.experiments.benchmark import run_benchmark
from agents.experiments.engine import LOOPBACK_ENV, Cell, EngineOptions, read_failure, run_matrix

TINY_ENV = {"episode_length": 4, "steps_per_action": 2}
TIMING = ["train_wall_seconds", "env_steps_per_second", "env_step_share", "eval_seconds_per_mlp"]
LOOPBACK = {"127.0.0.1", "::1"}
KW = dict(competitors=[], timesteps=160, env_kwargs=TINY_ENV, wandb_mode="disabled", eval_episodes=2)
QUIET = EngineOptions(progress=False)


def sorted_numbers(results: pd.DataFrame) -> pd.DataFrame:
    return results.drop(columns=TIMING).sort_values(["dataset", "policy", "seed"]).reset_index(drop=True)


def test_local_and_ray_engines_give_identical_cells(tmp_path: Path) -> None:
    local = run_benchmark(["a2c", "ars"], [0, 1], out=tmp_path / "local", options=QUIET, **KW)
    ray = run_benchmark(["a2c", "ars"], [0, 1], out=tmp_path / "ray",
                        options=EngineOptions(engine="ray", progress=False), **KW)
    assert len(ray.outcome.finished) == 4 and not ray.outcome.failed
    pd.testing.assert_frame_equal(sorted_numbers(local.results), sorted_numbers(ray.results))
    for cell in ["digits/a2c/seed0", "digits/ars/seed1"]:  # the same files, delivered by the driver
        names = {p.name for p in (tmp_path / "ray" / cell).iterdir()}
        assert {"config.yaml", "model.zip", "monitor.csv", "eval.json", "learning_curve.png"} <= names
        assert (tmp_path / "local" / cell / "eval.json").read_text() != ""
    assert (tmp_path / "ray" / "results.md").read_text().count("| 2/2 |") == 6  # 2 agents, 4 references
    assert (tmp_path / "ray" / "learning_curves_digits.png").stat().st_size > 1000


def test_a_failing_cell_is_marked_and_resume_completes_the_matrix(tmp_path: Path, monkeypatch, capsys) -> None:
    real_train = benchmark_module.train_agent

    def train_failing_seed1(config, seed, *args, **kwargs):
        if seed == 1:
            raise RuntimeError("simulated crash in seed 1")
        return real_train(config, seed, *args, **kwargs)

    monkeypatch.setattr(benchmark_module, "train_agent", train_failing_seed1)
    first = run_benchmark(["a2c"], [0, 1], out=tmp_path, options=EngineOptions(attempts=2), **KW)
    out = capsys.readouterr().out
    assert "retrying digits/a2c/seed1" in out and "FAILED digits/a2c/seed1 after 2 attempt(s)" in out
    assert [str(c) for c in first.outcome.failed] == ["digits/a2c/seed1"]
    record = read_failure(tmp_path / "digits" / "a2c" / "seed1")
    assert record["attempts"] == 2 and "simulated crash in seed 1" in record["error"]
    assert "| a2c | 1/2, failed: seed 1 |" in first.table and "1 cell(s) failed" in first.verdict
    finished = tmp_path / "digits" / "a2c" / "seed0" / "model.zip"
    stamp = finished.stat().st_mtime_ns

    monkeypatch.setattr(benchmark_module, "train_agent", real_train)
    second = run_benchmark(["a2c"], [0, 1], out=tmp_path, options=EngineOptions(resume=True, progress=False), **KW)
    assert [str(c) for c in second.outcome.kept] == ["digits/a2c/seed0"]
    assert [str(c) for c in second.outcome.finished] == ["digits/a2c/seed1"] and not second.outcome.failed
    assert finished.stat().st_mtime_ns == stamp  # the finished cell survived untouched
    assert read_failure(tmp_path / "digits" / "a2c" / "seed1") is None
    assert "| a2c | 2/2 |" in second.table


def listening_addresses() -> set[str]:
    """host:port of every listening TCP socket on this machine (IPv4-mapped IPv6 written as IPv4)."""
    return {f"{c.laddr.ip.removeprefix('::ffff:')}:{c.laddr.port}"
            for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def write_marker_then_die(cell: Cell, folder: Path) -> None:
    """Cell work for Ray: the first attempt of cell 'b' kills its worker; cell 'c' always raises."""
    marker = Path(os.environ["GI_TEST_MARKERS"]) / f"{cell.path}.tried"
    if cell.path == "b" and not marker.exists():
        marker.write_text("1")
        os._exit(1)  # the worker process dies mid-matrix
    if cell.path == "c":
        raise ValueError("cell c always fails")
    (folder / "value.json").write_text(json.dumps({"cell": cell.path}))
    if cell.path == "a":  # what is listening while the local Ray cluster runs
        (folder / "listening.json").write_text(json.dumps(sorted(listening_addresses())))


def test_ray_survives_a_killed_worker_and_records_a_raising_cell(tmp_path: Path, monkeypatch) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship this test's function to the workers
    monkeypatch.setenv("GI_TEST_MARKERS", str(tmp_path))
    before = listening_addresses()
    cells = [Cell((name,), name) for name in "abc"]
    outcome = run_matrix(cells, write_marker_then_die, tmp_path / "out", lambda c, f: (f / "value.json").exists(),
                         options=EngineOptions(engine="ray", attempts=2, progress=False))
    assert sorted(str(c) for c in outcome.finished) == ["a", "b"]
    assert [str(c) for c in outcome.failed] == ["c"] and "cell c always fails" in outcome.failed[cells[2]]
    assert json.loads((tmp_path / "out" / "b" / "value.json").read_text()) == {"cell": "b"}
    assert read_failure(tmp_path / "out" / "c")["attempts"] == 2
    during = set(json.loads((tmp_path / "out" / "a" / "listening.json").read_text()))
    ours = {address.rsplit(":", 1)[0] for address in during - before}  # what the Ray cluster opened
    assert ours and ours <= LOOPBACK, ours


def test_ray_engine_without_the_extra_names_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"\[distributed\] extra"):
        run_matrix([Cell(("a",), "a")], lambda c, f: None, tmp_path, lambda c, f: False,
                   options=EngineOptions(engine="ray"))
    with pytest.raises(ValueError, match=r"unknown engine 'dask'; known engines: \['local', 'ray'\]"):
        run_matrix([], lambda c, f: None, tmp_path, lambda c, f: False, options=EngineOptions(engine="dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_matrix_runs_on_a_ray_head_node_joined_by_address(tmp_path: Path) -> None:
    ray_cli = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, **LOOPBACK_ENV}
    port = free_port()
    before = listening_addresses()
    subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"], env=env, check=True, capture_output=True)
    try:
        out = tmp_path / "matrix-on-head"
        result = run_benchmark(["ars"], [0, 1], out=out, **{**KW, "wandb_mode": "offline"},
                               options=EngineOptions(engine="ray", ray_address=f"127.0.0.1:{port}", progress=False))
        assert len(result.outcome.finished) == 2 and "| ars | 2/2 |" in result.table
        run_dir = next((out / "digits" / "ars" / "seed1" / "wandb").glob("offline-run-*"))  # shipped back by Ray
        records = subprocess.run([str(Path(sys.executable).with_name("wandb")), "leet", "inspect", "--json",
                                  str(run_dir)], capture_output=True, text=True, check=True).stdout
        assert '"run_group":"matrix-on-head"' in records  # every cell's W&B run is in the matrix's group
        ours = {a.rsplit(":", 1)[0] for a in listening_addresses() - before}  # what Ray opened
        assert ours and ours <= LOOPBACK, ours
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)
