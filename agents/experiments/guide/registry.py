"""The guide's rows, one object each in one table: what a row varies, and nothing else to edit to add one.

Every row trains the MLPs of a setting with the same seeds, epochs and evaluation; a `GuideRow` says
what it changes: the init, an L1 term, one of the setting's ENNs (as a guidance term or as an
ENN-shaped init), a literature trainer instead of the training core, a tuned learning rate.
`register_row` adds one; the command line's help, the config checks and the run read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.errors import MissingDependency
from agents.experiments.baselines import TRAINERS, check_trainer
from gi_envs.batched_mlp import INITS

ENN_FAMILIES = ("enn", "zoo_enn", "init_enn")  # a setting's ENN sources (`GuideSetting` fields), in table order
ENN_USES = ("guidance", "init")


@dataclass(frozen=True)
class GuideRow:
    """One row of the comparison.

    :param name: what configs and the command line call it.
    :param label: what the table calls it.
    :param init: the MLPs' init (``default``: PyTorch's; ``he``).
    :param l1: add the setting's `l1` times sum |W| to the loss.
    :param enn: which of the setting's ENNs the row uses (``enn``, ``zoo_enn``, ``init_enn``), if any.
    :param enn_use: ``guidance`` (the term -w * ENN(W) at every step) or ``init`` (gradient ascent on the
        ENN before training).
    :param tunes_enn: the row on whose validation accuracy the ENN's setting (guidance weight or ascent
        step size) is chosen; one per ENN family.
    :param trainer: a literature trainer (``rmsgd``, ``lfp``) instead of the training core.
    :param tune_lr: choose the learning rate from the setting's grid on validation accuracy.
    :param plot_norms: draw its weight norms beside the other rows'.
    """

    name: str
    label: str
    init: str = "default"
    l1: bool = False
    enn: str | None = None
    enn_use: str = "guidance"
    tunes_enn: bool = False
    trainer: str | None = None
    tune_lr: bool = False
    plot_norms: bool = False

    def __post_init__(self) -> None:
        checks = [("init", self.init, INITS), ("enn", self.enn, (None, *ENN_FAMILIES)),
                  ("enn_use", self.enn_use, ENN_USES), ("trainer", self.trainer, (None, *TRAINERS))]
        for field, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"row {self.name!r}: {field}={value!r} is not allowed; expected one of "
                                 f"{list(allowed)}")
        if self.trainer and (self.enn or self.l1):
            raise ValueError(f"row {self.name!r}: a literature trainer ({self.trainer}) takes no ENN or L1 term")


GUIDE_ROWS: dict[str, GuideRow] = {}


def register_row(row: GuideRow) -> GuideRow:
    """Add `row` to the table (replacing a row of the same name)."""
    GUIDE_ROWS[row.name] = row
    return row


for _row in (
    GuideRow("bp", "conventional BP", plot_norms=True),
    GuideRow("l1", "L1 regularisation", l1=True),
    GuideRow("he", "He initialisation", init="he", plot_norms=True),
    GuideRow("enn", "ENN-guided", enn="enn", tunes_enn=True, plot_norms=True),
    GuideRow("enn+he", "ENN-guided + He", init="he", enn="enn"),
    GuideRow("zoo-enn", "zoo ENN-guided", enn="zoo_enn", tunes_enn=True, plot_norms=True),
    GuideRow("zoo-enn+he", "zoo ENN-guided + He", init="he", enn="zoo_enn"),
    GuideRow("enn-init", "ENN-shaped init, then BP", enn="init_enn", enn_use="init", tunes_enn=True, plot_norms=True),
    GuideRow("bp-tuned", "BP, lr tuned", tune_lr=True),
    GuideRow("rmsgd", "RMSGD, lr tuned", trainer="rmsgd", tune_lr=True),
    GuideRow("lfp", "LFP, lr tuned", trainer="lfp", tune_lr=True),
):
    register_row(_row)


def check_rows(rows: list[str], where: str = "rows") -> list[str]:
    """`rows` unchanged, or a clear error naming the unknown rows and the known ones."""
    unknown = [r for r in rows if r not in GUIDE_ROWS]
    if unknown:
        raise ValueError(f"{where}: unknown row/trainer(s) {unknown}; known: {list(GUIDE_ROWS)}")
    return rows


def tuning_row(family: str) -> GuideRow:
    """The row whose validation accuracy chooses the setting of ENN `family` (its `tunes_enn` row, else the
    first row that uses it)."""
    users = [r for r in GUIDE_ROWS.values() if r.enn == family]
    return next((r for r in users if r.tunes_enn), users[0])


def enn_families(rows: list[str]) -> list[str]:
    """The ENN families `rows` use, in row order."""
    return list(dict.fromkeys(GUIDE_ROWS[r].enn for r in rows if GUIDE_ROWS[r].enn))


def runnable_rows(rows: list[str]) -> tuple[list[str], list[str]]:
    """`rows` without those whose literature trainer's packages are missing or broken, and one line on each
    dropped."""
    kept, skipped = [], []
    for row in rows:
        trainer = GUIDE_ROWS[row].trainer
        try:
            if trainer:
                check_trainer(trainer)
            kept.append(row)
        except MissingDependency as error:
            skipped.append(f"skipping the row {row!r}: {error}")
    return kept, skipped
