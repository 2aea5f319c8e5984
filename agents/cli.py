"""Grad-Instructor's command line, `grad-instructor` (or `python train_agents.py`): parses arguments into each
command's options object (`agents.commands`) and shows errors in terms of the flags a user typed.

    grad-instructor quickstart                      # the main job on the embedded default (digits)
    grad-instructor rollout --task randomized --episodes 16
    grad-instructor train --algo ppo --task randomized --timesteps 60000 --seed 0
    grad-instructor benchmark --task randomized --algos ppo sac --seeds 0 1 2 3 4 --timesteps 60000
    grad-instructor reevaluate --benchmark runs/benchmark --env-kwargs "{randomize_regime: wide-lr}"
    grad-instructor export --model runs/ppo-seed0/model.zip --out enn.pt
    grad-instructor guide --config paper_mnist.yaml
    grad-instructor zoo --dataset digits --runs 400 --out zoo.npz
    grad-instructor fit-enn --zoo zoo.npz --encoder stats --out enn_stats.pt
    grad-instructor evaluate-enn --zoo zoo.npz enn_stats.pt enn.pt
    grad-instructor score runs/my-checkpoints/ --enn mnist-784-100-10
    grad-instructor inspect --enn runs/guide-paper_digits/enn_paper.pt --mlp runs/guide-paper_digits/mlps/paper_bp.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from agents.errors import MissingDependency, for_command_line
from agents.seeds import SEED_LIMIT

PROG = "grad-instructor"
WANDB_MODES = ["offline", "online", "disabled"]
# Errors a user can cause (a bad value, a missing or foreign file, a missing extra, no cluster at an address):
# one line and exit code 2. Anything else (an ImportError of our own code, say) is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, MissingDependency, ConnectionError)


def integer(low: int, high: int | None = None, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: an integer in [low, high), named in the message when it is not."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


positive_int = integer(1, what="a positive integer")
seed_int = integer(0, SEED_LIMIT, what="a seed in [0, 2**32 - 1]")
index_int = integer(0, what="an index >= 0")


def real(low: float, high: float, what: str, high_closed: bool = False) -> Callable[[str], float]:
    """An argparse type: a number in (low, high) or (low, high], named in the message when it is not."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (low < value <= high if high_closed else low < value < high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value:g}")
        return value

    return parse


percent = real(0.0, 100.0, "a percentage in (0, 100)")  # a share of weights kept when pruning
fraction = real(0.0, 1.0, "a number in (0, 1]", high_closed=True)


def yaml_mapping(flag: str, example: str) -> Callable[[str], dict]:
    """A parser of `flag`'s value as a YAML / JSON mapping (`example` shows one)."""

    def parse(text: str) -> dict:
        from agents.config_files import load_yaml

        try:
            value = load_yaml(text, flag) if text.strip() else {}
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{flag} ")) from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a mapping such as '{example}', got {text!r}")
        return value

    return parse


env_kwargs_arg = yaml_mapping("--env-kwargs", "{dataset: mnist}")  # "{dataset: mnist, hidden_sizes: [100]}"
hyperparams_arg = yaml_mapping("--hyperparams", "{sub_sampling_factor: 4}")


class OneLineErrors(argparse.ArgumentParser):
    """argparse with its errors on one line, like every other user error of this command line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


NO_COMPETITORS = "none"


def competitor_arg(text: str) -> str:
    """A competitor's row name or key (case-insensitive), as its registry spells the name; or ``none``."""
    from agents.experiments.competitors import competitor_named

    if text.lower() == NO_COMPETITORS:
        return NO_COMPETITORS
    try:
        return competitor_named(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def competitor_flags(sub: argparse.ArgumentParser) -> None:
    """--competitors and --competitor-tuning: the rows of other optimizers on the table's own MLPs."""
    from agents.experiments.competitors import COMPETITORS

    sub.add_argument("--competitors", nargs="+", type=competitor_arg, default=None,
                     help="other optimizers run on the table's own MLPs, each a row (default: all; 'none': no "
                          f"rows): {', '.join(c.key for c in COMPETITORS.values())}")
    sub.add_argument("--competitor-tuning", type=positive_int, default=None,
                     help="reference-tuning MLPs each tuned competitor chooses its knob on (default: the task's)")


def build_parser() -> argparse.ArgumentParser:
    from agents.enn.encoder import ENCODERS
    from agents.enn.network import pretrained_names
    from agents.enn.zoo import TARGETS
    from agents.experiments.engine.matrix import ENGINES
    from agents.experiments.guide.registry import GUIDE_ROWS
    from agents.rl.algorithms import ALGORITHMS
    from agents.rl.tasks import TASKS
    from gi_envs.datasets import DATASETS
    from gi_envs.regime import REGIME_DISTRIBUTIONS
    from gi_envs.task_family import TASK_SPLITS
    from gi_envs.weight_image import IMAGE_STATS

    parser = OneLineErrors(prog=PROG, description="Grad-Instructor: MLP training as a Gymnasium env, "
                                     "RL critics as Evaluation Neural Networks that guide training.")
    commands = parser.add_subparsers(dest="command", required=True)
    debug = OneLineErrors(add_help=False)
    debug.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    algorithms = ", ".join(ALGORITHMS)

    def subcommand(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[debug], help=summary, description=summary)

    def overwrite_flag(sub: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
        sub.add_argument("--overwrite", action="store_true",
                         help="replace what a previous run of this command wrote to --out (only that; it is listed)")

    def agent_training(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--task", choices=list(TASKS), default="default",
                         help="default: the registered env; randomized: every MLP draws its own training regime, "
                              "judged beside the per-instance oracle (agents.rl.tasks)")
        sub.add_argument("--env-kwargs", type=env_kwargs_arg, default={},
                         help="GradInstructor-v0 keyword arguments (over the task's)")
        sub.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline", help="Weights & Biases mode")
        sub.add_argument("--timesteps", type=positive_int, default=None,
                         help="env steps per training run (default: config)")
        sub.add_argument("--n-envs", type=positive_int, default=None,
                         help="MLPs trained side by side (default: config)")
        sub.add_argument("--eval-episodes", type=positive_int, default=None,
                         help="unseen MLPs per seed for the final evaluation (default: the task's, 10 or 64)")

    rollout = subcommand("rollout", "roll out the zero-action (plain SGD) and random policies")
    rollout.add_argument("--task", choices=list(TASKS), default="default",
                         help="whose env arguments and references (the randomized task adds the per-instance oracle)")
    rollout.add_argument("--env-kwargs", type=env_kwargs_arg, default={},
                         help="GradInstructor-v0 keyword arguments (over the task's)")
    rollout.add_argument("--episodes", type=positive_int, default=5, help="episodes (fresh MLPs) per policy")
    rollout.add_argument("--seed", type=seed_int, default=0, help="episode e uses seed + e")
    rollout.add_argument("--out", type=Path, default=Path("runs/rollout"), help="folder for curves.csv/png")
    overwrite_flag(rollout)

    train = subcommand("train", "train one RL agent")
    train.add_argument("--algo", required=True, help=algorithms)
    train.add_argument("--config", type=Path, default=None,
                       help="YAML of hyper-parameters (default: the shipped ALGO.yaml)")
    train.add_argument("--seed", type=seed_int, default=0)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/ALGO-seedSEED)")
    overwrite_flag(train)
    agent_training(train)

    bench = subcommand("benchmark", "train several algorithms on the same budget and seeds")
    bench.add_argument("--algos", nargs="+", required=True, help=algorithms)
    bench.add_argument("--seeds", nargs="+", type=seed_int, default=[0, 1, 2, 3, 4])
    bench.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    again = bench.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="keep cells already finished in --out (same config); retry failed ones; clear scratch")
    overwrite_flag(again)
    again.add_argument("--tables-only", action="store_true",
                       help="train nothing: rebuild the tables from the cells finished in --out (a matrix in parts)")
    bench.add_argument("--datasets", nargs="+", default=None,
                       help="data sets of the matrix (default: --env-kwargs' dataset, else digits)")
    bench.add_argument("--engine", choices=list(ENGINES), default="local",
                       help="local: cells one after another in this process; ray: one Ray task per cell")
    bench.add_argument("--ray-address", default=None,
                       help="join this Ray cluster (auto, HOST:PORT or ray://HOST:10001); default: start one here")
    bench.add_argument("--cpus-per-cell", type=positive_int, default=1,
                       help="CPUs (torch threads) each cell declares and uses")
    bench.add_argument("--attempts", type=positive_int, default=2,
                       help="tries per cell before it is recorded as failed")
    bench.add_argument("--hyperparams", type=hyperparams_arg, default={},
                       help="constructor arguments over every algorithm's config, a YAML mapping such as "
                            "'{sub_sampling_factor: 4}' (each algorithm of --algos must take them)")
    competitor_flags(bench)
    agent_training(bench)

    again_eval = subcommand("reevaluate", "judge a finished benchmark's agents on another env (out of distribution)")
    again_eval.add_argument("--benchmark", type=Path, required=True, help="a benchmark's --out folder")
    again_eval.add_argument("--env-kwargs", type=env_kwargs_arg, required=True,
                            help="changes to each cell's env, e.g. \"{randomize_regime: wide-lr}\"")
    again_eval.add_argument("--eval-episodes", type=positive_int, default=None,
                            help="unseen MLPs per seed (default: as many as the benchmark used)")
    again_eval.add_argument("--out", type=Path, default=Path("runs/reevaluate"))
    again_resume = again_eval.add_mutually_exclusive_group()
    again_resume.add_argument("--resume", action="store_true", help="keep cells already judged in --out")
    overwrite_flag(again_resume)
    again_eval.add_argument("--engine", choices=list(ENGINES), default="local")
    again_eval.add_argument("--cpus-per-cell", type=positive_int, default=1)
    competitor_flags(again_eval)

    export = subcommand("export", "export a trained agent's critic as a calibrated ENN")
    export.add_argument("--model", type=Path, required=True, help="runs/NAME/model.zip (config.yaml beside it)")
    export.add_argument("--out", type=Path, default=Path("enn.pt"))
    export.add_argument("--episodes", type=positive_int, default=32,
                        help="unseen MLPs for calibration, and as many for quality")
    overwrite_flag(export)

    guide = subcommand("guide", "the paper's comparison: BP, L1, He init, ENN guidance, RMSGD, LFP")
    guide.add_argument("--config", type=Path, default=Path("paper_mnist.yaml"),
                       help="a guide YAML, or the name of a shipped one: paper_mnist.yaml, paper_fashion.yaml, "
                            "paper_digits.yaml")
    guide.add_argument("--seeds", nargs="+", type=seed_int, default=None, help="override the config's seeds")
    guide.add_argument("--rows", nargs="+", default=None,
                       help="override the config's rows: " + " ".join(GUIDE_ROWS))
    guide.add_argument("--settings", dest="setting_names", nargs="+", default=None,
                       help="run only these settings of the config")
    guide.add_argument("--out", type=Path, default=None, help="default runs/guide-CONFIG")
    overwrite_flag(guide)
    guide.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")

    inspect = subcommand("inspect", "Grad-CAM of an ENN over MLP weights; the lottery-ticket test")
    inspect.add_argument("--enn", type=Path, required=True, help="an ENN file (export, guide's enn_SETTING.pt)")
    inspect.add_argument("--mlp", type=Path, default=None,
                         help="MLP checkpoint (guide's mlps/SETTING_ROW.pt); default: train --mlps fresh ones")
    inspect.add_argument("--mlp-index", type=index_int, default=0,
                         help="which MLP of the checkpoint (or of the fresh ones) gets the heatmap figure")
    inspect.add_argument("--mlps", dest="n_mlps", type=positive_int, default=5,
                         help="fresh MLPs to train when no --mlp is given")
    inspect.add_argument("--epochs", type=positive_int, default=10, help="epochs of SGD for fresh MLPs")
    inspect.add_argument("--keep", dest="keep_percents", nargs="+", type=percent, default=None,
                         help="percents kept when pruning (5 10 25 50)")
    inspect.add_argument("--seed", type=seed_int, default=0)
    inspect.add_argument("--out", type=Path, default=Path("runs/inspect"))
    overwrite_flag(inspect)
    inspect.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")

    zoo = subcommand("zoo", "train a zoo of runs with random regimes, snapshotted, split by run")
    zoo.add_argument("--dataset", type=str.lower, default=None, choices=list(DATASETS),
                     help="the runs' data set (default digits); with --task-family, the only data set drawn")
    zoo.add_argument("--hidden-sizes", nargs="+", type=positive_int, default=[32], help="hidden widths of every run")
    zoo.add_argument("--runs", type=integer(2, what="an integer of at least 2"), default=400,
                     help="training runs")
    zoo.add_argument("--steps", type=positive_int, default=1000, help="minibatch steps per run")
    zoo.add_argument("--distribution", choices=list(REGIME_DISTRIBUTIONS), default="any-optimizer",
                     help="where each run's regime comes from (any-optimizer: the env's randomize_regime=True "
                          "distribution with SGD, momentum and Adam)")
    zoo.add_argument("--family", action="store_true",
                     help="train the shape family instead (hidden widths 16 to 256, 1 to 3 hidden layers; "
                          "agents.enn.zoo_family): --runs per shape, --out a folder of one zoo per shape")
    zoo.add_argument("--task-family", choices=list(TASK_SPLITS), default=None,
                     help="draw every run's whole task (data set, widths, depth, optimizer, regime) from this split "
                          "of gi_envs.TASK_SPLITS, as the env's task_family= draws its MLPs (agents.enn.task_zoo): "
                          "--runs in all, --out a folder of one zoo per data set and shape drawn")
    zoo.add_argument("--seed", type=seed_int, default=0)
    zoo.add_argument("--out", type=Path, default=Path("zoo.npz"),
                     help="the zoo file (NPZ), or with --family or --task-family a folder")
    overwrite_flag(zoo)

    fit = subcommand("fit-enn", "fit a supervised ENN on a zoo's fit runs (early-stopped on held-out fit runs)")
    fit.add_argument("--zoo", type=Path, nargs="+", required=True,
                     help="a zoo file from `grad-instructor zoo`; or several of one data set, or the folder of "
                          "`zoo --family`, for an any-shape encoder (any-stats, any-probe+stats)")
    fit.add_argument("--encoder", choices=list(ENCODERS), default="stats",
                     help="; ".join(f"{k.name}: {k.description}" for k in ENCODERS.values()))
    fit.add_argument("--target", choices=list(TARGETS), default="current",
                     help="current: each snapshot's accuracy; final: the accuracy its run ends with")
    fit.add_argument("--resolution", type=fraction, default=None,
                     help="image encoder only: weight-image resolution (default 0.15)")
    fit.add_argument("--image-stats", nargs="+", choices=list(IMAGE_STATS), default=None,
                     help=f"image encoder only: channels per matrix, each once (default {' '.join(IMAGE_STATS)})")
    fit.add_argument("--probes", choices=["data", "gaussian", "learned"], default=None,
                     help="probing encoders only: data (unlabeled training inputs of the zoo's data set; default), "
                          "gaussian (fixed N(0, 1) inputs) or learned (trained with the ENN)")
    fit.add_argument("--n-probes", type=positive_int, default=None,
                     help="probing encoders only: how many probe inputs (default 128)")
    fit.add_argument("--probe-inputs", type=Path, default=None,
                     help="probing encoders only: your own unlabeled inputs as the probes (.npy or .csv, one per row)")
    fit.add_argument("--epochs", type=positive_int, default=200,
                     help="at most this many epochs (early stopping on held-out fit runs ends most fits sooner)")
    fit.add_argument("--seed", type=seed_int, default=0)
    fit.add_argument("--out", type=Path, default=Path("enn.pt"), help="the ENN file")
    overwrite_flag(fit)

    evaluate = subcommand("evaluate-enn", "score ENN files and StatNN on a zoo's held-out runs")
    evaluate.add_argument("enns", nargs="+", type=Path, metavar="ENN",
                          help="ENN files (any encoder, critics too) or names of shipped ENNs: "
                               + ", ".join(pretrained_names()))
    evaluate.add_argument("--zoo", type=Path, required=True, help="a zoo file from `grad-instructor zoo`")
    evaluate.add_argument("--target", choices=list(TARGETS), default="current",
                          help="the accuracy the predictions are scored against")
    evaluate.add_argument("--seed", type=seed_int, default=0, help="StatNN's random state")
    evaluate.add_argument("--out", type=Path, default=Path("runs/evaluate-enn"),
                          help="folder for results.csv/md, scatter.png")
    overwrite_flag(evaluate)

    score = subcommand("score", "rank MLP checkpoints by the accuracy an ENN predicts for them")
    score.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT",
                       help="state_dicts or saved nn.Modules (.pt, .pth, .ckpt), or folders of them")
    score.add_argument("--enn", default="digits-any",
                       help="an ENN file, or a shipped one: " + ", ".join(pretrained_names()) + " (NAME-any: MLPs of "
                            "any width and 1 to 3 hidden layers)")
    score.add_argument("--trust-pickles", action="store_true",
                       help="unpickle modules of classes other than torch.nn's (runs code from the files)")
    score.add_argument("--out", type=Path, default=None,
                       help="the ranked table as CSV, in percent, the skipped files with why (default: printed only)")
    score.add_argument("--probe-inputs", type=Path, default=None,
                       help="a probing ENN only: unlabeled inputs of your task as its probes (.npy or .csv, one per "
                            "row, in the units your MLPs were trained on)")
    overwrite_flag(score)

    quick = subcommand("quickstart", "the main job on the embedded default data set (digits)")
    quick.add_argument("--seed", type=seed_int, default=0)
    quick.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    quick.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")
    quick_again = quick.add_mutually_exclusive_group()
    quick_again.add_argument("--resume", action="store_true",
                             help="keep the benchmark cells a previous quickstart finished in --out; redo the rest")
    overwrite_flag(quick_again)
    return parser


def options_from(args: argparse.Namespace, options_class: type, **extra: object) -> object:
    """The options object of a command, each field from the flag of the same `dest` (or from `extra`)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(options_class) if hasattr(args, f.name)}
    return options_class(**{**values, **extra})


def run(args: argparse.Namespace) -> int:
    """Build the command's options from the parsed flags and run it; the exit code."""
    from agents import commands
    from agents.experiments.engine import EngineOptions
    from agents.rl.tracking import check_wandb_mode

    if getattr(args, "wandb_mode", None):
        check_wandb_mode(args.wandb_mode)  # an online run without a key fails now, not after training

    if args.command in ("benchmark", "reevaluate"):
        engine = options_from(args, EngineOptions)
        command, options_class = {"benchmark": (commands.benchmark, commands.BenchmarkOptions),
                                  "reevaluate": (commands.reevaluate, commands.ReevaluateOptions)}[args.command]
        failed = command(options_from(args, options_class, engine=engine))
        if failed:
            print(f"{PROG}: error: {failed} cell(s) failed (their failed.json says why); "
                  f"rerun with --resume to try them again", file=sys.stderr)
            return 1
        return 0
    command, options_class = {
        "rollout": (commands.rollout, commands.RolloutOptions),
        "train": (commands.train, commands.TrainOptions),
        "export": (commands.export, commands.ExportOptions),
        "guide": (commands.guide, commands.GuideOptions),
        "inspect": (commands.inspect, commands.InspectOptions),
        "zoo": (commands.zoo, commands.ZooOptions),
        "fit-enn": (commands.fit_enn, commands.FitENNOptions),
        "evaluate-enn": (commands.evaluate_enn, commands.EvaluateENNOptions),
        "score": (commands.score, commands.ScoreOptions),
        "quickstart": (commands.quickstart, commands.QuickstartOptions),
    }[args.command]
    command(options_from(args, options_class))
    return 0


def flag_finder(parser: argparse.ArgumentParser, command: str) -> Callable[[str], str]:
    """Maps a parameter name to the flag of `command` whose dest it is (else ``--name-with-dashes``)."""
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {a.dest: a.option_strings[0] for a in subcommands.choices[command]._actions if a.option_strings}
    return lambda name: flags.get(name, "--" + name.replace("_", "-"))


class _PrintHandler(logging.Handler):
    """The library's progress lines (`logging` under ``agents``), printed to the current stdout as they come."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), flush=True)


def show_progress_lines() -> None:
    """Print the library's INFO lines: a library logs, the command line shows (once per process)."""
    logger = logging.getLogger("agents")
    if not any(isinstance(h, _PrintHandler) for h in logger.handlers):
        logger.addHandler(_PrintHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """The command line: a user's error is one line on stderr and exit code 2 (`--debug` shows the traceback)."""
    show_progress_lines()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except USER_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        message = " ".join(for_command_line(error, flag_finder(parser, args.command)).split())  # YAML, Ray: many lines
        parser.exit(2, f"{PROG}: error: {message or type(error).__name__}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{PROG}: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
