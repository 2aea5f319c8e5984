"""What each `train_agents.py` subcommand does, one function each, readable top to bottom."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agents.algorithms import load_agent_config
from agents.benchmark import run_benchmark
from agents.evaluation import evaluate_against_references
from agents.report import atomic_write_text, markdown_table, mean_std, write_curves
from agents.training import train_agent
from gi_envs.task import EnvConfig


def rollout(env_kwargs: dict, episodes: int, seed: int, out: Path) -> dict[str, np.ndarray]:
    """Roll out the zero action and random actions on fresh MLPs; print and save both curves."""
    config = EnvConfig.from_kwargs(**env_kwargs)  # fail on a bad argument before any work
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    seeds = list(range(seed, seed + episodes))
    start = time.perf_counter()
    results = evaluate_against_references(None, env_kwargs, seeds)
    elapsed = time.perf_counter() - start

    names = list(results)
    curves = {name: r.val_accuracy for name, r in results.items()}
    rows = [[t, *(mean_std(curves[n][:, t]) for n in names)] for t in range(config.episode_length + 1)]
    print(f"GradInstructor-v0 on {config.dataset}: validation accuracy (%) per env step, "
          f"mean ± std over {episodes} MLPs (seeds {seeds[0]}..{seeds[-1]})")
    print(markdown_table(["step", *names], rows))
    final = [[n, mean_std(r.test_accuracy), mean_std(r.returns, scale=1.0, digits=2)] for n, r in results.items()]
    print()
    print(markdown_table(["policy", "final test accuracy (%)", "episode return"], final))
    paths = write_curves(out / "curves", curves, ylabel="validation accuracy")
    print(f"\n{2 * episodes} episodes in {elapsed:.1f} s; curves written to {', '.join(map(str, paths))}")
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


def benchmark(algos: list[str], seeds: list[int], timesteps: int | None, env_kwargs: dict, n_envs: int | None,
              wandb_mode: str, out: Path, eval_episodes: int, resume: bool = False, datasets: list[str] | None = None,
              engine: str = "local", ray_address: str | None = None, cpus_per_cell: int = 1, attempts: int = 2) -> None:
    """Train each algorithm on each seed (and data set), on the local or the Ray engine; print the tables."""
    start = time.perf_counter()
    result = run_benchmark(algos, seeds, timesteps, out, env_kwargs, n_envs, wandb_mode, eval_episodes,
                           resume=resume, datasets=datasets, engine=engine, ray_address=ray_address,
                           cpus_per_cell=cpus_per_cell, attempts=attempts)
    print(f"\n{result.table}\n\n{result.verdict}")
    outcome = result.outcome
    print(f"\nFinal accuracies of MLPs trained by each policy on {eval_episodes} unseen MLPs per seed, "
          f"mean ± std over seeds {seeds}. Cells: {len(outcome.finished)} run, {len(outcome.kept)} kept, "
          f"{len(outcome.failed)} failed; {time.perf_counter() - start:.0f} s in all ({engine} engine). "
          f"Written: {out}/results.csv, results.md, learning_curves_*.png")


def export(model_path: Path, out: Path, episodes: int) -> None:
    """Export a trained agent's critic as a calibrated ENN; print how well it ranks unseen MLPs."""
    from agents.enn_quality import calibrate
    from agents.export import export_enn, load_agent

    model, algo, env_kwargs = load_agent(model_path)
    enn = export_enn(model, algo, env_kwargs, source=str(model_path))
    report = calibrate(enn, env_kwargs, episodes)
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
    from agents.guided_training import run_guide

    out = out or Path("runs") / f"guide-{config_path.stem}"
    start = time.perf_counter()
    report = run_guide(config_path, out, wandb_mode, seeds, rows, regimes)
    print(f"\n{report}\n\n{time.perf_counter() - start:.0f} s in all. Written: {out}/results.csv, results.md, "
          f"test_accuracy.png, guidance_ratio_*.png, enn_*.pt, mlps/*.pt")


def inspect(enn_path: Path, mlp_path: Path | None, out: Path, wandb_mode: str, model: int = 0, n_mlps: int = 5,
            epochs: int = 10, seed: int = 0, keep_percents: list[float] | None = None) -> Path:
    """Grad-CAM heatmaps of an ENN over an MLP's weights, and the lottery-ticket measurements.

    The MLPs come from a checkpoint (`guide` writes them to `mlps/REGIME_ROW.pt`) or, without
    one, `n_mlps` fresh MLPs of the ENN's own architecture and data set trained on the spot by
    plain SGD (lr 0.1, batch 32, `epochs` epochs, seeds `seed`...).

    :return: the heatmap PNG of MLP `model`.
    """
    from agents import tracking
    from agents.enn import ENN
    from agents.gradcam import enn_gradcam, save_heatmap_figure
    from agents.guided_training import Regime, train_row
    from agents.lottery import KEEP_PERCENTS, lottery_report, lottery_study, write_pruning_figure
    from gi_envs.batched_mlp import BatchedMLP
    from gi_envs.datasets import load_dataset

    enn = ENN.load(enn_path)
    target = enn.metadata["target"]
    if mlp_path is not None:
        mlp, info = BatchedMLP.load(mlp_path)
        source = f"{mlp_path} ({info.get('row', 'MLPs')}, seeds {info.get('seeds', '?')})"
    else:
        shapes = enn.layer_shapes
        regime = Regime(name="inspect", dataset=target["dataset"], hidden_sizes=[o for o, _ in shapes[:-1]], lr=0.1,
                        batch_size=32, epochs=epochs, activation=target["activation"])
        print(f"training {n_mlps} fresh {target['dataset']} MLPs for the ENN's architecture ({epochs} epochs of SGD)")
        mlp = train_row(regime, "bp", list(range(seed, seed + n_mlps)), None).mlp
        info = {"dataset": target["dataset"]}
        source = f"{n_mlps} fresh MLPs, seeds {seed}..{seed + n_mlps - 1}"
    enn.check_shapes(mlp.layer_shapes)
    dataset = info.get("dataset", target["dataset"])
    if (dataset, mlp.activation) != (target["dataset"], target["activation"]):
        raise ValueError(f"the ENN was made for {target['activation']} MLPs on {target['dataset']!r}, "
                         f"the checkpoint holds {mlp.activation} MLPs on {dataset!r}")
    if not 0 <= model < mlp.n_models:
        raise ValueError(f"--model {model} is out of range: the checkpoint holds {mlp.n_models} MLPs")

    title = f"{dataset} {'-'.join(map(str, mlp.layer_sizes))} MLPs, ENN {enn_path.name}"
    heatmaps = enn_gradcam(enn, [w[model] for w in mlp.weights])
    heatmap_png = save_heatmap_figure(out / f"gradcam_model{model}.png", [w[model] for w in mlp.weights], heatmaps,
                                      title=f"{title}: MLP {model} of {source}")
    spearman, pruning = lottery_study(enn, mlp, load_dataset(dataset).test, keep_percents or KEEP_PERCENTS, seed)
    atomic_write_text(out / "spearman.csv", spearman.to_csv(index=False))
    atomic_write_text(out / "pruning.csv", pruning.to_csv(index=False))
    report = lottery_report(spearman, pruning, f"{title} ({source})")
    atomic_write_text(out / "lottery.md", report + "\n")
    pruning_png = write_pruning_figure(out / "pruning", pruning, title)
    run = tracking.start_run(out, wandb_mode, name=f"inspect-{out.name}", job_type="inspect",
                             config={"enn": str(enn_path), "mlp": str(mlp_path), "source": source, "model": model})
    try:
        import wandb

        run.log({"gradcam": wandb.Image(str(heatmap_png)), "pruning_curve": wandb.Image(str(pruning_png)),
                 "spearman": wandb.Table(dataframe=spearman), "pruning": wandb.Table(dataframe=pruning)})
    finally:
        run.finish()
    print(f"\n{report}\n\nWritten: {out}/spearman.csv, pruning.csv, pruning.png, lottery.md, "
          f"{heatmap_png.with_suffix('.npz').name}")
    print(f"Grad-CAM heatmap of MLP {model}: {heatmap_png}")
    return heatmap_png


def quickstart(seed: int, out: Path, wandb_mode: str) -> None:
    """The whole pipeline on the embedded default (digits), in a few minutes on two cores:
    the reference policies, PPO against them, its critic exported as an ENN, the paper's
    comparison with that ENN guiding plain SGD (beside the RMSGD and LFP baselines), and a
    Grad-CAM heatmap of the ENN over one of the comparison's BP-trained MLPs."""
    import yaml

    rollout({}, episodes=5, seed=seed, out=out / "rollout")
    print()
    seeds = [seed, seed + 1, seed + 2]
    benchmark(["ppo"], seeds, None, {}, None, wandb_mode, out / "benchmark", eval_episodes=10)
    print()
    enn_path = out / "enn.pt"
    export(out / "benchmark" / "digits" / "ppo" / f"seed{seed}" / "model.zip", enn_path, episodes=32)
    print()
    digits = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("configs/paper_digits.yaml").read_text())
    paper = {**digits["regimes"]["paper"], "enn": {"path": str(enn_path)},
             "note": "the ENN is the PPO critic exported above"}
    config_path = out / "guide.yaml"
    atomic_write_text(config_path, yaml.safe_dump({"seeds": list(range(seed, seed + 10)), "rows": digits["rows"],
                                                   "lr_grid": digits["lr_grid"], "regimes": {"paper": paper}},
                                                  sort_keys=False))
    guide(config_path, out / "guide", wandb_mode, None)
    print()
    inspect(enn_path, out / "guide" / "mlps" / "paper_bp.pt", out / "inspect", wandb_mode)
