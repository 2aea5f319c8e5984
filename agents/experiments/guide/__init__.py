"""The paper's comparison (`grad-instructor guide`): BP, L1, He init, ENN guidance and the baselines.

`config` reads a guide YAML into regimes, `rows` trains and tunes one row, `run` drives a whole
config into tables, checkpoints and a W&B run.
"""

from agents.experiments.guide.config import LR_TUNED_ROWS, ROW_NAMES, ROWS, Regime, check_rows, load_guide_config
from agents.experiments.guide.rows import RowResult, build_enn, train_row, tuned_enn_setting, tuned_lr
from agents.experiments.guide.run import run_guide

__all__ = [
    "LR_TUNED_ROWS",
    "ROWS",
    "ROW_NAMES",
    "Regime",
    "RowResult",
    "build_enn",
    "check_rows",
    "load_guide_config",
    "run_guide",
    "train_row",
    "tuned_enn_setting",
    "tuned_lr",
]
