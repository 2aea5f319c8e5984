"""The paper's comparison (`grad-instructor guide`): BP, L1, He init, ENN guidance and the baselines.

`registry` holds the rows (one `GuideRow` each), `config` reads a guide YAML into settings, `rows`
trains and tunes one row, `run` drives a whole config into tables, checkpoints and a W&B run.
"""

from agents.experiments.guide.config import ENNSource, GuideSetting, load_guide_config
from agents.experiments.guide.registry import GUIDE_ROWS, GuideRow, check_rows, register_row
from agents.experiments.guide.rows import RowResult, train_row, tuned_enn_setting, tuned_lr
from agents.experiments.guide.run import OUTPUTS, enn_path, mlps_path, run_guide
from agents.experiments.guide.sources import build_enn

__all__ = [
    "GUIDE_ROWS",
    "OUTPUTS",
    "ENNSource",
    "GuideRow",
    "GuideSetting",
    "RowResult",
    "build_enn",
    "check_rows",
    "enn_path",
    "load_guide_config",
    "mlps_path",
    "register_row",
    "run_guide",
    "train_row",
    "tuned_enn_setting",
    "tuned_lr",
]
