"""Where a command writes, checked before any work: the one output policy of every command that writes.

Every such command calls `claim_output` first, with its entry of `OUTPUTS` (what it writes):

- ``out`` must be the kind of thing the command writes (a folder or a file), and the nearest folder
  that exists above it must take a new file (probed by writing and deleting one);
- a folder that already holds what the command writes (a file that already exists) is refused,
  naming what it holds, unless ``overwrite`` is given (or ``resume``, where the command offers it);
- ``overwrite`` removes only what the command itself writes, and says what it removed; files a user
  keeps beside them are left alone. A file output is replaced atomically when the work is done, so
  a failed run keeps the old one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agents.errors import parameter_error

FOLDER, FILE = "folder", "file"
WANDB = "wandb"  # the W&B run folder `agents.rl.tracking` writes under a command's folder


@dataclass(frozen=True)
class Output:
    """What one command writes.

    :param kind: ``folder`` or ``file``.
    :param entries: for a folder: a `Path.glob` pattern (relative to the folder, ``/`` for deeper levels)
        -> None for a plain entry, or the `Output` of a sub-folder written by another command
        (quickstart's ``benchmark`` is a benchmark's folder).
    :param example: for a file: a file name, shown when a folder is given instead.
    :param resumable: the command offers ``resume`` (keep what a previous run finished).
    """

    kind: str
    entries: Mapping[str, Output | None] = field(default_factory=dict)
    example: str = ""
    resumable: bool = False


def plain(*patterns: str) -> dict[str, None]:
    """Entries that are plain files or folders of the command's own (no other command's output inside)."""
    return dict.fromkeys(patterns)


SCRATCH = "."  # an entry whose name starts so is the scratch of a run that has not ended (or was killed)
RUN_FILES = ("config.yaml", "model.zip", "eval.json", "monitor.csv", "progress.csv", "learning_curve.csv",
             "learning_curve.png", "cell.json", WANDB, ".train-*")
TRAIN = Output(FOLDER, plain(*RUN_FILES))
ROLLOUT = Output(FOLDER, plain("curves.csv", "curves.png"))
# cells live in DATASET/ALGO/seedSEED (or failed.json there), competitor rows in DATASET/competitors; `.cell-*` is
# a cell's scratch while it works
REPLACING_FILE = ".replacing.json"  # what a matrix's overwrite has still to replace (`engine.matrix.Replacement`)
MATRIX_FILES = ("*/*/seed[0-9]*", "*/competitors", ".cell-*", REPLACING_FILE, "results.csv", "results.md",
                "learning_curves_*.csv", "learning_curves_*.png", WANDB)
BENCHMARK = Output(FOLDER, plain(*MATRIX_FILES), resumable=True)
REEVALUATE = Output(FOLDER, plain(*MATRIX_FILES), resumable=True)  # the same tables, of judged cells
EVALUATE_ENN = Output(FOLDER, plain("results.csv", "results.md", "scatter.png"))
GUIDE = Output(FOLDER, plain("results.csv", "results.md", "test_accuracy.png", "guidance_ratio_*", "weight_norms_*",
                             "enn_*.pt", "zoo_enn_*.pt", "init_enn_*.pt", "mlps", WANDB))
INSPECT = Output(FOLDER, plain("gradcam_model*", "spearman.csv", "pruning.csv", "pruning.png", "lottery.md", WANDB))
OUTPUTS: dict[str, Output] = {
    "train": TRAIN,
    "rollout": ROLLOUT,
    "benchmark": BENCHMARK,
    "reevaluate": REEVALUATE,
    "evaluate-enn": EVALUATE_ENN,
    "guide": GUIDE,
    "inspect": INSPECT,
    "export": Output(FILE, example="enn.pt"),
    "zoo": Output(FILE, example="zoo.npz"),
    "fit-enn": Output(FILE, example="enn.pt"),
    "score": Output(FILE, example="score.csv"),
    "quickstart": Output(FOLDER, {"rollout": ROLLOUT, "benchmark": BENCHMARK, "enn.pt": None,
                                  "supervised_enn.pt": None, "zoo.npz": None, "evaluate-enn": EVALUATE_ENN,
                                  "guide.yaml": None, "guide": GUIDE, "inspect": INSPECT}, resumable=True),
}


def held_entries(folder: Path, output: Output) -> list[Path]:
    """What `folder` holds of what `output` writes: matching entries; inside a sub-folder that another
    command writes, only what that command writes (so a user's file there is not counted)."""
    if not folder.is_dir():
        return []
    found = []
    for pattern, inner in output.entries.items():
        for path in sorted(folder.glob(pattern)):
            if inner is None:
                found.append(path)
            elif path.is_dir() and not path.is_symlink():
                found += held_entries(path, inner)
    return sorted(dict.fromkeys(found))


def remove_entries(folder: Path, output: Output, keep: Path | None = None) -> list[Path]:
    """Delete what `folder` holds of what `output` writes (see `held_entries`; all but `keep`), then the folders
    it leaves empty among the command's own. :return: what was removed."""
    removed = [p for p in held_entries(folder, output) if p != keep]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    remove_empty_parents(folder, removed)
    return removed


def remove_empty_parents(folder: Path, removed: list[Path]) -> None:
    """DATASET/ALGO/seedN removed leaves DATASET/ALGO empty: drop the empty folders below `folder` it leaves
    (each once: two seeds of one algorithm share their parents)."""
    for path in removed:
        for parent in path.parents:
            if parent == folder or folder not in parent.parents or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()


def replace_with(new: Path, out: Path, command: str, *, output: Output | None = None,
                 quiet: bool = False) -> list[Path]:
    """Make the folder `out` hold what `new` (a finished run's scratch folder) holds: first remove what a previous
    run of `command` left in `out` (only that, and say what), then move each entry of `new` in, then drop `new`.
    A command that works in `new` and calls this when done never leaves `out` half old and half new.

    :return: what was removed.
    """
    output = output or OUTPUTS[command]
    removed = remove_entries(out, output, keep=new)
    if removed and not quiet:
        say_removed(out, command, removed)
    for entry in sorted(new.iterdir()):
        os.replace(entry, out / entry.name)
    new.rmdir()
    return removed


def nearest_existing(path: Path) -> Path:
    """`path` itself, or the closest of its parents that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(out: Path, where: Path) -> None:
    """Refuse `out` when `where` (the nearest existing folder it goes under) cannot take a new file."""
    if not where.is_dir():
        raise parameter_error(NotADirectoryError, f"{{out}} cannot be written: {where} is a file, not a folder",
                              out=out)
    try:
        handle, probe = tempfile.mkstemp(dir=where, prefix=".grad-instructor-probe-")
    except OSError as error:
        raise parameter_error(PermissionError, f"{{out}} cannot be written: {where} does not take new files "
                              f"({error.strerror or type(error).__name__})", out=out) from None
    os.close(handle)
    os.unlink(probe)


def shown(paths: list[Path], folder: Path, limit: int = 6) -> str:
    names = [str(p.relative_to(folder)) for p in paths]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_output(out: Path, command: str, *, output: Output | None = None, overwrite: bool = False,
                 resume: bool = False) -> list[Path]:
    """Check `out` for `command` (see the module docstring) without changing anything.

    :param output: what the command writes (default: its entry of `OUTPUTS`).
    :param resume: keep what a previous run finished (only where the command is resumable).
    :return: what `overwrite` is to remove (nothing for a file: it is replaced when the work is done).
    """
    output = output or OUTPUTS[command]
    out = Path(out)
    if resume and not output.resumable:
        raise ValueError(f"{command} cannot resume; pass overwrite=True to replace what its out folder holds")
    if resume and overwrite:
        raise parameter_error(ValueError, "{resume} keeps what a previous run finished and {overwrite} deletes it: "
                              "pass one of them", resume=True, overwrite=True)
    if output.kind == FILE:
        if out.is_dir():
            raise parameter_error(IsADirectoryError, f"{{out}} is a folder; {command} writes a file: give its path, "
                                  f"e.g. {out / output.example}", out=out)
        check_writable(out, nearest_existing(out.parent))
        if out.exists() and not overwrite:
            raise parameter_error(FileExistsError, "{out} already exists; pass {overwrite} to replace it (or choose "
                                  "another {out})", out=out, overwrite=True)
        return []
    if out.exists() and not out.is_dir():
        raise parameter_error(NotADirectoryError, f"{{out}} is a file; {command} writes a folder: give a folder's "
                              "path", out=out)
    check_writable(out, nearest_existing(out))
    held = held_entries(out, output)
    if held and not (overwrite or resume):
        hint = "{resume} to keep what it finished, or {overwrite} to replace it" if output.resumable else \
            "{overwrite} to replace it"
        what = f"a run of {command}"
        if all(p.name.startswith(SCRATCH) for p in held):
            what = f"an unfinished run of {command} (stopped before it ended: only its scratch is there)"
        elif any(p.name.startswith(SCRATCH) for p in held):
            what = f"a run of {command} and the scratch of one that did not end"
        raise parameter_error(FileExistsError, f"{{out}} already holds {what} ({shown(held, out)}); "
                              f"pass {hint} (or choose another {{out}})", out=out, overwrite=True,
                              **({"resume": True} if output.resumable else {}))
    return held if overwrite else []


def claim_output(out: Path, command: str, *, output: Output | None = None, overwrite: bool = False,
                 resume: bool = False, quiet: bool = False) -> list[Path]:
    """Check `out` for `command` before any work (`check_output`); with `overwrite`, remove what a previous
    run of the command left in the folder, and say what.

    :param quiet: do not print what `overwrite` removed.
    :return: what was removed.
    """
    output = output or OUTPUTS[command]
    if not check_output(out, command, output=output, overwrite=overwrite, resume=resume):
        return []
    removed = remove_entries(Path(out), output)
    if not quiet:
        say_removed(Path(out), command, removed)
    return removed


def say_removed(out: Path, command: str, removed: list[Path]) -> None:
    print(f"overwriting {out}: removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} a previous "
          f"{command} wrote there: {shown(removed, out)}")
