"""The supervised control: the same ENN network fitted by regression on a zoo of MLP snapshots.

The zoo costs what an RL agent's training costs: `env_steps` GradInstructor steps, spread over
episodes of plain SGD and random actions from their own seeds (`agents.seeds.supervised_zoo_seeds`,
apart from every other seed family). The network is `ENN(kind="value")` over our `WeightImageEncoder`,
fitted to measured validation accuracy with a mean-squared error, early-stopped on held-out
episodes. If an RL critic ranks MLPs no better than this, the RL detour bought nothing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from agents.enn.network import ENN, enn_metadata
from agents.enn.quality import Snapshots, collect_snapshots
from agents.seeds import supervised_zoo_seeds
from gi_envs.task import EnvConfig

ZOO_CHUNK = 256  # episodes per vector env


def snapshot_zoo(env_kwargs: dict, env_steps: int, seed: int = 0) -> Snapshots:
    """Snapshots of every stage of `env_steps / episode_length` episodes (half plain SGD, half random)."""
    length = EnvConfig.from_kwargs(**env_kwargs).episode_length
    episodes = max(2, env_steps // length)
    seeds = supervised_zoo_seeds(seed, episodes)
    parts = [collect_snapshots(env_kwargs, seeds[i : i + ZOO_CHUNK]) for i in range(0, episodes, ZOO_CHUNK)]
    offsets = np.cumsum([0] + [p.episodes.max() + 1 for p in parts[:-1]])
    return Snapshots(
        images=torch.cat([p.images for p in parts]),
        accuracy=np.concatenate([p.accuracy for p in parts]),
        steps=np.concatenate([p.steps for p in parts]),
        episodes=np.concatenate([p.episodes + o for p, o in zip(parts, offsets)]),
    )


def supervised_enn(env_kwargs: dict, features_dim: int = 128, channels: int = 32, hidden: int = 64) -> ENN:
    """An untrained value-shaped ENN for the MLPs of `env_kwargs`."""
    config = EnvConfig.from_kwargs(**env_kwargs)
    architecture = {
        "kind": "value",
        "encoder": {"in_channels": config.image.shape(config.mlp)[0], "features_dim": features_dim,
                    "channels": channels},
        "head": [{"type": "linear", "in": features_dim, "out": hidden}, {"type": "tanh"},
                 {"type": "linear", "in": hidden, "out": 1}],
    }
    return ENN(enn_metadata(architecture, config.mlp, config.image, source={"kind": "supervised",
                                                                            "env_kwargs": env_kwargs}))


def fit_supervised_enn(
    env_kwargs: dict, snapshots: Snapshots, epochs: int = 40, lr: float = 1e-3, batch_size: int = 256,
    seed: int = 0, val_share: float = 0.1,
) -> ENN:
    """Fit a supervised ENN to `snapshots` (MSE on accuracy), keeping the epoch with the best loss on
    the held-out `val_share` of the episodes. Its output is accuracy already (calibration 1, 0)."""
    torch.manual_seed(seed)
    enn = supervised_enn(env_kwargs)
    episode_ids = np.unique(snapshots.episodes)
    rng = np.random.default_rng(seed)
    held = rng.choice(episode_ids, size=max(1, int(val_share * len(episode_ids))), replace=False)
    is_val = torch.from_numpy(np.isin(snapshots.episodes, held))
    x, y = snapshots.images, torch.from_numpy(snapshots.accuracy).float()
    x_train, y_train, x_val, y_val = x[~is_val], y[~is_val], x[is_val], y[is_val]
    optimizer = torch.optim.Adam(enn.parameters(), lr=lr)
    best, best_state = float("inf"), None
    for _ in range(epochs):
        enn.train()
        order = torch.randperm(len(y_train))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss = F.mse_loss(enn(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        enn.eval()
        with torch.no_grad():
            val_loss = float(F.mse_loss(enn(x_val), y_val))
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in enn.state_dict().items()}
    assert best_state is not None
    enn.load_state_dict(best_state)
    enn.metadata["source"].update({"zoo_snapshots": int(len(y)), "zoo_episodes": int(len(episode_ids)),
                                   "epochs": epochs, "best_val_mse": best})
    return enn.eval()
