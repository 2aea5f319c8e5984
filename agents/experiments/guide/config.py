"""What a `guide` YAML says: the rows to compare, the seeds, and one `GuideSetting` per training setting.

A setting's MLP is an `MLPSpec`, its training a `Regime`, the images of its on-the-spot ENN an
`ImageSpec`: the objects the env, the zoo and the ENN metadata hold. The YAML writes their fields flat
(``dataset``, ``hidden_sizes``, ``activation``; ``lr``, ``batch_size``, ``optimizer``, ...;
``resolution``, ``image_stats``) beside the comparison's own settings.

```yaml
seeds: [0, 1, 2]
rows: [bp, he, enn]
settings:
  paper: {dataset: digits, hidden_sizes: [32], lr: 0.05, batch_size: 32, epochs: 4,
          guidance_weight: [0.01, 0.1, 1.0], enn: {supervised_env_steps: 4000}}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from agents.config_files import find_config, load_yaml
from agents.enn.encoder import ENCODERS
from agents.enn.guidance import SCHEDULES
from agents.enn.network import pretrained_names
from agents.enn.zoo import TARGETS
from agents.experiments.guide.registry import GUIDE_ROWS, check_rows
from agents.experiments.guide.sources import ENN_SOURCES
from agents.seeds import guide_seeds
from gi_envs.datasets import load_dataset
from gi_envs.regime import Regime
from gi_envs.spec import ImageSpec, MLPSpec
from gi_envs.task import EnvConfig
from gi_envs.values import is_number

ZOO_EPISODE_STEPS = 20  # env steps per episode of a setting's training runs; one episode spans one whole run
EPISODE_ACTION_MODE = "perturb"  # the random half of those episodes perturbs SGD, as in the published guide tables
MLP_KEYS = ("dataset", "hidden_sizes", "activation")
REGIME_KEYS = tuple(f.name for f in fields(Regime))
IMAGE_KEYS = {"resolution": "resolution", "image_stats": "stats"}
SETTING_KEYS = ("epochs", "l1", "guidance_weight", "guidance_schedule", "guidance_every", "enn", "zoo_enn",
                "init_enn", "init_steps", "init_step_size", "lr_grid", "note")
CONFIG_KEYS = ("seeds", "rows", "lr_grid", "settings")
OLD_SETTINGS_KEY = "regimes"  # what configs written before the training core called their settings


def _grid(value: object) -> float | tuple[float, ...] | None:
    """A number >= 0, or a non-empty grid of them (as a tuple); None when it is neither."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(is_number(v, 0.0, low_open=False) for v in values):
        return None
    return tuple(float(v) for v in values) if isinstance(value, (list, tuple)) else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ENNSource:
    """Where one of a setting's ENNs comes from: one of `ENN_SOURCES` with its value, plus the encoder of
    the fitted ones and the target of the zoo ones."""

    kind: str
    value: str | int
    encoder: str = "image"
    target: str = "current"

    @classmethod
    def from_dict(cls, raw: object, where: str) -> ENNSource:
        """Read ``{path: FILE}``, ``{supervised_env_steps: N}``, ``{zoo: FILE}``, ``{zoo_runs: N}`` or
        ``{pretrained: NAME}``, the fitted ones with optional ``encoder`` and ``target``; a ValueError naming
        `where` otherwise."""
        expected = (", ".join(f"{{{k}: {v.value_name}}}" for k, v in ENN_SOURCES.items())
                    + ", optionally with encoder: " + " | ".join(ENCODERS) + " and target: " + " | ".join(TARGETS))
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}={raw!r} is not allowed; expected one of {expected}")
        kinds = [k for k in ENN_SOURCES if k in raw]
        options = {"encoder": tuple(ENCODERS), "target": TARGETS}
        options_ok = all(k in ENN_SOURCES or (k in options and raw[k] in options[k]) for k in raw)
        value = raw.get(kinds[0]) if len(kinds) == 1 else None
        value_ok = isinstance(value, str) if kinds and ENN_SOURCES[kinds[0]].value_type is str else \
            is_number(value, 1, low_open=False, integer=True)
        if len(kinds) != 1 or not options_ok or not value_ok:
            raise ValueError(f"{where}={dict(raw)!r} is not allowed; expected one of {expected}")
        if kinds[0] == "pretrained" and value not in pretrained_names():
            raise ValueError(f"{where}: no shipped ENN named {value!r}; the package ships {pretrained_names()}")
        return cls(kinds[0], value, raw.get("encoder", "image"), raw.get("target", "current"))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        if ENN_SOURCES[self.kind].made:
            return {self.kind: self.value}
        return {self.kind: self.value, "encoder": self.encoder, "target": self.target}


@dataclass(frozen=True)
class GuidanceSettings:
    """The ENN guidance term of the guided rows: its weight (or a grid searched on validation accuracy of the
    tuning seeds, extended past an end it lands on), schedule over training, and how often its gradient is
    recomputed (reused in between)."""

    weight: float | tuple[float, ...] = 1.0
    schedule: str = "constant"
    every: int = 1


@dataclass(frozen=True)
class AscentSettings:
    """The ENN-shaped init: `steps` steps of gradient ascent on the ENN, of `step_size` (or a grid searched
    like the guidance weight)."""

    steps: int = 50
    step_size: float | tuple[float, ...] = (0.03, 0.1, 0.3)


@dataclass(frozen=True)
class GuideSetting:
    """One training setting of the comparison; every row uses it unchanged.

    :param name: what the tables and file names call it.
    :param mlp: the MLPs every row trains (rows with ``init: he`` swap in He init).
    :param regime: how they are trained (the learning rate of lr-tuned rows is searched on `lr_grid`).
    :param epochs: passes over the training data.
    :param image: the images of an image ENN fitted on the spot (an ENN from a file brings its own).
    :param l1: the L1 row's coefficient.
    :param guidance: the guided rows' term.
    :param enn: the ENN of rows ``enn`` and ``enn+he`` (the paper's).
    :param zoo_enn: the ENN of rows ``zoo-enn`` and ``zoo-enn+he``.
    :param init_enn: the ENN the row ``enn-init`` ascends before training.
    :param ascent: the ENN-shaped init's steps and step size.
    :param lr_grid: the learning rates lr-tuned rows choose from, on validation accuracy of the tuning seeds.
    :param note: a line for the table's header.
    """

    name: str
    mlp: MLPSpec
    regime: Regime
    epochs: int
    image: ImageSpec = field(default_factory=ImageSpec)
    l1: float = 1e-4
    guidance: GuidanceSettings = field(default_factory=GuidanceSettings)
    enn: ENNSource = field(default_factory=lambda: ENNSource("supervised_env_steps", 4000))
    zoo_enn: ENNSource = field(default_factory=lambda: ENNSource("zoo_runs", 400, encoder="stats"))
    init_enn: ENNSource = field(default_factory=lambda: ENNSource("zoo_runs", 400, encoder="stats", target="final"))
    ascent: AscentSettings = field(default_factory=AscentSettings)
    lr_grid: tuple[float, ...] | None = None
    note: str = ""

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> GuideSetting:
        """A setting from a YAML mapping whose MLP, regime and image fields are written flat."""
        settings = dict(settings)
        known = set(MLP_KEYS) | set(REGIME_KEYS) | set(IMAGE_KEYS) | set(SETTING_KEYS)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"setting {name!r} has unknown key(s) {unknown}; expected some of {sorted(known)}")
        missing = [k for k in ("dataset", "hidden_sizes", "lr", "batch_size", "epochs") if k not in settings]
        if missing:
            raise ValueError(f"setting {name!r} lacks {missing}")

        def fail(key: str, expected: str) -> None:
            raise ValueError(f"setting {name!r}: {key}={settings[key]!r} is not allowed; expected {expected}")

        try:
            mlp = MLPSpec(**{k: settings[k] for k in MLP_KEYS if k in settings})
            regime = Regime(**{k: settings[k] for k in REGIME_KEYS if k in settings})
            image = ImageSpec(**{f: settings[k] for k, f in IMAGE_KEYS.items() if k in settings})
        except (TypeError, ValueError) as error:
            raise ValueError(f"setting {name!r}: {error}") from None
        grids = {}
        for key, default in (("guidance_weight", 1.0), ("init_step_size", AscentSettings.step_size)):
            grids[key] = _grid(settings.get(key, default))
            if grids[key] is None:
                fail(key, "a number >= 0 or a non-empty list of them (a grid searched on validation)")
        integers = {k: settings.get(k, d) for k, d in (("epochs", 1), ("guidance_every", 1), ("init_steps", 50))}
        for key, value in integers.items():
            if not is_number(value, 1, low_open=False, integer=True):
                fail(key, "a positive integer")
        if settings.get("guidance_schedule", "constant") not in SCHEDULES:
            fail("guidance_schedule", f"one of {list(SCHEDULES)}")
        l1 = settings.get("l1", cls.l1)
        if not is_number(l1, 0.0, low_open=False):
            fail("l1", "a number >= 0")
        lr_grid = settings.get("lr_grid")
        if lr_grid is not None and (not isinstance(lr_grid, list) or not lr_grid
                                    or not all(is_number(lr, 0.0) for lr in lr_grid)):
            fail("lr_grid", "a non-empty list of positive learning rates")
        defaults = cls(name, mlp, regime, 1)
        sources = {family: getattr(defaults, family) if family not in settings
                   else ENNSource.from_dict(settings[family], f"setting {name!r}: {family}")
                   for family in ("enn", "zoo_enn", "init_enn")}
        return cls(name=name, mlp=mlp, regime=regime, epochs=integers["epochs"], image=image, l1=float(l1),
                   guidance=GuidanceSettings(grids["guidance_weight"], settings.get("guidance_schedule", "constant"),
                                             integers["guidance_every"]),
                   ascent=AscentSettings(integers["init_steps"], grids["init_step_size"]),
                   lr_grid=None if lr_grid is None else tuple(float(lr) for lr in lr_grid),
                   note=str(settings.get("note", "")), **sources)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, for a run's record."""
        return {**asdict(self), "mlp": self.mlp.to_dict(), "image": self.image.to_dict()}

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Widths from input to output of the setting's MLPs."""
        return self.mlp.layer_sizes

    def steps_per_epoch(self) -> int:
        """Minibatches per epoch (the last partial batch dropped)."""
        return self.regime.steps_per_epoch(len(load_dataset(self.mlp.dataset).train))

    def with_lr(self, lr: float) -> GuideSetting:
        """The same setting at another learning rate."""
        return replace(self, regime=replace(self.regime, lr=lr))

    def episode_env_kwargs(self, image: ImageSpec | None = None) -> dict[str, Any]:
        """GradInstructor-v0 arguments whose episodes are whole training runs of this setting, seen as
        `image` (default the setting's): the snapshots an ENN of that image is fitted or judged on."""
        total = self.epochs * self.steps_per_epoch()
        config = EnvConfig.from_specs(self.mlp, image or self.image, **self.regime.to_dict(),
                                      steps_per_action=max(1, total // ZOO_EPISODE_STEPS),
                                      episode_length=ZOO_EPISODE_STEPS, eval_samples=0,
                                      action_mode=EPISODE_ACTION_MODE)
        return config.to_kwargs()


def load_guide_config(path: str | Path) -> tuple[list[GuideSetting], list[int], list[str]]:
    """Settings, seeds and rows of a `guide` YAML (see configs/paper_mnist.yaml); every setting is checked
    here, before anything trains. Configs that name their settings ``regimes`` (written before the
    training core) read the same."""
    path = find_config(path)
    raw = load_yaml(path.read_text(), str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a YAML mapping with {', '.join(CONFIG_KEYS)}")
    if OLD_SETTINGS_KEY in raw and "settings" not in raw:
        raw["settings"] = raw.pop(OLD_SETTINGS_KEY)
    unknown = set(raw) - set(CONFIG_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected {', '.join(CONFIG_KEYS)}")
    rows = check_rows(list(raw.get("rows", GUIDE_ROWS)), str(path))
    seeds = guide_seeds(list(raw.get("seeds", range(10))), f"{path}: seeds")
    settings = []
    for name, values in (raw.get("settings") or {}).items():
        if not isinstance(values, Mapping):
            raise ValueError(f"{path}: setting {name!r} must be a mapping of its fields")
        try:  # a setting's own grid wins over the config's
            settings.append(GuideSetting.from_settings(name, {"lr_grid": raw.get("lr_grid"), **values}))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None
    if not settings:
        raise ValueError(f"{path}: no settings")
    return settings, seeds, rows
