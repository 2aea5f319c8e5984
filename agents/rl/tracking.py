"""Weights & Biases logging: offline by default, everything SB3 logs, plus images, tables and the model.

`wandb.integration.sb3.WandbCallback` carries SB3's metrics only through TensorBoard files; we
instead give SB3's logger a W&B output format, so every value SB3 records (rollout/, train/,
time/, and our episode/ accuracies) reaches W&B at the same step as in `progress.csv`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import wandb
from stable_baselines3.common.logger import KVWriter

WANDB_MODES = ("offline", "online", "disabled")
# W&B mistakes our package `agents` for the OpenAI Agents SDK and suggests LLM tracing; we trace no LLM.
os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
PROJECT = "grad-instructor"


def start_run(out: Path, mode: str, name: str, config: Mapping[str, Any], group: str | None = None,
              job_type: str = "train") -> wandb.sdk.wandb_run.Run:
    """A W&B run writing under `out/wandb/` (offline by default: sync later with `wandb sync`)."""
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb mode {mode!r} is not one of {list(WANDB_MODES)}")
    out.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=PROJECT, name=name, group=group, job_type=job_type, mode=mode, dir=str(out),
                      config=dict(config), reinit="finish_previous",
                      settings=wandb.Settings(console="off", silent=True, x_disable_stats=True))


def plain_number(value: Any) -> int | float | None:
    """`value` as a Python number if it is one: ints and floats, NumPy scalars (PPO's ``train/approx_kl`` is a
    float32) and 0-d arrays or tensors; None for anything else (booleans, strings, arrays of many values)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0 and value.dtype != bool and \
            value.dtype not in (np.bool_, torch.bool):
        item = value.item()
        return item if isinstance(item, (int, float)) else None
    return None


class WandbOutputFormat(KVWriter):
    """An SB3 logger output that sends every numeric value it records to a W&B run."""

    def __init__(self, run: wandb.sdk.wandb_run.Run):
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        numbers = {k: n for k, v in key_values.items() if (n := plain_number(v)) is not None}
        if numbers:
            self.run.log(numbers, step=int(step))

    def close(self) -> None:
        pass


def log_model(run: wandb.sdk.wandb_run.Run, path: Path, name: str, metadata: Mapping[str, Any]) -> None:
    """Attach a saved model as a W&B artifact of type `model`."""
    artifact = wandb.Artifact(name=name, type="model", metadata=dict(metadata))
    artifact.add_file(str(path))
    run.log_artifact(artifact)


def log_table(run: wandb.sdk.wandb_run.Run, key: str, frame: pd.DataFrame) -> None:
    """A data frame as a W&B table."""
    run.log({key: wandb.Table(dataframe=frame)})


def log_image(run: wandb.sdk.wandb_run.Run, key: str, png: Path, step: int | None = None) -> None:
    run.log({key: wandb.Image(str(png))}, step=step)
