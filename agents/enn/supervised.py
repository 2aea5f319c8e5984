"""The supervised control: the same ENN network fitted by regression on snapshots of env episodes.

The snapshots cost what an RL agent's training costs: `env_steps` GradInstructor steps, spread over
episodes of plain SGD and random actions from their own seeds (`agents.seeds.supervised_episode_seeds`,
apart from every other seed family). The network is `ENN(kind="value")` over our `WeightImageEncoder`,
fitted to measured validation accuracy with a mean-squared error, early-stopped on held-out
episodes. If an RL critic ranks MLPs no better than this, the RL detour bought nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.enn.fit import FitSettings, fit_regressor, untrained_value_enn
from agents.enn.network import ENN
from agents.enn.quality import Snapshots, collect_snapshots, snapshot_inputs
from agents.seeds import supervised_episode_seeds
from gi_envs.task import EnvConfig

EPISODE_CHUNK = 256  # episodes per vector env


def episode_snapshots(env_kwargs: dict, env_steps: int, seed: int = 0, keep_weights: bool = False) -> Snapshots:
    """Snapshots of every stage of `env_steps / episode_length` episodes (half plain SGD, half random),
    with their weights too if `keep_weights` (what a ``stats`` ENN reads)."""
    length = EnvConfig.from_kwargs(**env_kwargs).episode_length
    episodes = max(2, env_steps // length)
    seeds = supervised_episode_seeds(seed, episodes)
    parts = [collect_snapshots(env_kwargs, seeds[i : i + EPISODE_CHUNK], keep_weights=keep_weights)
             for i in range(0, episodes, EPISODE_CHUNK)]
    offsets = np.cumsum([0] + [p.episodes.max() + 1 for p in parts[:-1]])
    return Snapshots(
        images=torch.cat([p.images for p in parts]),
        accuracy=np.concatenate([p.accuracy for p in parts]),
        steps=np.concatenate([p.steps for p in parts]),
        episodes=np.concatenate([p.episodes + o for p, o in zip(parts, offsets)]),
        weights=[torch.cat([p.weights[layer] for p in parts]) for layer in range(len(parts[0].weights))]
        if keep_weights else None,
        biases=[torch.cat([p.biases[layer] for p in parts]) for layer in range(len(parts[0].biases))]
        if keep_weights else None,
    )


def supervised_control(env_kwargs: dict, env_steps: int, seed: int = 0, epochs: int = 30) -> ENN:
    """The supervised ENN an RL critic is measured against: the critic's network shape (image encoder), fitted on
    snapshots of as many env steps of the same env as the agent trained for."""
    return fit_supervised_enn(env_kwargs, episode_snapshots(env_kwargs, env_steps, seed), FitSettings(epochs=epochs,
                                                                                                      seed=seed))


def untrained_supervised_enn(env_kwargs: dict, encoder: str = "image") -> ENN:
    """An untrained value-shaped ENN for the MLPs of `env_kwargs`, reading their image (or statistics)."""
    config = EnvConfig.from_kwargs(**env_kwargs)
    return untrained_value_enn(config.mlp, encoder, config.image,
                               source={"kind": "supervised", "env_kwargs": env_kwargs})


def fit_supervised_enn(env_kwargs: dict, snapshots: Snapshots, settings: FitSettings | None = None,
                       encoder: str = "image") -> ENN:
    """Fit a supervised ENN to `snapshots` (MSE on accuracy), keeping the epoch with the best loss on the
    held-out `settings.val_share` of the episodes. Its output is accuracy already (calibration 1, 0). A
    ``stats`` encoder needs snapshots with weights (`episode_snapshots(..., keep_weights=True)`)."""
    settings = settings or FitSettings()
    torch.manual_seed(settings.seed)
    enn = untrained_supervised_enn(env_kwargs, encoder)
    report = fit_regressor(enn, snapshot_inputs(enn, snapshots), snapshots.accuracy, snapshots.episodes, settings)
    enn.metadata["source"].update({"snapshots": int(len(snapshots.accuracy)),
                                   "episodes": int(len(np.unique(snapshots.episodes))), **report})
    return enn
