"""Grad-Instructor's command line: parses arguments and hands them to `agents`.

    python train_agents.py quickstart                 # the main job on the embedded default (digits)
    python train_agents.py rollout --episodes 5 --env-kwargs "{dataset: mnist, hidden_sizes: [100]}"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def env_kwargs_arg(text: str) -> dict:
    """`--env-kwargs` as a YAML / JSON mapping, e.g. "{dataset: mnist, hidden_sizes: [100]}"."""
    value = yaml.safe_load(text) if text.strip() else {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--env-kwargs must be a mapping such as '{{dataset: mnist}}', got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_agents.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    rollout = commands.add_parser("rollout", help="roll out the zero-action (plain SGD) and random policies")
    rollout.add_argument("--env-kwargs", type=env_kwargs_arg, default={}, help="GradInstructor-v0 keyword arguments")
    rollout.add_argument("--episodes", type=int, default=5, help="episodes (fresh MLPs) per policy")
    rollout.add_argument("--seed", type=int, default=0, help="episode e uses seed + e")
    rollout.add_argument("--out", type=Path, default=Path("runs/rollout"), help="folder for curves.csv/png")

    quick = commands.add_parser("quickstart", help="the main job on the embedded default data set (digits)")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agents import commands

    if args.command == "rollout":
        commands.rollout(args.env_kwargs, args.episodes, args.seed, args.out)
    elif args.command == "quickstart":
        commands.quickstart(args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
