"""Weights & Biases logging: offline by default, everything SB3 logs, plus images, tables and the model.

`wandb.integration.sb3.WandbCallback` carries SB3's metrics only through TensorBoard files; we
instead give SB3's logger a W&B output format, so every value SB3 records (rollout/, train/,
time/, and our episode/ accuracies) reaches W&B at the same step as in `progress.csv`.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import torch
import wandb
from stable_baselines3.common.logger import KVWriter

from agents.errors import parameter_error

WANDB_MODES = ("offline", "online", "disabled")
# W&B mistakes our package `agents` for the OpenAI Agents SDK and suggests LLM tracing; we trace no LLM.
os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
PROJECT = "grad-instructor"
DEFAULT_HOST = "api.wandb.ai"
ONLINE_INIT_SECONDS = 30  # W&B's own default waits 90 s for a server that may never answer


def has_api_key(host: str | None = None) -> bool:
    """Whether an online W&B run could log in: a key in ``$WANDB_API_KEY`` or in ~/.netrc for the W&B host
    (``$WANDB_BASE_URL``'s, default api.wandb.ai), where ``wandb login`` writes it. Sends nothing anywhere."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = host or urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)).hostname or DEFAULT_HOST
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_wandb_mode(mode: str) -> None:
    """Refuse a mode that cannot work here before any work: an unknown one, or ``online`` without an API key."""
    if mode not in WANDB_MODES:
        raise parameter_error(ValueError, f"{{wandb_mode}} is not allowed; expected one of {list(WANDB_MODES)}",
                              wandb_mode=mode)
    if mode == "online" and not has_api_key():
        raise parameter_error(ValueError, "{wandb_mode} needs a W&B API key, and none is set (no $WANDB_API_KEY, no "
                              "~/.netrc entry): run `wandb login`, or log offline and `wandb sync` the run later",
                              wandb_mode=mode)


def start_run(out: Path, mode: str, name: str, config: Mapping[str, Any], group: str | None = None,
              job_type: str = "train") -> wandb.sdk.wandb_run.Run:
    """A W&B run writing under `out/wandb/` (offline by default: sync later with `wandb sync`).

    An online run that cannot reach W&B within `ONLINE_INIT_SECONDS` fails with one `ConnectionError`."""
    check_wandb_mode(mode)
    out.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(console="off", silent=True, x_disable_stats=True,
                              **({"init_timeout": ONLINE_INIT_SECONDS} if mode == "online" else {}))
    try:
        return wandb.init(project=PROJECT, name=name, group=group, job_type=job_type, mode=mode, dir=str(out),
                          config=dict(config), reinit="finish_previous", settings=settings)
    except wandb.errors.Error as error:
        if mode != "online":
            raise
        raise ConnectionError(f"W&B could not start an online run ({' '.join(str(error).split())[:160]}): check "
                              "the network and the key, or use wandb_mode='offline' and `wandb sync` later") from None


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
