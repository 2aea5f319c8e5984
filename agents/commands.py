"""What each `grad-instructor` subcommand does and prints: one options object in, the layers below do the work.

The command line (`agents.cli`) builds each options object from its flags (a flag's `dest` is the
field's name); Python callers can build them too:

    from agents.commands import ZooOptions, zoo
    zoo(ZooOptions(dataset="digits", runs=100, out=Path("zoo.npz")))
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agents.config_files import default_config, load_yaml
from agents.errors import NAME_ONLY, for_command_line, parameter_error
from agents.experiments.benchmark import cell_folder, run_benchmark
from agents.experiments.engine import EngineOptions
from agents.outputs import check_output, claim_output, replace_with
from agents.report import atomic_write_text, correlation_text, markdown_table, mean_std, write_curves
from agents.rl.algorithms import AgentConfig, algorithm_name, load_agent_config
from agents.rl.evaluation import evaluate_against_references
from agents.rl.references import ZERO, zero_action_label
from agents.rl.tasks import task_named
from agents.rl.training import TrainResult, train_agent
from gi_envs.task import EnvConfig

TRAIN_SCRATCH = ".train-"  # a run of `train` while it works, inside its --out


@dataclass(frozen=True)
class RolloutOptions:
    env_kwargs: dict = field(default_factory=dict)
    task: str = "default"
    episodes: int = 5
    seed: int = 0
    out: Path = Path("runs/rollout")
    overwrite: bool = False


def rollout(options: RolloutOptions) -> dict[str, np.ndarray]:
    """Roll out the reference policies (zero action, random actions, best constant, schedule, and the task's
    per-instance oracle) on fresh MLPs; print and save their curves."""
    claim_output(options.out, "rollout", overwrite=options.overwrite)
    task = task_named(options.task)
    env_kwargs = {**task.env_kwargs, **options.env_kwargs}
    config = EnvConfig.from_kwargs(**env_kwargs)  # fail on a bad argument before any work
    if options.episodes < 1:
        raise parameter_error(ValueError, "{episodes} must be at least 1", episodes=options.episodes)
    seeds = list(range(options.seed, options.seed + options.episodes))
    start = time.perf_counter()
    results, settings, *_ = evaluate_against_references(None, env_kwargs, seeds, tuning_episodes=task.tuning_episodes,
                                                    oracle=task.oracle, tune_on=task.tune_on)
    elapsed = time.perf_counter() - start

    names = list(results)
    curves = {name: r.val_accuracy for name, r in results.items()}
    rows = [[t, *(mean_std(curves[n][:, t]) for n in names)] for t in range(config.episode_length + 1)]
    print(f"GradInstructor-v0 on {config.dataset}, task {options.task}: validation accuracy (%) per env step, "
          f"mean ± std over {options.episodes} MLPs (seeds {seeds[0]}..{seeds[-1]})")
    print(markdown_table(["step", *names], rows))
    final = [[n, settings.get(n, "—"), mean_std(r.val_accuracy[:, -1]), mean_std(r.test_accuracy),
              mean_std(r.returns, scale=1.0, digits=2)] for n, r in results.items()]
    print()
    print(markdown_table(["policy", "setting (tuned on separate seeds)", "final val accuracy (%)",
                          "final test accuracy (%)", "episode return"], final))
    paths = write_curves(options.out / "curves", curves, ylabel="validation accuracy")
    print(f"\n{len(results) * options.episodes} episodes (and the references' tuning) in {elapsed:.1f} s; "
          f"curves written to {', '.join(map(str, paths))}")
    return curves


@dataclass(frozen=True)
class TrainOptions:
    algo: str
    config: Path | None = None
    env_kwargs: dict = field(default_factory=dict)
    timesteps: int | None = None
    n_envs: int | None = None
    task: str = "default"
    seed: int = 0
    eval_episodes: int | None = None
    wandb_mode: str = "offline"
    out: Path | None = None
    overwrite: bool = False

    @property
    def folder(self) -> Path:
        """The run folder: `out`, or runs/ALGO-seedSEED."""
        return self.out or Path("runs") / f"{algorithm_name(self.algo)}-seed{self.seed}"


def train_in_scratch(config: AgentConfig, options: TrainOptions, out: Path, eval_episodes: int) -> TrainResult:
    """Train into a scratch folder inside `out`, and only when the run is complete replace what a previous run
    left there (`replace_with`): a kill or Ctrl-C leaves the old run as it was, and no half-written one."""
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out, prefix=TRAIN_SCRATCH))
    try:
        result = train_agent(config, options.seed, scratch, options.wandb_mode, eval_episodes, run_name=out.name)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if made and not any(out.iterdir()):
            out.rmdir()
        raise
    replace_with(scratch, out, "train")
    return dataclasses.replace(result, out=out)


def train(options: TrainOptions) -> None:
    """Train one agent; print how it does against the reference policies on unseen MLPs."""
    out = options.folder
    check_output(out, "train", overwrite=options.overwrite)  # refuses a used --out; removes nothing yet
    config = load_agent_config(options.algo, options.config, {"n_timesteps": options.timesteps,
                                                              "n_envs": options.n_envs,
                                                              "env_kwargs": options.env_kwargs}, task=options.task)
    eval_episodes = options.eval_episodes or task_named(options.task).eval_episodes
    print(f"training {config.algo} for {config.n_timesteps} env steps on {config.n_envs} MLPs, task {options.task} "
          f"({config.env_kwargs or 'default env'}); writing to {out}")
    result = train_in_scratch(config, options, out, eval_episodes)
    zero_label = zero_action_label(config.env_kwargs)  # the optimizer the MLPs actually train with
    rows = [[zero_label if name == ZERO else name, f"{100 * s['final_val_accuracy']:.1f}",
             f"{100 * s['final_test_accuracy']:.1f}", f"{s['episode_return']:.2f}"]
            for name, s in result.evaluation.items()]
    print(f"\nOn {eval_episodes} unseen MLPs (means):")
    print(markdown_table(["policy", "final val acc (%)", "final test acc (%)", "episode return"], rows))
    if result.model.num_timesteps != config.n_timesteps:
        print(f"\nnote: {config.algo} ran {result.model.num_timesteps} env steps for a budget of {config.n_timesteps}: "
              "it learns in whole rounds of env steps across its MLPs (n_envs x n_steps, or ARS's episodes per "
              "update), so it rounds the budget up")
    print(f"\n{result.model.num_timesteps} env steps in {result.wall_seconds:.0f} s "
          f"({result.env_steps_per_second:,.0f}/s, {100 * result.env_step_seconds / result.wall_seconds:.0f} % "
          f"inside env.step); model, config, monitor and eval in {out}")


@dataclass(frozen=True)
class BenchmarkOptions:
    algos: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    out: Path = Path("runs/benchmark")
    datasets: list[str] | None = None
    env_kwargs: dict = field(default_factory=dict)
    timesteps: int | None = None
    n_envs: int | None = None
    task: str = "default"
    eval_episodes: int | None = None
    wandb_mode: str = "offline"
    tables_only: bool = False
    hyperparams: dict = field(default_factory=dict)
    engine: EngineOptions = field(default_factory=EngineOptions)
    competitors: list[str] | None = None  # None: every registered competitor; ["none"] or []: none
    competitor_tuning: int | None = None


def chosen_competitors(names: list[str] | None) -> list[str] | None:
    """The competitors a command runs: None (all), or the names given, ``none`` meaning no competitor."""
    if names is None:
        return None
    if "none" in names and len(names) > 1:
        raise parameter_error(ValueError, f"{{competitors}} names 'none' beside competitors ({names}): give 'none' "
                              "alone for no competitor rows", competitors=NAME_ONLY)
    return [n for n in names if n != "none"]


def benchmark(options: BenchmarkOptions) -> int:
    """Train each algorithm on each seed (and data set), on the local or the Ray engine; print the tables.

    :return: how many cells failed.
    """
    if not options.tables_only:  # the folder first: loading every config takes seconds
        check_output(options.out, "benchmark", overwrite=options.engine.overwrite, resume=options.engine.resume)
    start = time.perf_counter()
    result = run_benchmark(options.algos, options.seeds, out=options.out, timesteps=options.timesteps,
                           env_kwargs=options.env_kwargs, n_envs=options.n_envs, datasets=options.datasets,
                           eval_episodes=options.eval_episodes, wandb_mode=options.wandb_mode, options=options.engine,
                           task=options.task, tables_only=options.tables_only, hyperparams=options.hyperparams,
                           competitors=chosen_competitors(options.competitors),
                           competitor_tuning=options.competitor_tuning)
    print(f"\n{result.table}\n\n{result.verdict}")
    outcome = result.outcome
    eval_episodes = options.eval_episodes or task_named(options.task).eval_episodes
    print(f"\nFinal accuracies of MLPs trained by each policy on {eval_episodes} unseen MLPs per seed, "
          f"mean ± std over seeds {options.seeds}. Cells: {len(outcome.finished)} run, {len(outcome.kept)} kept, "
          f"{len(outcome.failed)} failed; {time.perf_counter() - start:.0f} s in all ({options.engine.engine} "
          f"engine). Written: {options.out}/results.csv, results.md, learning_curves_*.png")
    return len(outcome.failed)


@dataclass(frozen=True)
class ReevaluateOptions:
    benchmark: Path
    env_kwargs: dict = field(default_factory=dict)
    eval_episodes: int | None = None
    out: Path = Path("runs/reevaluate")
    engine: EngineOptions = field(default_factory=EngineOptions)
    competitors: list[str] | None = None  # as the benchmark's
    competitor_tuning: int | None = None


def reevaluate(options: ReevaluateOptions) -> int:
    """Judge a finished benchmark's agents on their env changed by `env_kwargs`; print the tables.

    :return: how many cells failed.
    """
    from agents.experiments.reevaluate import reevaluate_benchmark

    check_output(options.out, "reevaluate", overwrite=options.engine.overwrite, resume=options.engine.resume)
    start = time.perf_counter()
    result = reevaluate_benchmark(options.benchmark, options.out, options.env_kwargs, options.eval_episodes,
                                  options.engine, chosen_competitors(options.competitors), options.competitor_tuning)
    print(f"\n{result.table}\n\n{result.verdict}\n\nThe agents of {options.benchmark}, judged with env changes "
          f"{options.env_kwargs}; {time.perf_counter() - start:.0f} s. Written: {options.out}/results.csv, results.md")
    return len(result.outcome.failed)


@dataclass(frozen=True)
class ExportOptions:
    model: Path
    out: Path = Path("enn.pt")
    episodes: int = 32
    overwrite: bool = False


def export(options: ExportOptions) -> None:
    """Export a trained agent's critic as a calibrated ENN; print how well it ranks unseen MLPs."""
    from agents.rl.export import export_calibrated_enn

    claim_output(options.out, "export", overwrite=options.overwrite)
    enn, algo, report = export_calibrated_enn(options.model, options.episodes)
    enn.save(options.out)
    rows = [[stage, f"{q['kendall_tau']:.3f}", f"{q['spearman_rho']:.3f}", f"{100 * q['mae']:.1f}", q["n"]]
            for stage, q in report.items()]
    print(f"ENN from {algo}'s critic ({enn.metadata['source']['critic']}), calibrated on {options.episodes} unseen "
          f"MLPs; quality on {options.episodes} others, every stage of training:")
    print(markdown_table(["snapshots", "Kendall tau", "Spearman rho", "MAE (points)", "n"], rows))
    print(f"\nsaved to {options.out}")


@dataclass(frozen=True)
class GuideOptions:
    config: Path = Path("paper_mnist.yaml")
    out: Path | None = None
    seeds: list[int] | None = None
    rows: list[str] | None = None
    setting_names: list[str] | None = None
    wandb_mode: str = "offline"
    overwrite: bool = False


def guide(options: GuideOptions) -> Path:
    """The paper's comparison of BP, L1, He init, ENN guidance and the RMSGD / LFP baselines; print the tables.

    :return: the folder it wrote.
    """
    from agents.experiments.guide import OUTPUTS, run_guide

    out = options.out or Path("runs") / f"guide-{Path(options.config).stem}"
    claim_output(out, "guide", overwrite=options.overwrite)
    start = time.perf_counter()
    report = run_guide(options.config, out, options.wandb_mode, options.seeds, options.rows, options.setting_names)
    print(f"\n{report}\n\n{time.perf_counter() - start:.0f} s in all. Written to {out}: {OUTPUTS}")
    return out


@dataclass(frozen=True)
class InspectOptions:
    enn: Path
    mlp: Path | None = None
    mlp_index: int = 0
    n_mlps: int = 5
    epochs: int = 10
    keep_percents: list[float] | None = None
    seed: int = 0
    out: Path = Path("runs/inspect")
    wandb_mode: str = "offline"
    overwrite: bool = False


def inspect(options: InspectOptions) -> Path:
    """Grad-CAM heatmaps of an ENN over an MLP's weights and the lottery-ticket measurements; print them.

    :return: the heatmap PNG of MLP `mlp_index`.
    """
    from agents.experiments.inspect import run_inspect

    claim_output(options.out, "inspect", overwrite=options.overwrite)
    result = run_inspect(options.enn, options.mlp, options.out, options.wandb_mode, mlp_index=options.mlp_index,
                         n_mlps=options.n_mlps, epochs=options.epochs, seed=options.seed,
                         keep_percents=options.keep_percents)
    print(f"\n{result.report}\n\nWritten: {', '.join(str(p) for p in result.written)}")
    print(f"Grad-CAM heatmap of MLP {options.mlp_index}: {result.heatmap_png}")
    return result.heatmap_png


@dataclass(frozen=True)
class ZooOptions:
    dataset: str | None = None  # None: digits; with task_family, every data set the split draws
    hidden_sizes: tuple[int, ...] = (32,)
    runs: int = 400
    steps: int = 1000
    distribution: str = "any-optimizer"
    family: bool = False
    task_family: str | None = None
    seed: int = 0
    out: Path = Path("zoo.npz")
    overwrite: bool = False


def zoo(options: ZooOptions) -> None:
    """Train a zoo of runs with random regimes (`agents.enn.zoo`), a shape-family zoo (`agents.enn.zoo_family`) or a
    task-family zoo (`agents.enn.task_zoo`); print what it holds."""
    from agents.enn.zoo import ZooSpec, train_zoo
    from gi_envs.regime import regime_distribution
    from gi_envs.spec import MLPSpec

    if options.family and options.task_family:
        raise parameter_error(ValueError, "{family} and {task_family} are two kinds of zoo; choose one",
                              family=NAME_ONLY, task_family=options.task_family)
    if options.task_family:
        return task_zoo(options)
    options = dataclasses.replace(options, dataset=options.dataset or "digits")
    if options.family:
        return zoo_family(options)
    claim_output(options.out, "zoo", overwrite=options.overwrite)
    spec = ZooSpec(mlp=MLPSpec(options.dataset, tuple(options.hidden_sizes)), runs=options.runs, steps=options.steps,
                   distribution=regime_distribution(options.distribution), seed=options.seed)
    start = time.perf_counter()
    result = train_zoo(spec)
    result.save(options.out)
    final = result.stage == 1.0
    by_optimizer = ", ".join(f"{name} {mean_std(result.val_accuracy[final & (result.optimizer == name)])} %"
                             for name in sorted(set(result.optimizer)))
    print(f"{options.runs} runs of {options.dataset} {'-'.join(map(str, spec.mlp.layer_sizes))} MLPs "
          f"(regimes from the {options.distribution!r} distribution), {options.steps} steps each, "
          f"{len(spec.snapshot_steps)} snapshots per run ({len(result)} in all) in "
          f"{time.perf_counter() - start:.0f} s; "
          f"{result.held_out_runs.sum()} runs held out from fitting.")
    print(f"Final validation accuracy over runs: {mean_std(result.val_accuracy[final])} % "
          f"(min {100 * result.val_accuracy[final].min():.1f}, max {100 * result.val_accuracy[final].max():.1f}); "
          f"by optimizer: {by_optimizer}. Written: {options.out}")


def zoo_family(options: ZooOptions) -> None:
    """Train the shape family's zoos into the folder `options.out`, resuming members already there."""
    from agents.enn.zoo_family import ZooFamilySpec, member_file, train_zoo_family
    from gi_envs.regime import regime_distribution

    zoo_folder(options.out)
    spec = ZooFamilySpec(options.dataset, runs=options.runs, steps=options.steps,
                         distribution=regime_distribution(options.distribution), seed=options.seed)
    if options.overwrite:
        for member in spec.members():
            member_file(options.out, member).unlink(missing_ok=True)
    start = time.perf_counter()
    zoos = train_zoo_family(spec, options.out)
    rows = "\n".join(f"  {'-'.join(map(str, z.spec.mlp.layer_sizes))}: final validation accuracy "
                     f"{mean_std(z.val_accuracy[z.stage == 1.0])} %" for z in zoos)
    print(f"A shape-family zoo of {options.dataset} MLPs: {len(zoos)} shapes x {options.runs} runs (regimes from the "
          f"{options.distribution!r} distribution), {options.steps} steps each, in {time.perf_counter() - start:.0f} s "
          f"(members already in the folder were read, not trained):\n{rows}\nWritten: {options.out}")


def zoo_folder(out: Path) -> None:
    """Refuse an `--out` that is a file where a family zoo writes a folder of zoo files."""
    if out.is_file():
        raise parameter_error(FileExistsError, "{out} is a file; a family zoo is a folder of zoo files (one per "
                              "shape)", out=out)


def task_zoo(options: ZooOptions) -> None:
    """Train the task-family zoo of split `options.task_family` into the folder `options.out`, resuming members
    already there."""
    from agents.enn.task_zoo import TaskZooSpec, train_task_zoo
    from agents.enn.zoo_family import member_file
    from gi_envs.datasets import SYNTHETIC_PREFIX
    from gi_envs.task_family import SYNTHETIC, TASK_SPLITS

    zoo_folder(options.out)
    tasks = TASK_SPLITS[options.task_family].distribution
    if options.dataset is not None:
        tasks = dataclasses.replace(tasks, datasets=(options.dataset,))
    spec = TaskZooSpec(tasks, runs=options.runs, steps=options.steps, seed=options.seed)
    if options.overwrite:
        for member in spec.members():
            member_file(options.out, member.spec).unlink(missing_ok=True)
    start = time.perf_counter()
    zoos = train_task_zoo(spec, options.out)
    datasets = sorted({SYNTHETIC if z.spec.mlp.dataset.startswith(SYNTHETIC_PREFIX) else z.spec.mlp.dataset
                       for z in zoos})
    final = np.concatenate([z.val_accuracy[z.stage == 1.0] for z in zoos])
    only = "" if options.dataset is None else f" (data set {options.dataset} only)"
    print(f"A task-family zoo of {options.runs} runs drawn from {options.task_family!r}{only}: {len(zoos)} "
          f"members of one data set and shape each ({', '.join(datasets)}), {options.steps} steps each, in "
          f"{time.perf_counter() - start:.0f} s (members already in the folder were read, not trained); final "
          f"validation accuracy over runs {mean_std(final)} %. Written: {options.out}")


@dataclass(frozen=True)
class FitENNOptions:
    zoo: Path | tuple[Path, ...]  # one zoo, or several (files or folders) for an any-shape encoder
    encoder: str = "stats"
    target: str = "current"
    resolution: float | None = None  # image encoder only (default the env's 0.15)
    image_stats: tuple[str, ...] | None = None  # image encoder only (default the env's mean and rms)
    probes: str | None = None  # probing encoders only (default data)
    n_probes: int | None = None  # probing encoders only (default 128)
    probe_inputs: Path | None = None  # probing encoders only: the user's own probes
    epochs: int = 200
    seed: int = 0
    out: Path = Path("enn.pt")
    overwrite: bool = False


def fit_enn(options: FitENNOptions) -> dict[str, float]:
    """Fit a supervised ENN on a zoo's fit runs; print its scores on the held-out runs.

    :return: the held-out scores.
    """
    from agents.enn.encoder import ENCODERS, EncoderKind
    from agents.experiments.enn_ranking import fit_enn_on_zoo
    from gi_envs.spec import ImageSpec

    def refuse_unused(settings: dict[str, object], uses: Callable[[EncoderKind], bool], what: str, verb: str,
                      instead: str) -> None:
        """A ValueError naming the given `settings` (set `what`) where the chosen encoder does not `use` them."""
        given = {k: v for k, v in settings.items() if v is not None}
        if given and not uses(ENCODERS[options.encoder]):
            raise parameter_error(ValueError, f"{' and '.join('{' + k + '}' for k in given)} set(s) {what}, which the "
                                  f"{options.encoder!r} encoder does not {verb}; drop it or pick {instead} "
                                  f"({[k for k, e in ENCODERS.items() if uses(e)]})", **given)

    refuse_unused({"resolution": options.resolution, "image_stats": options.image_stats},
                  lambda kind: kind.reads_image, "the weight image", "read", "an encoder that reads it")
    refuse_unused({"probes": options.probes, "n_probes": options.n_probes, "probe_inputs": options.probe_inputs},
                  lambda kind: kind.reads_probes, "the probes", "use", "a probing encoder")
    encoder_options = {k: v for k, v in (("probes", options.probes), ("n_probes", options.n_probes)) if v is not None}
    if options.probe_inputs is not None and encoder_options:
        raise parameter_error(ValueError, "{probe_inputs} are the probes themselves: drop "
                              + " and ".join("{" + k + "}" for k in encoder_options),
                              probe_inputs=options.probe_inputs, **encoder_options)
    probe_inputs = None
    if options.probe_inputs is not None:
        from agents.enn.probe_encoder import load_probe_inputs

        probe_inputs = load_probe_inputs(options.probe_inputs).numpy()
    image = None
    if ENCODERS[options.encoder].reads_image:  # duplicate stats, a bad resolution: refused before any work
        default = ImageSpec()
        image = ImageSpec(options.resolution or default.resolution, tuple(options.image_stats or default.stats))
    claim_output(options.out, "fit-enn", overwrite=options.overwrite)
    fitted = fit_enn_on_zoo(options.zoo, options.encoder, options.target, options.out, options.epochs, options.seed,
                            image, encoder_options, probe_inputs)
    source, scores = fitted.enn.metadata["source"], fitted.scores
    per_optimizer = ", ".join(f"{k.removeprefix('kendall_tau_')} {correlation_text(v)}" for k, v in scores.items()
                              if k.startswith("kendall_tau_") and k != "kendall_tau_late")
    zoos = ", ".join(map(str, [options.zoo] if isinstance(options.zoo, (str, Path)) else options.zoo))
    print(f"{options.encoder} ENN fitted on {fitted.fit_runs} runs of {zoos} ({options.target} accuracy) in "
          f"{fitted.seconds:.0f} s, best epoch {source['best_epoch'] + 1} of {source['epochs_run']} run (at most "
          f"{options.epochs}). On the held-out runs: Kendall tau {correlation_text(scores['kendall_tau'])} (late "
          f"{correlation_text(scores['kendall_tau_late'])}; by optimizer: {per_optimizer}), "
          f"MAE {100 * scores['mae']:.1f} points. "
          f"Written: {options.out}")
    return scores


@dataclass(frozen=True)
class EvaluateENNOptions:
    enns: list[Path]
    zoo: Path
    target: str = "current"
    seed: int = 0
    out: Path = Path("runs/evaluate-enn")
    overwrite: bool = False


def evaluate_enn(options: EvaluateENNOptions) -> str:
    """Score ENN files and StatNN on a zoo's held-out runs; print the table.

    :return: the Markdown table.
    """
    from agents.experiments.enn_ranking import evaluate_on_zoo

    claim_output(options.out, "evaluate-enn", overwrite=options.overwrite)
    report = evaluate_on_zoo(options.zoo, options.enns, options.out, options.target, options.seed)
    print(report)
    print(f"\nWritten: {options.out / 'results.csv'}, results.md, scatter.png")
    return report


@dataclass(frozen=True)
class ScoreOptions:
    checkpoints: list[Path]
    enn: str = "digits-any"
    trust_pickles: bool = False
    out: Path | None = None  # None: print the table, write no CSV
    overwrite: bool = False
    probe_inputs: Path | None = None  # a probing ENN only: the user's own probes


def as_flags(error: Exception) -> str:
    """`error`'s message with the parameters it names as this command line's flags (``--trust-pickles``)."""
    return for_command_line(error, lambda name: "--" + name.replace("_", "-"))


def score(options: ScoreOptions) -> str:
    """Rank checkpoints by the accuracy an ENN (a file or a shipped one) predicts; print the table (and the files
    skipped, with why), write the CSV to `out` if given.

    :return: the Markdown table.
    """
    from agents.enn.network import resolve_enn
    from agents.experiments.score import score_checkpoints, write_scores

    if options.out is not None:
        claim_output(options.out, "score", overwrite=options.overwrite)
    enn = resolve_enn(options.enn)
    if options.probe_inputs is not None:
        from agents.enn.encoder import ENCODERS
        from agents.enn.probe_encoder import load_probe_inputs

        if not enn.encoder_kind.reads_probes:
            raise parameter_error(ValueError, f"{{probe_inputs}} are probes, and the {enn.encoder_type!r} ENN "
                                  f"{options.enn} reads none; give a probing ENN (encoder "
                                  f"{' or '.join(k for k, e in ENCODERS.items() if e.reads_probes)})",
                                  probe_inputs=options.probe_inputs)
        enn.encoder.set_probe_inputs(load_probe_inputs(options.probe_inputs))
    scores = score_checkpoints(enn, options.checkpoints, options.trust_pickles)
    for path, error in scores.skipped:
        print(f"skipped {' '.join(as_flags(error).split())}" if str(error).startswith(path) else
              f"skipped {path}: {' '.join(as_flags(error).split())}")
    table = write_scores(scores, options.out, as_flags)
    source = enn.metadata.get("source", {})
    written = f"Written: {options.out}" if options.out else "Pass --out FILE.csv to keep the table as CSV."
    print(f"{len(scores.table)} checkpoint(s) ranked by the {enn.encoder_type} ENN {options.enn} "
          f"({source.get('kind', 'file')}, made for {enn.shapes_read}), {len(scores.skipped)} skipped; typical error "
          "= its "
          f"mean absolute error on held-out zoo runs:\n\n{table}\n\n{written}")
    return table


@dataclass(frozen=True)
class QuickstartOptions:
    seed: int = 0
    out: Path = Path("runs/quickstart")
    wandb_mode: str = "offline"
    resume: bool = False
    overwrite: bool = False


QUICKSTART = {"task": "randomized", "timesteps": 20_000, "eval_episodes": 32, "rollout_episodes": 16, "zoo_runs": 400,
              "zoo_enn": "digits-64-32-10", "competitor_tuning": 16}


def quickstart(options: QuickstartOptions) -> None:
    """The whole pipeline on the embedded default (digits), in under ten minutes on two cores: the randomized
    task's references and per-instance oracle, PPO on it (3 seeds) against them and against every competitor
    (`agents.experiments.competitors`, tuned on 16 MLPs instead of the task's 64 to keep it short), its critic
    exported as an ENN and set against a supervised ENN of the same env steps on a zoo's held-out runs, the
    paper's comparison with the critic guiding plain SGD (beside the RMSGD and LFP baselines), and a Grad-CAM
    heatmap of it over one of the comparison's BP-trained MLPs.

    The agent reads the weight image alone (``observation: [weights]``), so that its critic is a function of
    the weights and can be an ENN (docs/enn.md)."""
    import yaml

    from agents.enn.supervised import supervised_control
    from agents.experiments.guide import mlps_path
    from agents.experiments.guide.registry import runnable_rows
    from agents.rl.export import load_agent

    seed, out, wandb_mode, task = options.seed, options.out, options.wandb_mode, QUICKSTART["task"]
    claim_output(out, "quickstart", overwrite=options.overwrite, resume=options.resume)
    digits = load_yaml(default_config("paper_digits.yaml").read_text(), "paper_digits.yaml")
    rows, skipped = runnable_rows(digits["rows"])  # a broken optional baseline is skipped, not fatal minutes later
    for line in skipped:
        print(line)
    mine = {"overwrite": True}  # quickstart has claimed `out`: what it wrote there before is its own to replace
    rollout(RolloutOptions(task=task, episodes=QUICKSTART["rollout_episodes"], seed=seed, out=out / "rollout", **mine))
    print()
    bench = out / "benchmark"
    benchmark(BenchmarkOptions(["ppo"], [seed, seed + 1, seed + 2], out=bench, task=task,
                               env_kwargs={"observation": ["weights"]}, timesteps=QUICKSTART["timesteps"],
                               eval_episodes=QUICKSTART["eval_episodes"], wandb_mode=wandb_mode,
                               competitor_tuning=QUICKSTART["competitor_tuning"],
                               engine=EngineOptions(resume=options.resume, overwrite=not options.resume)))
    print()
    model_path = cell_folder(bench, "digits", "ppo", seed) / "model.zip"
    critic = out / "enn.pt"
    export(ExportOptions(model_path, critic, episodes=32, **mine))
    print()
    model, _, env_kwargs = load_agent(model_path)
    print(f"fitting the supervised control on {model.num_timesteps} env steps of the same env, and a zoo of "
          f"{QUICKSTART['zoo_runs']} runs to judge both on")
    supervised_control(env_kwargs, int(model.num_timesteps), seed).save(out / "supervised_enn.pt")
    zoo(ZooOptions(runs=QUICKSTART["zoo_runs"], seed=seed, out=out / "zoo.npz", **mine))
    evaluate_enn(EvaluateENNOptions([critic, out / "supervised_enn.pt"], out / "zoo.npz", seed=seed,
                                    out=out / "evaluate-enn", **mine))
    print()
    # the zoo rows guide with the shipped digits ENN and the init row fits on the zoo above: no zoo trained twice
    paper = {**digits["settings"]["paper"], "enn": {"path": str(critic)},
             "zoo_enn": {"pretrained": QUICKSTART["zoo_enn"]},
             "init_enn": {"zoo": str(out / "zoo.npz"), "encoder": "stats", "target": "final"},
             "note": f"the ENN is the PPO critic exported above; the zoo ENN the shipped {QUICKSTART['zoo_enn']}"}
    config_path = out / "guide.yaml"
    atomic_write_text(config_path, yaml.safe_dump({"seeds": list(range(seed, seed + 10)), "rows": rows,
                                                   "lr_grid": digits["lr_grid"], "settings": {"paper": paper}},
                                                  sort_keys=False))
    guide_out = guide(GuideOptions(config_path, out / "guide", wandb_mode=wandb_mode, **mine))
    print()
    inspect(InspectOptions(critic, mlps_path(guide_out, "paper", "bp"), out=out / "inspect", wandb_mode=wandb_mode,
                           **mine))
