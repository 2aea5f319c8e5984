"""RL-critic ENNs against the supervised control, on the same unseen MLPs.

For each trained agent given: export its critic as an ENN and calibrate it (`train_agents.py
export` does the same); fit the supervised ENN on snapshots of env episodes costing as many env steps as
the agent's training; then measure both on the very same snapshots of unseen MLPs (every stage
of training; half plain SGD, half random actions).

    python bench/enn_compare.py --models runs/ppo-rand/model.zip runs/sac-rand/model.zip

`--save DIR` keeps every ENN (`<algo>_critic_<n>.pt`, `supervised_<env steps>_<n>.pt`), e.g. to score
them on a zoo's held-out runs with `grad-instructor evaluate-enn`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.enn.quality import calibrate, collect_snapshots, quality_by_stage
from agents.enn.supervised import supervised_control
from agents.report import atomic_write_text, markdown_table
from agents.rl.export import export_enn, load_agent
from agents.seeds import quality_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, required=True, help="model.zip files (config.yaml beside)")
    parser.add_argument("--episodes", type=int, default=64, help="unseen MLPs for calibration, and as many for quality")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the supervised fit")
    parser.add_argument("--out", type=Path, default=Path("runs/enn_compare"))
    parser.add_argument("--save", type=Path, default=None, help="folder to keep every ENN in")
    args = parser.parse_args()

    rows, supervised_done = [], {}
    for n, path in enumerate(args.models):
        model, algo, env_kwargs = load_agent(path)
        enn = export_enn(model, algo, env_kwargs, source=str(path))
        calibrate(enn, env_kwargs, args.episodes)
        held_out = collect_snapshots(env_kwargs, quality_seeds(args.episodes))
        candidates = {f"{algo} critic, {enn.metadata['source']['critic']}": enn}
        budget = int(model.num_timesteps)
        key = (repr(sorted(env_kwargs.items())), budget)
        if key not in supervised_done:  # one supervised control per env and budget
            supervised_done[key] = supervised_control(env_kwargs, budget, epochs=args.epochs)
            candidates["supervised ENN (same env steps)"] = supervised_done[key]
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            enn.save(args.save / f"{algo}_critic_{n}.pt")
            if "supervised ENN (same env steps)" in candidates:
                supervised_done[key].save(args.save / f"supervised_{budget}_{n}.pt")
        for name, candidate in candidates.items():
            quality = quality_by_stage(candidate, held_out)
            rows.append([name, f"{budget:,}", f"{quality['all']['kendall_tau']:.3f}",
                         f"{quality['all']['spearman_rho']:.3f}", f"{100 * quality['all']['mae']:.1f}",
                         f"{quality['early']['kendall_tau']:.3f}", f"{quality['late']['kendall_tau']:.3f}"])
        print(f"done: {path}", flush=True)
    table = markdown_table(["ENN", "env steps", "Kendall tau", "Spearman rho", "MAE (points)", "tau, early",
                            "tau, late"], rows)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "enn_compare.md", table + "\n")
    print(f"\nQuality on snapshots of {args.episodes} unseen MLPs at every stage of training "
          f"(critics calibrated on {args.episodes} others):\n")
    print(table)


if __name__ == "__main__":
    main()
