"""How well an ENN ranks MLPs: snapshots from unseen seeds, affine calibration, rank correlations.

A snapshot is one MLP at one stage of its training (reset included) with its measured
validation accuracy, its weight image and, on request, its weight matrices (what a ``stats``
ENN reads). Snapshots come from full GradInstructor episodes under the zero action
(plain SGD) and under random actions, on seeds no training run or evaluation used: the
calibration is fitted on one set of seeds and the quality is reported on another.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from scipy import stats

from agents.enn.network import ENN
from agents.enn.zoo import value_at_end
from agents.seeds import CALIBRATION_BASE, QUALITY_BASE, calibration_seeds, quality_seeds
from gi_envs import ENV_ID

LATE_TRAINING = 0.5  # a snapshot is "late" past this share of its run (env episode or zoo run): every table says so


def is_late(stage: np.ndarray) -> np.ndarray:
    """Which snapshots, at `stage` (share of their run done), count as late training."""
    return np.asarray(stage) > LATE_TRAINING


@dataclass
class Snapshots:
    """`images[i]` of an MLP at env step `steps[i]` of episode `episodes[i]`, with its `accuracy[i]`."""

    images: torch.Tensor  # (M, C, H, W)
    accuracy: np.ndarray  # (M,) validation accuracy measured by the env
    steps: np.ndarray  # (M,)
    episodes: np.ndarray  # (M,)
    weights: list[torch.Tensor] | None = None  # per layer (M, out, in), when collected with keep_weights
    biases: list[torch.Tensor] | None = None  # per layer (M, out), likewise

    @property
    def stage(self) -> np.ndarray:
        """(M,) share of its episode each snapshot comes after (0 at reset, 1 at the last step)."""
        return self.steps / max(1, int(self.steps.max()))


def collect_snapshots(env_kwargs: dict, seeds: list[int], random_share: float = 0.5,
                      keep_weights: bool = False) -> Snapshots:
    """Every stage of one episode per seed; the first `random_share` of the episodes use random
    actions (seeded), the rest plain SGD, so that the snapshots span more than one training path.

    :param keep_weights: also keep every snapshot's weight matrices and biases (for an ENN that reads them).
    """
    env_kwargs = {**env_kwargs, "observation": ("weights",)}  # an ENN reads weights: the image alone
    envs = gym.make_vec(ENV_ID, num_envs=len(seeds), vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.NEXT_STEP, **env_kwargs)
    mlp = envs.unwrapped.task.mlp
    n_random = int(round(random_share * len(seeds)))
    rng = np.random.default_rng(seeds[0])
    obs, info = envs.reset(seed=list(seeds))
    n = len(seeds)
    images, accuracy, steps, episodes = [obs], [info["val_accuracy"]], [np.zeros(n, int)], [np.arange(n)]
    weights = [[w.detach().clone()] for w in mlp.weights] if keep_weights else None
    biases = [[b.detach().clone()] for b in mlp.biases] if keep_weights else None
    alive = np.ones(n, dtype=bool)  # an episode leaves after its last step (truncation or divergence)
    for t in range(1, envs.unwrapped.config.episode_length + 1):
        actions = np.zeros(envs.action_space.shape, np.float32)
        actions[:n_random] = rng.uniform(-1, 1, actions[:n_random].shape)
        obs, _, terminated, truncated, info = envs.step(actions)  # next-step autoreset: an ended MLP stays
        idx = np.flatnonzero(alive)
        images.append(obs[idx])
        accuracy.append(info["val_accuracy"][idx])
        steps.append(np.full(len(idx), t))
        episodes.append(idx)
        if weights is not None and biases is not None:
            for store, w in zip(weights + biases, mlp.weights + mlp.biases):
                store.append(w.detach()[idx].clone())
        alive &= ~(terminated | truncated)
    envs.close()
    return Snapshots(torch.from_numpy(np.concatenate(images)), np.concatenate(accuracy),
                     np.concatenate(steps), np.concatenate(episodes),
                     None if weights is None else [torch.cat(w) for w in weights],
                     None if biases is None else [torch.cat(b) for b in biases])


@torch.no_grad()
def snapshot_inputs(enn: ENN, snapshots: Snapshots, chunk: int = 1024) -> torch.Tensor:
    """What `enn` reads of every snapshot: its weight image, or what its encoder makes of the weights."""
    if enn.reads_image:
        return snapshots.images
    if snapshots.weights is None or snapshots.biases is None:
        raise ValueError(f"an ENN with a {enn.encoder_type!r} encoder reads weights: collect the snapshots with "
                         "keep_weights=True")
    return torch.cat([enn.inputs_of([w[i : i + chunk] for w in snapshots.weights],
                                    [b[i : i + chunk] for b in snapshots.biases])
                      for i in range(0, len(snapshots.accuracy), chunk)])


@torch.no_grad()
def enn_outputs(enn: ENN, inputs: torch.Tensor, raw: bool = False, batch: int = 1024) -> np.ndarray:
    """The ENN's calibrated output (or `raw`, before calibration) for every row of `inputs` (what `ENN.inputs_of`
    gives: images for an image ENN), in batches. `ENN.predict` does the same from MLPs."""
    enn.eval()
    parts = [(enn.raw if raw else enn)(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    return torch.cat(parts).numpy().astype(np.float64)


def fit_calibration(raw: np.ndarray, accuracy: np.ndarray) -> tuple[float, float]:
    """Least-squares `scale, offset` with accuracy ~ scale * raw + offset."""
    if np.ptp(raw) == 0:
        return 0.0, float(accuracy.mean())
    scale, offset = np.polyfit(raw, accuracy, 1)
    return float(scale), float(offset)


def ranking_quality(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Kendall tau, Spearman rho and mean absolute error of predicted against measured accuracy. A rank correlation
    that is undefined (fewer than two values, or all of one side equal) is NaN, never a made-up 0."""
    if len(measured) < 2:
        tau = rho = float("nan")
    else:
        tau = stats.kendalltau(predicted, measured).statistic
        rho = stats.spearmanr(predicted, measured).statistic
    return {"kendall_tau": float(tau), "spearman_rho": float(rho),
            "mae": float(np.abs(predicted - measured).mean()), "n": int(len(measured))}


def final_accuracy(snapshots: Snapshots) -> np.ndarray:
    """(M,) the accuracy each snapshot's episode ends with (its last snapshot's)."""
    return value_at_end(snapshots.episodes, snapshots.steps, snapshots.accuracy)


def quality_by_stage(enn: ENN, snapshots: Snapshots) -> dict[str, dict[str, float]]:
    """Ranking quality over all snapshots, and separately early and late in training (`is_late`),
    against what the ENN predicts: the snapshot's accuracy, or for an ENN fitted with ``target:
    final`` the accuracy its run ends with."""
    predicted = enn_outputs(enn, snapshot_inputs(enn, snapshots))
    final = enn.metadata.get("source", {}).get("target") == "final"
    measured = final_accuracy(snapshots) if final else snapshots.accuracy
    late = is_late(snapshots.stage)
    masks = {"all": np.ones(len(predicted), bool), "early": ~late, "late": late}
    return {name: ranking_quality(predicted[m], measured[m]) for name, m in masks.items()}


def calibrate(enn: ENN, env_kwargs: dict, episodes: int = 32) -> dict[str, dict[str, float]]:
    """Fit the ENN's calibration on snapshots from one set of unseen seeds and report its quality
    on another; the report is also stored in `enn.metadata["quality"]`."""
    keep = not enn.reads_image
    fit = collect_snapshots(env_kwargs, calibration_seeds(episodes), keep_weights=keep)
    enn.set_calibration(*fit_calibration(enn_outputs(enn, snapshot_inputs(enn, fit), raw=True), fit.accuracy))
    held_out = collect_snapshots(env_kwargs, quality_seeds(episodes), keep_weights=keep)
    report = quality_by_stage(enn, held_out)
    enn.metadata["quality"] = {"episodes": episodes, "calibration_seeds_from": CALIBRATION_BASE,
                               "quality_seeds_from": QUALITY_BASE, **report}
    return report
