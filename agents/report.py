"""Tables and figures people read: Markdown/console tables, CSV beside every PNG."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from gi_envs.files import replacing

REFERENCE_COLORS = ("black", "gray", "tab:red", "tab:purple", "tab:brown", "tab:olive")  # dashed lines


def mean_std(values: Sequence[float] | np.ndarray, scale: float = 100.0, digits: int = 1) -> str:
    """'mean ± std' of `values` times `scale` (percent by default)."""
    arr = np.asarray(values, dtype=float) * scale
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1) if arr.size > 1 else 0.0:.{digits}f}"


def correlation_text(value: float) -> str:
    """A rank correlation for a table: three decimals, or ``undefined`` where it is NaN (too few runs, or all
    predictions equal), never a 0 that looks measured."""
    return "undefined" if np.isnan(value) else f"{value:.3f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: never a half-written file."""
    with replacing(path) as tmp:
        tmp.write_text(text, newline="")


def write_curves(
    path_stem: Path, curves: Mapping[str, np.ndarray], ylabel: str, xlabel: str = "env step",
    x: np.ndarray | None = None, references: Mapping[str, float] | None = None,
) -> list[Path]:
    """Curves as `<stem>.csv` (every run) and `<stem>.png` (mean ± std band per name).

    :param curves: name -> (runs, points) array.
    :param x: the shared x values of the points (default 0, 1, 2, ...).
    :param references: name -> value, drawn as dashed horizontal lines (not written to the CSV).
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "run", xlabel, ylabel])
    for name, arr in curves.items():
        xs = np.arange(arr.shape[1]) if x is None else x
        for run, row in enumerate(arr):
            for xv, value in zip(xs, row):
                writer.writerow([name, run, f"{xv:g}", f"{value:.6f}"])
    csv_path = path_stem.with_suffix(".csv")
    atomic_write_text(csv_path, buffer.getvalue())

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, arr in curves.items():
        xs = np.arange(arr.shape[1]) if x is None else x
        mean, std = arr.mean(0), arr.std(0)
        ax.plot(xs, mean, label=f"{name} (n={len(arr)})")
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    for (name, value), color in zip((references or {}).items(), REFERENCE_COLORS):
        ax.axhline(value, linestyle="--", linewidth=1, color=color, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png_path = save_figure(fig, path_stem.with_suffix(".png"))
    return [csv_path, png_path]


def write_bars(path_stem: Path, groups: Mapping[str, Mapping[str, np.ndarray]], ylabel: str) -> Path:
    """Grouped bars (mean ± std of each name's values, one group per key) as `<stem>.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, (group, bars) in zip(axes[0], groups.items()):
        names = list(bars)
        means = [float(np.mean(bars[n])) for n in names]
        stds = [float(np.std(bars[n], ddof=1)) if len(bars[n]) > 1 else 0.0 for n in names]
        ax.bar(range(len(names)), means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        low = min(m - s for m, s in zip(means, stds))
        ax.set_ylim(max(0.0, low - 0.02), min(1.0, max(m + s for m, s in zip(means, stds)) + 0.01))
        ax.set_title(group)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path_stem.with_suffix(".png"))


def write_scatter(png_path: Path, panels: Mapping[str, tuple[np.ndarray, np.ndarray]], xlabel: str,
                  ylabel: str) -> Path:
    """One scatter panel per name of (x, y) points (four to a row), with the y = x diagonal, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, (x, y)) in zip(axes.flat, panels.items()):
        ax.scatter(x, y, s=6, alpha=0.4)
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="grey", lw=1, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, png_path)


def save_figure(fig, png_path: Path) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    try:
        with replacing(png_path) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return png_path


def welch_p(a: pd.Series, b: pd.Series) -> float:
    """Two-sided p-value of Welch's t-test; nan with fewer than two samples or no variance."""
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
