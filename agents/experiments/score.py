"""`grad-instructor score`: rank a user's MLP checkpoints by the accuracy an ENN predicts for them.

A checkpoint is a state_dict (``torch.save(model.state_dict(), path)``), a dict holding one under
``state_dict`` or ``model``, a whole saved `nn.Module` built of `torch.nn` layers, or a ``.safetensors``
file; all of them load without unpickling code (``weights_only=True``). A module of another class needs
`trust_pickles`, which unpickles the file as it is (run only files you trust). Every `nn.Linear` layer,
in order, is what the ENN reads (`ENN.predict`, which gives the same numbers).

A file that cannot be scored (not a checkpoint, another shape, a class that needs `trust_pickles` or cannot
be found here) is skipped and listed with its reason; the others are still ranked. A saved module whose
activation is not the one the ENN was made for is ranked with a note saying so.

The uncertainty beside each prediction is the ENN's own mean absolute error on the held-out runs it
was scored on (its metadata's ``quality``), the typical size of its miss on MLPs it never saw. The CSV
is in the printed table's units: percent and points.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from agents.enn.network import ENN, linear_layers, unwrapped_checkpoint
from agents.errors import parameter_error
from agents.report import atomic_write_text, markdown_table
from gi_envs.batched_mlp import ACTIVATION_MODULES

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
IN_ZOO_DISTANCE = 2.0  # `ENN.zoo_distance` of the shipped zoos' own MLPs: about 1-2 robust standard deviations
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
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{path} is not a readable safetensors file ({' '.join(str(error).split())[:120]})"
                             ) from None
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a checkpoint written by torch.save (no zip archive)")
    try:
        with torch.serialization.safe_globals(SAFE_MODULES):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickles:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            what = f"it pickles {found.group(1)}" if found else "it pickles objects beyond tensors and torch.nn layers"
            raise parameter_error(UntrustedPickle, f"{path}: weights_only loading refused it ({what}); save its "
                                  "state_dict instead, or pass {trust_pickles} to unpickle it as it is (only for "
                                  "files you trust: unpickling runs their code)", trust_pickles=True) from None
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ImportError) as error:  # a class of the script that saved it, not importable here
            raise ValueError(f"{path}: its pickled class cannot be found here ({error}); a class defined in the "
                             "script that saved it (__main__) exists only there: save its state_dict instead") from None
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{path} is not a readable checkpoint ({' '.join(str(error).split())[:120]})") from None
    loaded = unwrapped_checkpoint(loaded)
    if isinstance(loaded, (Mapping, nn.Module)):
        return loaded
    raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state_dict or an nn.Module")


class UntrustedPickle(ValueError):
    """A checkpoint that only unpickling (`trust_pickles`) can read: skipped, with how to read it."""


def activation_note(model: nn.Module | Mapping[str, torch.Tensor], enn: ENN) -> str:
    """What a saved module's activations say against the ENN's (``''`` when they agree, or for a state_dict,
    which records none)."""
    if not isinstance(model, nn.Module):
        return ""
    expected = ACTIVATION_MODULES[enn.mlp_spec.activation]
    known = tuple(ACTIVATION_MODULES.values()) + (nn.LeakyReLU, nn.ELU, nn.SiLU)
    found = sorted({type(m).__name__ for m in model.modules() if isinstance(m, known) and type(m) is not expected})
    if not found:
        return ""
    return (f"activation {', '.join(found)}: the ENN was made for {enn.mlp_spec.activation} MLPs, its prediction "
            "may not hold")


@dataclass
class Scores:
    """Predicted accuracies of the checkpoints that fit the ENN, best first, and the files skipped with why."""

    table: pd.DataFrame  # rank, checkpoint, predicted_accuracy, uncertainty, outside_zoo, zoo_distance, note
    skipped: list[tuple[str, Exception]]  # (file, why: its message, parameters named as `agents.errors` does)
    enn: ENN


def score_checkpoints(enn: ENN, paths: Sequence[Path], trust_pickles: bool = False) -> Scores:
    """Predict every checkpoint's accuracy with `enn` (`ENN.predict`) and rank them: those the ENN flags as
    outside its zoo (`ENN.zoo_distance`) after the others, with why. A file that cannot be scored is skipped
    with its reason (a ValueError when none can)."""
    files = checkpoint_files(paths)
    models, names, notes, skipped = [], [], [], []
    for path in files:
        try:
            model = load_checkpoint(path, trust_pickles)
            weights, _ = linear_layers(model, str(path))
            shapes = [tuple(w.shape) for w in weights]
            try:
                enn.check_shapes(shapes)
            except ValueError:
                raise ValueError(f"{path}: its Linear weights have shapes {shapes} (out, in); the ENN reads "
                                 f"{enn.layer_shapes if not enn.any_shape else 'any of'} {enn.shapes_read}") from None
        except (ValueError, TypeError, OSError) as error:
            skipped.append((str(path), error))
            continue
        models.append(model)
        names.append(str(path))
        notes.append(activation_note(model, enn))
    if not models:
        errors = [error for _, error in skipped]
        if len(errors) == 1:
            raise errors[0]
        parameters = {k: v for e in errors for k, v in getattr(e, "parameters", {}).items()}
        raise parameter_error(ValueError, "no checkpoint fits the ENN: " + "; ".join(
            getattr(e, "template", str(e)) for e in errors), **parameters)
    predicted, zoo = enn.predict(models, flags=True)
    quality = enn.metadata.get("quality", {})
    error = float(quality["mae"]) if "mae" in quality else float("nan")
    # the held-out error holds in the zoo; beyond its bulk it grows with the distance (a heuristic, no interval)
    uncertainty = error * np.maximum(1.0, np.nan_to_num(zoo.distance, nan=0.0) / IN_ZOO_DISTANCE)
    order = np.lexsort((-predicted, zoo.outside))  # MLPs inside the zoo first, each part best first
    notes = ["; ".join(filter(None, [zoo.reasons[i], notes[i]])) for i in range(len(models))]
    table = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "checkpoint": [names[i] for i in order],
                          "predicted_accuracy": predicted[order], "uncertainty": uncertainty[order],
                          "outside_zoo": zoo.outside[order], "zoo_distance": zoo.distance[order],
                          "note": [notes[i] for i in order]})
    return Scores(table, skipped, enn)


def write_scores(scores: Scores, out: Path | None, describe: Callable[[Exception], str] = str) -> str:
    """The ranked table as Markdown (returned) and, with `out`, as CSV: one row per file, in percent and points,
    the skipped ones unranked with their reason (`describe` of its error: the command line names flags)."""
    table = scores.table
    if out is not None:
        ranked = pd.DataFrame({"rank": table["rank"], "checkpoint": table.checkpoint,
                               "predicted_val_accuracy_percent": 100 * table.predicted_accuracy,
                               "typical_error_points": 100 * table.uncertainty, "outside_zoo": table.outside_zoo,
                               "zoo_distance": table.zoo_distance, "note": table.note})
        skipped = pd.DataFrame({"rank": [pd.NA] * len(scores.skipped), "checkpoint": [f for f, _ in scores.skipped],
                                "note": [f"skipped: {' '.join(describe(e).split())}" for _, e in scores.skipped]})
        both = pd.concat([ranked, skipped], ignore_index=True) if len(skipped) else ranked
        atomic_write_text(out, both.to_csv(index=False))
    rows = [[r.rank, r.checkpoint, f"{100 * r.predicted_accuracy:.1f}",
             "—" if np.isnan(r.uncertainty) else f"± {100 * r.uncertainty:.1f}",
             "**yes**" if r.outside_zoo else "no", r.note or ""] for r in table.itertuples()]
    return markdown_table(["rank", "checkpoint", "predicted val accuracy (%)", "typical error (points)",
                           "outside the zoo", "note"], rows)
