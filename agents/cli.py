"""Grad-Instructor's command line, `grad-instructor` (or `python train_agents.py`): parses arguments and hands
them to `agents.commands`.

    grad-instructor quickstart                      # the main job on the embedded default (digits)
    grad-instructor rollout --env-kwargs "{dataset: mnist, hidden_sizes: [100]}"
    grad-instructor train --algo ppo --timesteps 30000 --seed 0
    grad-instructor benchmark --algos ppo sac --seeds 0 1 2 3 4 --timesteps 20000
    grad-instructor export --model runs/ppo-seed0/model.zip --out enn.pt
    grad-instructor guide --config paper_mnist.yaml
    grad-instructor inspect --enn runs/guide-paper_digits/enn_paper.pt --mlp runs/guide-paper_digits/mlps/paper_bp.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

PROG = "grad-instructor"
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
    parser = argparse.ArgumentParser(prog=PROG, description="Grad-Instructor: MLP training as a Gymnasium env, "
                                     "RL critics as Evaluation Neural Networks that guide training.")
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
    train.add_argument("--config", type=Path, default=None, help="YAML of hyper-parameters (default: the shipped ALGO.yaml)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/ALGO-seedSEED)")
    common(train)

    bench = commands.add_parser("benchmark", help="train several algorithms on the same budget and seeds")
    bench.add_argument("--algos", nargs="+", required=True)
    bench.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    bench.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    bench.add_argument("--resume", action="store_true", help="keep cells already finished in --out (same config)")
    bench.add_argument("--datasets", nargs="+", default=None,
                       help="data sets of the matrix (default: --env-kwargs' dataset, else digits)")
    bench.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: cells one after another in this process; ray: one Ray task per cell")
    bench.add_argument("--ray-address", default=None,
                       help="join this Ray cluster (auto, HOST:PORT or ray://HOST:10001); default: start one here")
    bench.add_argument("--cpus-per-cell", type=int, default=1, help="CPUs (torch threads) each cell declares and uses")
    bench.add_argument("--attempts", type=int, default=2, help="tries per cell before it is recorded as failed")
    common(bench)

    export = commands.add_parser("export", help="export a trained agent's critic as a calibrated ENN")
    export.add_argument("--model", type=Path, required=True, help="runs/NAME/model.zip (config.yaml beside it)")
    export.add_argument("--out", type=Path, default=Path("enn.pt"))
    export.add_argument("--episodes", type=int, default=32, help="unseen MLPs for calibration, and as many for quality")

    guide = commands.add_parser("guide", help="the paper's comparison: BP, L1, He init, ENN guidance, RMSGD, LFP")
    guide.add_argument("--config", type=Path, default=Path("paper_mnist.yaml"),
                       help="a guide YAML, or the name of a shipped one: paper_mnist.yaml, paper_fashion.yaml, "
                            "paper_digits.yaml")
    guide.add_argument("--seeds", nargs="+", type=int, default=None, help="override the config's seeds")
    guide.add_argument("--rows", nargs="+", default=None,
                       help="override the config's rows: bp l1 he enn enn+he bp-tuned rmsgd lfp")
    guide.add_argument("--regimes", nargs="+", default=None, help="run only these regimes of the config")
    guide.add_argument("--out", type=Path, default=None, help="default runs/guide-CONFIG")
    guide.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")

    inspect = commands.add_parser("inspect", help="Grad-CAM of an ENN over MLP weights; the lottery-ticket test")
    inspect.add_argument("--enn", type=Path, required=True, help="an ENN file (export, guide's enn_REGIME.pt)")
    inspect.add_argument("--mlp", type=Path, default=None,
                         help="MLP checkpoint (guide's mlps/REGIME_ROW.pt); default: train --mlps fresh ones")
    inspect.add_argument("--model", type=int, default=0, help="which MLP of the checkpoint gets the heatmap figure")
    inspect.add_argument("--mlps", type=int, default=5, help="fresh MLPs to train when no --mlp is given")
    inspect.add_argument("--epochs", type=int, default=10, help="epochs of SGD for fresh MLPs")
    inspect.add_argument("--keep", nargs="+", type=float, default=None, help="percents kept when pruning (5 10 25 50)")
    inspect.add_argument("--seed", type=int, default=0)
    inspect.add_argument("--out", type=Path, default=Path("runs/inspect"))
    inspect.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")

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
        from agents.experiments.engine import EngineOptions

        options = EngineOptions(engine=args.engine, resume=args.resume, cpus_per_cell=args.cpus_per_cell,
                                attempts=args.attempts, ray_address=args.ray_address)
        commands.benchmark(args.algos, args.seeds, out=args.out, timesteps=args.timesteps, env_kwargs=args.env_kwargs,
                           n_envs=args.n_envs, datasets=args.datasets, eval_episodes=args.eval_episodes,
                           wandb_mode=args.wandb_mode, options=options)
    elif args.command == "export":
        commands.export(args.model, args.out, args.episodes)
    elif args.command == "guide":
        commands.guide(args.config, args.out, args.wandb_mode, args.seeds, args.rows, args.regimes)
    elif args.command == "inspect":
        commands.inspect(args.enn, args.mlp, args.out, args.wandb_mode, args.model, args.mlps, args.epochs, args.seed,
                         args.keep)
    elif args.command == "quickstart":
        commands.quickstart(args.seed, args.out, args.wandb_mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
