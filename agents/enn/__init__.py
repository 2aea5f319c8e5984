"""The ENN side: networks that read an MLP's weights and predict its accuracy, and what uses them.

Plain PyTorch and `gi_envs` only: nothing here imports Stable-Baselines3 or Weights & Biases, so
an ENN file loads, predicts, guides and explains on a machine without either.
"""

from agents.enn.encoder import WeightImageEncoder
from agents.enn.gradcam import enn_gradcam
from agents.enn.guidance import ENNGuidance
from agents.enn.network import ENN, enn_metadata
from agents.enn.quality import Snapshots, collect_snapshots, quality_by_stage, ranking_quality
from agents.enn.supervised import episode_snapshots, fit_supervised_enn, untrained_supervised_enn

__all__ = [
    "ENN",
    "ENNGuidance",
    "Snapshots",
    "WeightImageEncoder",
    "collect_snapshots",
    "enn_gradcam",
    "enn_metadata",
    "episode_snapshots",
    "fit_supervised_enn",
    "quality_by_stage",
    "ranking_quality",
    "untrained_supervised_enn",
]
