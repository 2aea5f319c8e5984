"""The learner side of Grad-Instructor, in layers whose imports only go down:

- `agents.seeds`, `agents.report`, `agents.config_files`: seed families, tables and figures, shipped configs;
- `agents.enn`: the ENN, its encoder, guidance, Grad-CAM, ranking quality, the supervised ENN
  (plain PyTorch: no Stable-Baselines3, no Weights & Biases);
- `agents.rl`: algorithms and their configs, the features extractor, training, evaluation,
  critic export, W&B tracking;
- `agents.experiments`: the benchmark and its engines, guide, inspect, the lottery test, baselines;
- `agents.cli` and `agents.commands`: the `grad-instructor` command line.

Nothing in `gi_envs` imports from here. The names users type are re-exported below:

    from agents import ENN, ENNGuidance

The ENN side loads with `import agents`; the RL and experiment names load Stable-Baselines3 and
W&B on first use only.
"""

from agents.enn import (
    ENN,
    ENNGuidance,
    WeightImageEncoder,
    collect_snapshots,
    enn_gradcam,
    episode_snapshots,
    fit_supervised_enn,
    quality_by_stage,
    untrained_supervised_enn,
)

_LAZY = {  # public name -> module, imported on first access (they import SB3 / W&B)
    "AgentConfig": "agents.rl.algorithms",
    "load_agent_config": "agents.rl.algorithms",
    "train_agent": "agents.rl.training",
    "WeightImageCNN": "agents.rl.features",
    "export_enn": "agents.rl.export",
    "export_calibrated_enn": "agents.rl.export",
    "load_agent": "agents.rl.export",
    "EngineOptions": "agents.experiments.engine",
    "run_benchmark": "agents.experiments.benchmark",
    "run_guide": "agents.experiments.guide",
    "run_inspect": "agents.experiments.inspect",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


__all__ = [
    "ENN",
    "ENNGuidance",
    "WeightImageEncoder",
    "collect_snapshots",
    "enn_gradcam",
    "episode_snapshots",
    "fit_supervised_enn",
    "quality_by_stage",
    "untrained_supervised_enn",
    *_LAZY,
]
