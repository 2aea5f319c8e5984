"""`grad-instructor score`: rank a user's MLP checkpoints by the accuracy an ENN predicts for them.

A checkpoint is a state_dict (``torch.save(model.state_dict(), path)``), a dict holding one under
``state_dict`` or ``model``, or a whole saved `nn.Module` built of `torch.nn` layers; all of them load
with ``weights_only=True``, which unpickles no code. A module of another class needs `trust_pickles`,
which unpickles the file as it is (run only files you trust). Every `nn.Linear` layer, in order, is what
the ENN reads (`ENN.predict`, which gives the same numbers).

The uncertainty beside each prediction is the ENN's own mean absolute error on the held-out runs it
was scored on (its metadata's ``quality``), the typical size of its miss on MLPs it never saw.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from agents.enn.network import ENN, linear_layers
from agents.errors import parameter_error
from agents.report import atomic_write_text, markdown_table

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
SAFE_MODULES = [nn.Sequential, nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU,
                nn.Identity, nn.Flatten, nn.Dropout, nn.Softmax, nn.LogSoftmax, nn.ModuleList]


def checkpoint_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders opened (their checkpoint files, recursively, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{path} holds no checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no checkpoint file or folder at {path}")
    return files


def load_checkpoint(path: Path, trust_pickles: bool = False) -> nn.Module | Mapping[str, torch.Tensor]:
    """A state_dict or a module from `path` (see the module docstring); a ValueError naming the file otherwise."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a checkpoint written by torch.save (no zip archive)")
    try:
        with torch.serialization.safe_globals(SAFE_MODULES):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickles:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            what = f"it pickles {found.group(1)}" if found else "it pickles objects beyond tensors and torch.nn layers"
            raise parameter_error(ValueError, f"{path}: weights_only loading refused it ({what}); save its state_dict "
                                  "instead, or pass {trust_pickles} to unpickle it as it is (only for files you "
                                  "trust: unpickling runs their code)", trust_pickles=True) from None
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{path} is not a readable checkpoint ({' '.join(str(error).split())[:120]})") from None
    if isinstance(loaded, Mapping) and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), (Mapping, nn.Module)):
                return loaded[key]
    if isinstance(loaded, (Mapping, nn.Module)):
        return loaded
    raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state_dict or an nn.Module")


@dataclass
class Scores:
    """Predicted accuracies of the checkpoints that fit the ENN, best first, and one line per file that did not."""

    table: pd.DataFrame  # rank, checkpoint, predicted_accuracy, uncertainty
    skipped: list[str]
    enn: ENN


def score_checkpoints(enn: ENN, paths: Sequence[Path], trust_pickles: bool = False) -> Scores:
    """Predict every checkpoint's accuracy with `enn` (`ENN.predict`) and rank them."""
    files = checkpoint_files(paths)
    models, names, skipped = [], [], []
    for path in files:
        try:
            model = load_checkpoint(path, trust_pickles)
            weights, _ = linear_layers(model, str(path))
            shapes = [tuple(w.shape) for w in weights]
            if shapes != enn.layer_shapes:
                raise ValueError(f"{path}: its Linear weights have shapes {shapes} (out, in); the ENN reads "
                                 f"{enn.layer_shapes} ({enn.mlp_spec.dataset} MLPs)")
        except (ValueError, TypeError, OSError) as error:
            if getattr(error, "parameters", None):
                raise
            skipped.append(" ".join(str(error).split()))
            continue
        models.append(model)
        names.append(str(path))
    if not models:
        raise ValueError("no checkpoint fits the ENN: " + "; ".join(skipped))
    predicted = enn.predict(models)
    quality = enn.metadata.get("quality", {})
    uncertainty = float(quality["mae"]) if "mae" in quality else float("nan")
    order = np.argsort(-predicted, kind="stable")
    table = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "checkpoint": [names[i] for i in order],
                          "predicted_accuracy": predicted[order], "uncertainty": uncertainty})
    return Scores(table, skipped, enn)


def write_scores(scores: Scores, out: Path) -> str:
    """The ranked table as Markdown (returned) and CSV (written to `out`)."""
    atomic_write_text(out, scores.table.to_csv(index=False))
    error = scores.table.uncertainty.iloc[0]
    plus_minus = "—" if np.isnan(error) else f"± {100 * error:.1f}"
    rows = [[r.rank, r.checkpoint, f"{100 * r.predicted_accuracy:.1f}", plus_minus]
            for r in scores.table.itertuples()]
    return markdown_table(["rank", "checkpoint", "predicted val accuracy (%)", "typical error (points)"], rows)
