"""How long the command line takes to refuse what it must refuse before any work, measured in one run.

Three refusals that tests check by the order of events (nothing trains before them), timed here instead:
an unwritable ``--out``, a YAML alias bomb (9**9 values once expanded) and a Ray address where nobody
listens. Each runs in a fresh `grad-instructor` process, as a user meets it; the first row, `--help`, is
the start-up every command pays, and the ratio column is each refusal's time over it.

    python bench/refusal_speed.py
    python bench/refusal_speed.py --repeats 5
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agents.report import markdown_table

REPO = Path(__file__).resolve().parent.parent


def alias_bomb(folder: Path) -> Path:
    nested = "[1, 1, 1, 1, 1, 1, 1, 1, 1]"
    for level in "abcdefgh":
        nested = f"[&{level} {nested}" + f", *{level}" * 8 + "]"
    path = folder / "bomb.yaml"
    path.write_text(f"n_envs: 2\nn_timesteps: 64\nenv_kwargs:\n  hidden_sizes: {nested}\n")
    return path


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str], expect_rc: int) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "train_agents.py"), *argv], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode != expect_rc:
        raise SystemExit(f"{argv}: exit {done.returncode}, expected {expect_rc}: {done.stderr.strip()[-300:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the median is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = {
            "start-up (`--help`)": (["train", "--help"], 0),
            "unwritable --out": (["train", "--algo", "ppo", "--out", "/proc/x"], 2),
            "YAML alias bomb": (["train", "--algo", "ppo", "--config", str(alias_bomb(folder)), "--out",
                                 str(folder / "r")], 2),
            "silent Ray address": (["benchmark", "--algos", "ppo", "--seeds", "0", "--timesteps", "64", "--engine",
                                    "ray", "--ray-address", f"127.0.0.1:{free_loopback_port()}", "--out",
                                    str(folder / "never")], 2),
        }
        medians = {name: statistics.median(timed(argv, rc) for _ in range(args.repeats))
                   for name, (argv, rc) in cases.items()}
    base = medians["start-up (`--help`)"]
    rows = [[name, f"{seconds:.2f}", f"{seconds / base:.1f}"] for name, seconds in medians.items()]
    print(f"median of {args.repeats} runs, one process each\n")
    print(markdown_table(["case", "seconds", "x start-up"], rows))


if __name__ == "__main__":
    main()
