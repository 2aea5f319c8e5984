"""What a `guide` YAML says: the rows to compare, the seeds, and one `Regime` per training setting.

A regime's MLP is an `MLPSpec` and the images of its on-the-spot ENN an `ImageSpec`, the same
objects the env and the ENN metadata hold; the YAML writes their fields flat (``dataset``,
``hidden_sizes``, ``activation``; ``resolution``, ``image_stats``) beside the training settings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.config_files import find_config, load_yaml
from agents.enn.encoder import ENCODER_TYPES
from agents.enn.guidance import SCHEDULES
from agents.enn.zoo import TARGETS
from agents.experiments.baselines import TRAINERS
from gi_envs.datasets import load_dataset
from gi_envs.spec import ImageSpec, MLPSpec
from gi_envs.task import EnvConfig

ROWS = ("bp", "l1", "he", "enn", "enn+he", "zoo-enn", "zoo-enn+he", "enn-init", "bp-tuned", "rmsgd", "lfp")
ROW_NAMES = {"bp": "conventional BP", "l1": "L1 regularisation", "he": "He initialisation",
             "enn": "ENN-guided", "enn+he": "ENN-guided + He", "zoo-enn": "zoo ENN-guided",
             "zoo-enn+he": "zoo ENN-guided + He", "enn-init": "ENN-shaped init, then BP",
             "bp-tuned": "BP, lr tuned", "rmsgd": "RMSGD, lr tuned", "lfp": "LFP, lr tuned"}
# which of a regime's ENNs each ENN row uses (the regime field that says where it comes from)
ENN_OF_ROW = {"enn": "enn", "enn+he": "enn", "zoo-enn": "zoo_enn", "zoo-enn+he": "zoo_enn", "enn-init": "init_enn"}
TUNED_ON_ROW = {"enn": "enn", "zoo_enn": "zoo-enn", "init_enn": "enn-init"}  # each ENN's setting is tuned on this row
ENN_SOURCES = ("path", "supervised_env_steps", "zoo", "zoo_runs")  # exactly one per ENN
ENN_OPTIONS = {"encoder": ENCODER_TYPES, "target": TARGETS}
LR_TUNED_ROWS = ("bp-tuned", *TRAINERS)  # rows whose learning rate is searched on `lr_grid`
ZOO_EPISODE_STEPS = 20  # env steps per zoo episode; one episode spans one whole training run
ZOO_ACTION_MODE = "perturb"  # the random half of a zoo perturbs SGD, as in the published guide tables
MLP_KEYS = ("dataset", "hidden_sizes", "activation")
IMAGE_KEYS = {"resolution": "resolution", "image_stats": "stats"}
CONFIG_KEYS = ("seeds", "rows", "lr_grid", "regimes")


@dataclass
class Regime:
    """One training setting of the comparison; every row uses it unchanged.

    :param mlp: the MLPs every row trains (rows ending in ``+he`` swap in He init).
    :param image: the images of an image ENN fitted on the spot (an ENN from a file brings its own).
    :param enn: the ENN of rows ``enn`` and ``enn+he`` (the paper's): one source, ``{path: FILE}``
        (any encoder), ``{supervised_env_steps: N}`` (fitted on N env steps of this regime),
        ``{zoo: FILE}`` (fitted on a zoo file) or ``{zoo_runs: N}`` (a zoo of N runs of this
        regime's MLP trained on the spot), plus ``encoder: image | stats`` for the fitted ones and
        ``target: current | final`` for the zoo ones.
    :param zoo_enn: the ENN of rows ``zoo-enn`` and ``zoo-enn+he``, the same way.
    :param init_enn: the ENN row ``enn-init`` ascends before training, the same way.
    :param guidance_weight: a number, or a grid searched on validation accuracy of the tuning
        seeds (extended past an end it lands on, up to twice; the table says if it still does).
    :param init_steps: ascent steps of the ENN-shaped init.
    :param init_step_size: its step size, or a grid searched like the guidance weight.
    """

    name: str
    mlp: MLPSpec
    lr: float
    batch_size: int
    epochs: int
    image: ImageSpec = field(default_factory=ImageSpec)
    l1: float = 1e-4
    guidance_weight: float | list[float] = 1.0
    guidance_schedule: str = "constant"
    guidance_every: int = 1
    enn: dict[str, Any] = field(default_factory=lambda: {"supervised_env_steps": 4000})
    zoo_enn: dict[str, Any] = field(default_factory=lambda: {"zoo_runs": 400, "encoder": "stats"})
    init_enn: dict[str, Any] = field(default_factory=lambda: {"zoo_runs": 400, "encoder": "stats",
                                                                "target": "final"})
    init_steps: int = 50
    init_step_size: float | list[float] = field(default_factory=lambda: [0.03, 0.1, 0.3])
    lr_grid: list[float] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        def fail(key: str, expected: str) -> None:
            raise ValueError(f"regime {self.name!r}: {key}={getattr(self, key)!r} is not allowed; expected {expected}")

        def is_number(value: object, low: float, low_open: bool = True, integer: bool = False) -> bool:
            kinds = (int,) if integer else (int, float)
            return (isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
                    and (value > low if low_open else value >= low))

        if self.guidance_schedule not in SCHEDULES:
            fail("guidance_schedule", f"one of {list(SCHEDULES)}")
        if not is_number(self.lr, 0.0):
            fail("lr", "a positive number")
        for key in ("batch_size", "epochs", "guidance_every", "init_steps"):
            if not is_number(getattr(self, key), 1, low_open=False, integer=True):
                fail(key, "a positive integer")
        if not is_number(self.l1, 0.0, low_open=False):
            fail("l1", "a number >= 0")
        for key in ("guidance_weight", "init_step_size"):
            value = getattr(self, key)
            values = value if isinstance(value, list) else [value]
            if not values or not all(is_number(v, 0.0, low_open=False) for v in values):
                fail(key, "a number >= 0 or a non-empty list of them (a grid searched on validation)")
        if self.lr_grid is not None and (not isinstance(self.lr_grid, list) or not self.lr_grid
                                         or not all(is_number(lr, 0.0) for lr in self.lr_grid)):
            fail("lr_grid", "a non-empty list of positive learning rates")
        for key in ("enn", "zoo_enn", "init_enn"):
            source = getattr(self, key)
            sources = [k for k in ENN_SOURCES if isinstance(source, dict) and k in source]
            options_ok = isinstance(source, dict) and all(
                k in ENN_SOURCES or source[k] in ENN_OPTIONS.get(k, ()) for k in source)
            value = source.get(sources[0]) if len(sources) == 1 else None
            value_ok = isinstance(value, str) if sources and sources[0] in ("path", "zoo") else \
                is_number(value, 1, low_open=False, integer=True)
            if len(sources) != 1 or not options_ok or not value_ok:
                fail(key, "one of {path: FILE}, {supervised_env_steps: N}, {zoo: FILE}, {zoo_runs: N}, optionally "
                     "with encoder: image | stats and target: current | final")

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> Regime:
        """A regime from a YAML mapping whose MLP and image fields are written flat."""
        settings = dict(settings)
        known = set(MLP_KEYS) | set(IMAGE_KEYS) | {f.name for f in dataclasses.fields(cls)} - {"name", "mlp", "image"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"regime {name!r} has unknown key(s) {unknown}; expected some of {sorted(known)}")
        missing = [k for k in ("dataset", "hidden_sizes", "lr", "batch_size", "epochs") if k not in settings]
        if missing:
            raise ValueError(f"regime {name!r} lacks {missing}")
        try:
            mlp = MLPSpec(**{k: settings.pop(k) for k in MLP_KEYS if k in settings})
            image = ImageSpec(**{field_name: settings.pop(key) for key, field_name in IMAGE_KEYS.items()
                                 if key in settings})
        except ValueError as error:
            raise ValueError(f"regime {name!r}: {error}") from None
        return cls(name=name, mlp=mlp, image=image, **settings)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Widths from input to output of the regime's MLPs."""
        return self.mlp.layer_sizes

    def steps_per_epoch(self) -> int:
        """Minibatches per epoch (the last partial batch dropped)."""
        return len(load_dataset(self.mlp.dataset).train) // self.batch_size

    def zoo_env_kwargs(self, image: ImageSpec | None = None) -> dict[str, Any]:
        """GradInstructor-v0 arguments whose episodes are whole training runs of this regime, seen as
        `image` (default the regime's): the snapshots an ENN of that image is fitted or judged on."""
        total = self.epochs * self.steps_per_epoch()
        config = EnvConfig.from_specs(self.mlp, image or self.image, lr=self.lr, batch_size=self.batch_size,
                                      steps_per_action=max(1, total // ZOO_EPISODE_STEPS),
                                      episode_length=ZOO_EPISODE_STEPS, eval_samples=0,
                                      action_mode=ZOO_ACTION_MODE)
        return config.to_kwargs()


def check_rows(rows: list[str], where: str = "rows") -> list[str]:
    """`rows` unchanged, or a clear error naming the unknown rows (trainers included) and the known ones."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"{where}: unknown row/trainer(s) {unknown}; known: {list(ROWS)}")
    return rows


def load_guide_config(path: str | Path) -> tuple[list[Regime], list[int], list[str]]:
    """Regimes, seeds and rows of a `guide` YAML (see configs/paper_mnist.yaml); every regime is
    checked here, before anything trains."""
    path = find_config(path)
    raw = load_yaml(path.read_text(), str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a YAML mapping with {', '.join(CONFIG_KEYS)}")
    unknown = set(raw) - set(CONFIG_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected {', '.join(CONFIG_KEYS)}")
    rows = check_rows(list(raw.get("rows", ROWS)), str(path))
    seeds = list(raw.get("seeds", range(10)))
    regimes = []
    for name, settings in (raw.get("regimes") or {}).items():
        try:
            regimes.append(Regime.from_settings(name, {"lr_grid": raw.get("lr_grid"), **settings}))  # its own grid wins
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None
    if not regimes:
        raise ValueError(f"{path}: no regimes")
    return regimes, seeds, rows
