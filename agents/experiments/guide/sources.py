"""Where a guide setting's ENNs come from: one `ENNSourceKind` each in `ENN_SOURCES`, with its builder.

A setting names a source as ``{KIND: VALUE}`` (`agents.experiments.guide.config.ENNSource`): an ENN file, a
shipped ENN, or an ENN fitted here on the setting's own training runs or on a zoo. Each entry says what its
value is (a file, a count, a name), whether the ENN exists already (loaded, so its encoder and target are its
own) and how to build it. Zoos trained on the spot are shared by a setting's ENNs within one guide run
(`zoo_cache`), and dropped when it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agents.enn.encoder import FitSettings
from agents.enn.fit import fit_zoo_enn
from agents.enn.network import ENN
from agents.enn.supervised import episode_snapshots, fit_supervised_enn
from agents.enn.zoo import Zoo, ZooSpec, train_zoo

# named, not imported: `agents.experiments.guide.config` reads this registry to parse its sources
GuideSetting = Any  # a `agents.experiments.guide.config.GuideSetting`
ENNSource = Any  # a `agents.experiments.guide.config.ENNSource`

_ZOOS: dict[tuple, Zoo] | None = None  # zoos trained on the spot during one guide run (`zoo_cache`)


@contextmanager
def zoo_cache() -> Iterator[None]:
    """Within it, a zoo trained on the spot is trained once and shared by the ENNs that name it; after it, gone."""
    global _ZOOS
    outer, _ZOOS = _ZOOS, ({} if _ZOOS is None else _ZOOS)
    try:
        yield
    finally:
        _ZOOS = outer


def setting_zoo(setting: GuideSetting, source: ENNSource, seed: int = 0) -> Zoo:
    """The zoo an ENN source names: a file (for the setting's MLP), or `zoo_runs` runs of it trained here."""
    if source.kind == "zoo":
        zoo = Zoo.load(source.value)  # type: ignore[arg-type]
        if zoo.spec.mlp.layer_shapes != setting.mlp.layer_shapes or zoo.spec.mlp.dataset != setting.mlp.dataset:
            raise ValueError(f"setting {setting.name!r}: zoo {source.value} holds {zoo.spec.mlp.dataset} "
                             f"{'-'.join(map(str, zoo.spec.mlp.layer_sizes))} MLPs, the setting trains "
                             f"{setting.mlp.dataset} {'-'.join(map(str, setting.layer_sizes))} ones")
        return zoo
    key = (setting.mlp, int(source.value), seed)
    if _ZOOS is not None and key in _ZOOS:
        return _ZOOS[key]
    zoo = train_zoo(ZooSpec(mlp=setting.mlp, runs=key[1], seed=seed), progress=False)
    if _ZOOS is not None:
        _ZOOS[key] = zoo
    return zoo


def _enn_from_file(setting: GuideSetting, source: ENNSource, seed: int) -> ENN:
    return ENN.load(source.value)  # type: ignore[arg-type]


def _shipped_enn(setting: GuideSetting, source: ENNSource, seed: int) -> ENN:
    return ENN.pretrained(source.value)  # type: ignore[arg-type]


def _enn_on_episodes(setting: GuideSetting, source: ENNSource, seed: int) -> ENN:
    env_kwargs = setting.episode_env_kwargs()
    snapshots = episode_snapshots(env_kwargs, int(source.value), seed, keep_weights=source.encoder != "image")
    return fit_supervised_enn(env_kwargs, snapshots, FitSettings(epochs=30, seed=seed), encoder=source.encoder)


def _enn_on_zoo(setting: GuideSetting, source: ENNSource, seed: int) -> ENN:
    return fit_zoo_enn(setting_zoo(setting, source, seed), source.encoder, source.target,
                       setting.image if source.encoder == "image" else None, seed=seed, progress=False,
                       zoo_path=source.value if source.kind == "zoo" else None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ENNSourceKind:
    """One place an ENN comes from.

    :param name: the key a setting writes (``{name: value}``).
    :param value_type: what its value is: `str` (a file or a name) or `int` (a count, at least 1).
    :param value_name: the value in messages (``FILE``, ``N``, ``NAME``).
    :param help: what it means, for messages and docs.
    :param build: the ENN, from the setting, the source and a seed.
    :param made: the ENN exists already (loaded, never fitted), so its encoder and target are its own.
    """

    name: str
    value_type: type
    value_name: str
    help: str
    build: Callable[[GuideSetting, ENNSource, int], ENN]
    made: bool = False


ENN_SOURCES: dict[str, ENNSourceKind] = {kind.name: kind for kind in (
    ENNSourceKind("path", str, "FILE", "an ENN file of any encoder", _enn_from_file, made=True),
    ENNSourceKind("supervised_env_steps", int, "N", "fitted on N env steps of this setting's training runs",
                  _enn_on_episodes),
    ENNSourceKind("zoo", str, "FILE", "fitted on a zoo file", _enn_on_zoo),
    ENNSourceKind("zoo_runs", int, "N", "fitted on a zoo of N runs of this setting's MLP trained on the spot",
                  _enn_on_zoo),
    ENNSourceKind("pretrained", str, "NAME", "an ENN the package ships, `ENN.pretrained`", _shipped_enn, made=True),
)}


def build_enn(setting: GuideSetting, source: ENNSource, seed: int = 0) -> ENN:
    """An ENN from one of a setting's sources (`GuideSetting.enn`, `zoo_enn`, `init_enn`)."""
    return ENN_SOURCES[source.kind].build(setting, source, seed)
