"""Grad-Instructor's command line: parses arguments and hands them to `agents.commands`.

    python train_agents.py quickstart                      # the main job on the embedded default (digits)
    python train_agents.py rollout --env-kwargs "{dataset: mnist, hidden_sizes: [100]}"
    python train_agents.py train --algo ppo --timesteps 30000 --seed 0
    python train_agents.py benchmark --algos ppo sac --seeds 0 1 2 3 4 --timesteps 20000
    python train_agents.py export --model runs/ppo-seed0/model.zip --out enn.pt
    python train_agents.py guide --config configs/paper_mnist.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

WANDB_MODES = ["offline", "online", "disabled"]


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

    def common(sub: argparse.ArgumentParser, seed_help: str = "random seed") -> None:
        sub.add_argument("--env-kwargs", type=env_kwargs_arg, default={}, help="GradInstructor-v0 keyword arguments")
        sub.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline", help="Weights & Biases mode")
        sub.add_argument("--timesteps", type=int, default=None, help="env steps per training run (default: config)")
        sub.add_argument("--n-envs", type=int, default=None, help="MLPs trained side by side (default: config)")
        sub.add_argument("--eval-episodes", type=int, default=10, help="unseen MLPs for the final evaluation")

    rollout = commands.add_parser("rollout", help="roll out the zero-action (plain SGD) and random policies")
    rollout.add_argument("--env-kwargs", type=env_kwargs_arg, default={}, help="GradInstructor-v0 keyword arguments")
    rollout.add_argument("--episodes", type=int, default=5, help="episodes (fresh MLPs) per policy")
    rollout.add_argument("--seed", type=int, default=0, help="episode e uses seed + e")
    rollout.add_argument("--out", type=Path, default=Path("runs/rollout"), help="folder for curves.csv/png")

    train = commands.add_parser("train", help="train one RL agent")
    train.add_argument("--algo", required=True, help="ppo, a2c, sac, td3, ddpg, tqc, trpo, crossq, ars, recurrentppo")
    train.add_argument("--config", type=Path, default=None, help="YAML of hyper-parameters (default configs/ALGO.yaml)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/ALGO-seedSEED)")
    common(train)

    bench = commands.add_parser("benchmark", help="train several algorithms on the same budget and seeds")
    bench.add_argument("--algos", nargs="+", required=True)
    bench.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    bench.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    bench.add_argument("--resume", action="store_true", help="keep runs already finished in --out (same config)")
    common(bench)

    export = commands.add_parser("export", help="export a trained agent's critic as a calibrated ENN")
    export.add_argument("--model", type=Path, required=True, help="runs/NAME/model.zip (config.yaml beside it)")
    export.add_argument("--out", type=Path, default=Path("enn.pt"))
    export.add_argument("--episodes", type=int, default=32, help="unseen MLPs for calibration, and as many for quality")

    guide = commands.add_parser("guide", help="the paper's comparison: BP, L1, He init, ENN guidance")
    guide.add_argument("--config", type=Path, default=Path("configs/paper_mnist.yaml"))
    guide.add_argument("--seeds", nargs="+", type=int, default=None, help="override the config's seeds")
    guide.add_argument("--out", type=Path, default=None, help="default runs/guide-CONFIG")
    guide.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")

    quick = commands.add_parser("quickstart", help="the main job on the embedded default data set (digits)")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    quick.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agents import commands

    if args.command == "rollout":
        commands.rollout(args.env_kwargs, args.episodes, args.seed, args.out)
    elif args.command == "train":
        commands.train(args.algo, args.config, args.env_kwargs, args.timesteps, args.seed, args.n_envs,
                       args.wandb_mode, args.out, args.eval_episodes)
    elif args.command == "benchmark":
        commands.benchmark(args.algos, args.seeds, args.timesteps, args.env_kwargs, args.n_envs, args.wandb_mode,
                           args.out, args.eval_episodes, args.resume)
    elif args.command == "export":
        commands.export(args.model, args.out, args.episodes)
    elif args.command == "guide":
        commands.guide(args.config, args.out, args.wandb_mode, args.seeds)
    elif args.command == "quickstart":
        commands.quickstart(args.seed, args.out, args.wandb_mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
