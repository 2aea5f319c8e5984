"""What ``render_mode="rgb_array"`` shows: the MLP's weight image beside its validation accuracy so far.

One RGB frame per call (`render_frame`), as Gymnasium's `RecordVideo` and SB3's `VecVideoRecorder` take them:
on the left each channel of the observed weight image (one row of blocks per channel, first weight matrix
on top), on the right the episode's validation accuracy after every env step. Drawn by matplotlib's Agg
canvas, without pyplot, so rendering touches no global figure state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RENDER_MODES = ["rgb_array"]
FRAME_INCHES, FRAME_DPI = (6.4, 3.2), 75  # 480 x 240 pixels
PIXEL_RANGE = 3.0  # image pixels shown from -3 to 3 (at init they have std ~0.6)


def check_render_mode(render_mode: object) -> str | None:
    """`render_mode` as given, or a ValueError naming it and what is allowed."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode={render_mode!r} is not allowed; expected None or one of {RENDER_MODES}")
    return render_mode  # type: ignore[return-value]


def shown_image(observation: np.ndarray | dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """What a frame shows on its left for one sub-env's observation: the weight image, or a shape-free state
    vector as one row of pixels; and its title."""
    if isinstance(observation, dict):
        return observation["image"], "weight image"
    if observation.ndim == 1:
        return observation[None, None, :], "observation (shape-free state)"
    return observation, "weight image"


def render_frame(image: np.ndarray, accuracies: Sequence[float], episode_length: int,
                 title: str = "weight image") -> np.ndarray:
    """(H, W, 3) uint8: the (C, h, w) weight image's channels (or another image `title` names) and the accuracy
    curve of `accuracies` (one value at reset, then one per step) over an episode of `episode_length` steps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FRAME_INCHES, dpi=FRAME_DPI)
    canvas = FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    channels = np.nan_to_num(np.asarray(image, dtype=np.float32))
    gap = np.full((channels.shape[0], 1, channels.shape[2]), np.nan, dtype=np.float32)
    stacked = np.concatenate([channels, gap], axis=1).reshape(-1, channels.shape[2])
    left.imshow(stacked, cmap="coolwarm", vmin=-PIXEL_RANGE, vmax=PIXEL_RANGE, aspect="auto", interpolation="nearest")
    left.set_title(title, fontsize=9)
    left.set_axis_off()
    right.plot(range(len(accuracies)), accuracies, marker=".", color="tab:blue")
    right.set_xlim(0, max(1, episode_length))
    right.set_ylim(0.0, 1.0)
    right.set_xlabel("env step", fontsize=8)
    right.set_title("validation accuracy", fontsize=9)
    right.tick_params(labelsize=7)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
