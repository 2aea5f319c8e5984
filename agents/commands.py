"""What each `grad-instructor` subcommand prints, one function each; the work happens in the layers below."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agents.config_files import default_config, load_yaml
from agents.experiments.benchmark import run_benchmark
from agents.experiments.engine import EngineOptions
from agents.report import atomic_write_text, markdown_table, mean_std, write_curves
from agents.rl.algorithms import load_agent_config
from agents.rl.evaluation import evaluate_against_references
from agents.rl.training import train_agent
from gi_envs.task import EnvConfig


def rollout(env_kwargs: dict, episodes: int, seed: int, out: Path) -> dict[str, np.ndarray]:
    """Roll out the reference policies (zero action, random actions, best constant, schedule) on fresh MLPs;
    print and save their curves."""
    config = EnvConfig.from_kwargs(**env_kwargs)  # fail on a bad argument before any work
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    seeds = list(range(seed, seed + episodes))
    start = time.perf_counter()
    results, settings = evaluate_against_references(None, env_kwargs, seeds)
    elapsed = time.perf_counter() - start

    names = list(results)
    curves = {name: r.val_accuracy for name, r in results.items()}
    rows = [[t, *(mean_std(curves[n][:, t]) for n in names)] for t in range(config.episode_length + 1)]
    print(f"GradInstructor-v0 on {config.dataset}: validation accuracy (%) per env step, "
          f"mean ± std over {episodes} MLPs (seeds {seeds[0]}..{seeds[-1]})")
    print(markdown_table(["step", *names], rows))
    final = [[n, settings.get(n, "—"), mean_std(r.val_accuracy[:, -1]), mean_std(r.test_accuracy),
              mean_std(r.returns, scale=1.0, digits=2)] for n, r in results.items()]
    print()
    print(markdown_table(["policy", "setting (tuned on separate seeds)", "final val accuracy (%)",
                          "final test accuracy (%)", "episode return"], final))
    paths = write_curves(out / "curves", curves, ylabel="validation accuracy")
    print(f"\n{len(results) * episodes} episodes (and the references' tuning) in {elapsed:.1f} s; "
          f"curves written to {', '.join(map(str, paths))}")
    return curves


def train(algo: str, config_path: Path | None, env_kwargs: dict, timesteps: int | None, seed: int,
          n_envs: int | None, wandb_mode: str, out: Path | None, eval_episodes: int) -> None:
    """Train one agent; print how it does against plain SGD and random actions on unseen MLPs."""
    config = load_agent_config(algo, config_path, {"n_timesteps": timesteps, "n_envs": n_envs, "env_kwargs": env_kwargs})
    out = out or Path("runs") / f"{config.algo}-seed{seed}"
    print(f"training {config.algo} for {config.n_timesteps} env steps on {config.n_envs} MLPs "
          f"({config.env_kwargs or 'default env'}); writing to {out}")
    result = train_agent(config, seed, out, wandb_mode, eval_episodes)
    rows = [[name, f"{100 * s['final_val_accuracy']:.1f}", f"{100 * s['final_test_accuracy']:.1f}",
             f"{s['episode_return']:.2f}"] for name, s in result.evaluation.items()]
    print(f"\nOn {eval_episodes} unseen MLPs (means):")
    print(markdown_table(["policy", "final val acc (%)", "final test acc (%)", "episode return"], rows))
    print(f"\n{result.model.num_timesteps} env steps in {result.wall_seconds:.0f} s "
          f"({result.env_steps_per_second:,.0f}/s, {100 * result.env_step_seconds / result.wall_seconds:.0f} % "
          f"inside env.step); model, config, monitor and eval in {out}")


def benchmark(algos: list[str], seeds: list[int], *, out: Path, timesteps: int | None = None,
              env_kwargs: dict | None = None, n_envs: int | None = None, datasets: list[str] | None = None,
              eval_episodes: int = 10, wandb_mode: str = "offline", options: EngineOptions = EngineOptions()) -> int:
    """Train each algorithm on each seed (and data set), on the local or the Ray engine; print the tables.

    :return: how many cells failed.
    """
    start = time.perf_counter()
    result = run_benchmark(algos, seeds, out=out, timesteps=timesteps, env_kwargs=env_kwargs, n_envs=n_envs,
                           datasets=datasets, eval_episodes=eval_episodes, wandb_mode=wandb_mode, options=options)
    print(f"\n{result.table}\n\n{result.verdict}")
    outcome = result.outcome
    print(f"\nFinal accuracies of MLPs trained by each policy on {eval_episodes} unseen MLPs per seed, "
          f"mean ± std over seeds {seeds}. Cells: {len(outcome.finished)} run, {len(outcome.kept)} kept, "
          f"{len(outcome.failed)} failed; {time.perf_counter() - start:.0f} s in all ({options.engine} engine). "
          f"Written: {out}/results.csv, results.md, learning_curves_*.png")
    return len(outcome.failed)


def export(model_path: Path, out: Path, episodes: int) -> None:
    """Export a trained agent's critic as a calibrated ENN; print how well it ranks unseen MLPs."""
    from agents.rl.export import export_calibrated_enn

    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give the ENN file's path, e.g. {out / 'enn.pt'}")
    enn, algo, report = export_calibrated_enn(model_path, episodes)
    enn.save(out)
    rows = [[stage, f"{q['kendall_tau']:.3f}", f"{q['spearman_rho']:.3f}", f"{100 * q['mae']:.1f}", q["n"]]
            for stage, q in report.items()]
    print(f"ENN from {algo}'s critic ({enn.metadata['source']['critic']}), calibrated on {episodes} unseen MLPs; "
          f"quality on {episodes} others, every stage of training:")
    print(markdown_table(["snapshots", "Kendall tau", "Spearman rho", "MAE (points)", "n"], rows))
    print(f"\nsaved to {out}")


def guide(config_path: Path, out: Path | None, wandb_mode: str, seeds: list[int] | None,
          rows: list[str] | None = None, regimes: list[str] | None = None) -> None:
    """The paper's comparison of BP, L1, He init, ENN guidance and the RMSGD / LFP baselines; print the tables."""
    from agents.experiments.guide import run_guide

    out = out or Path("runs") / f"guide-{Path(config_path).stem}"
    start = time.perf_counter()
    report = run_guide(config_path, out, wandb_mode, seeds, rows, regimes)
    print(f"\n{report}\n\n{time.perf_counter() - start:.0f} s in all. Written: {out}/results.csv, results.md, "
          f"test_accuracy.png, guidance_ratio_*.png, enn_*.pt, mlps/*.pt")


def inspect(enn_path: Path, mlp_path: Path | None, out: Path, wandb_mode: str, model: int = 0, n_mlps: int = 5,
            epochs: int = 10, seed: int = 0, keep_percents: list[float] | None = None) -> Path:
    """Grad-CAM heatmaps of an ENN over an MLP's weights and the lottery-ticket measurements; print them.

    :return: the heatmap PNG of MLP `model`.
    """
    from agents.experiments.inspect import run_inspect

    result = run_inspect(enn_path, mlp_path, out, wandb_mode, model=model, n_mlps=n_mlps, epochs=epochs, seed=seed,
                         keep_percents=keep_percents)
    print(f"\n{result.report}\n\nWritten: {', '.join(str(p) for p in result.written)}")
    print(f"Grad-CAM heatmap of MLP {model}: {result.heatmap_png}")
    return result.heatmap_png


def zoo(dataset: str, hidden_sizes: tuple[int, ...], runs: int, steps: int, seed: int, out: Path) -> None:
    """Train a zoo of randomized plain-SGD runs (`agents.enn.zoo`); print what it holds."""
    from agents.enn.zoo import ZooSpec, train_zoo
    from gi_envs.spec import MLPSpec

    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give the zoo file's path, e.g. {out / 'zoo.npz'}")
    spec = ZooSpec(mlp=MLPSpec(dataset, hidden_sizes), runs=runs, steps=steps, seed=seed)
    start = time.perf_counter()
    result = train_zoo(spec)
    result.save(out)
    final = result.stage == 1.0
    print(f"{runs} runs of {dataset} {'-'.join(map(str, spec.mlp.layer_sizes))} MLPs, {steps} SGD steps each, "
          f"{len(spec.stages)} snapshots per run ({len(result)} in all) in {time.perf_counter() - start:.0f} s; "
          f"{result.held_out_runs.sum()} runs held out from fitting.")
    print(f"Final validation accuracy over runs: {mean_std(result.val_accuracy[final])} % "
          f"(min {100 * result.val_accuracy[final].min():.1f}, max {100 * result.val_accuracy[final].max():.1f}). "
          f"Written: {out}")


def quickstart(seed: int, out: Path, wandb_mode: str) -> None:
    """The whole pipeline on the embedded default (digits), in a few minutes on two cores:
    the reference policies, PPO against them, its critic exported as an ENN, the paper's
    comparison with that ENN guiding plain SGD (beside the RMSGD and LFP baselines), and a
    Grad-CAM heatmap of the ENN over one of the comparison's BP-trained MLPs."""
    import yaml

    from agents.experiments.baselines import runnable_rows

    digits = load_yaml(default_config("paper_digits.yaml").read_text(), "paper_digits.yaml")
    rows, skipped = runnable_rows(digits["rows"])  # a broken optional baseline is skipped, not fatal minutes later
    for line in skipped:
        print(line)
    rollout({}, episodes=5, seed=seed, out=out / "rollout")
    print()
    seeds = [seed, seed + 1, seed + 2]
    benchmark(["ppo"], seeds, out=out / "benchmark", wandb_mode=wandb_mode, options=EngineOptions(overwrite=True))
    print()
    enn_path = out / "enn.pt"
    export(out / "benchmark" / "digits" / "ppo" / f"seed{seed}" / "model.zip", enn_path, episodes=32)
    print()
    paper = {**digits["regimes"]["paper"], "enn": {"path": str(enn_path)},
             "note": "the ENN is the PPO critic exported above"}
    config_path = out / "guide.yaml"
    atomic_write_text(config_path, yaml.safe_dump({"seeds": list(range(seed, seed + 10)), "rows": rows,
                                                   "lr_grid": digits["lr_grid"], "regimes": {"paper": paper}},
                                                  sort_keys=False))
    guide(config_path, out / "guide", wandb_mode, None)
    print()
    inspect(enn_path, out / "guide" / "mlps" / "paper_bp.pt", out / "inspect", wandb_mode)
