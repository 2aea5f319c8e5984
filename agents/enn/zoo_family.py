"""A shape-family zoo: one data set's MLPs of many hidden widths and depths, each shape a zoo of its own.

An ENN for any width and depth (`agents.enn.any_shape`) must be fitted on MLPs of many shapes. Runs
of one shape train together in the training core, so a family is a set of ordinary zoos (`Zoo`), one
per member shape, each with runs of regimes drawn as in any zoo and seeds from the family's own block
(`agents.seeds.zoo_family_run_seeds`): no member shares a run with another member or with a plain zoo.
Each member's fit and held-out runs are split as in a plain zoo, so a family's held-out set is the
union of its members'.

`SHAPE_FAMILY` is the family the shipped any-shape ENNs were fitted on: widths 16 to 256, one to three
hidden layers. `UNSEEN_SHAPES` lie inside that range but outside the family, for scoring an ENN on
shapes it never saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.enn.zoo import DEFAULT_ZOO_DISTRIBUTION, Zoo, ZooSpec, train_zoo
from gi_envs.regime import REGIME_DISTRIBUTIONS, RegimeDistribution
from gi_envs.spec import MLPSpec, positive_ints

SHAPE_FAMILY: tuple[tuple[int, ...], ...] = ((16,), (32,), (100,), (256,), (32, 32), (128, 64), (64, 64, 64),
                                             (256, 128, 32))
UNSEEN_SHAPES: tuple[tuple[int, ...], ...] = ((48,), (200, 50), (128, 32, 16), (24, 24, 24))
WIDTH_RANGE = (16, 256)
DEPTH_RANGE = (1, 3)


@dataclass(frozen=True)
class ZooFamilySpec:
    """What a shape-family zoo holds: `runs` runs of each of `shapes`, of one data set.

    :param dataset: the data set every member learns.
    :param shapes: the members' hidden widths (each a tuple; distinct).
    :param runs: runs per member.
    :param steps: minibatch steps per run.
    :param activation: every member's hidden activation.
    :param distribution: where each run's regime comes from (as `ZooSpec.distribution`).
    :param seed: the family's seed (`agents.seeds.zoo_family_run_seeds`) and each member's split.
    """

    dataset: str = "digits"
    shapes: tuple[tuple[int, ...], ...] = SHAPE_FAMILY
    runs: int = 200
    steps: int = 1000
    activation: str = "relu"
    distribution: RegimeDistribution = field(default_factory=lambda: REGIME_DISTRIBUTIONS[DEFAULT_ZOO_DISTRIBUTION])
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.shapes, (tuple, list)) or not self.shapes:
            raise ValueError(f"shapes={self.shapes!r} is not allowed; expected a non-empty sequence of hidden widths")
        shapes = tuple(positive_ints("shapes entry", s) for s in self.shapes)
        if len(set(shapes)) != len(shapes):
            raise ValueError(f"shapes={list(shapes)} is not allowed; expected distinct shapes")
        object.__setattr__(self, "shapes", shapes)
        for member in self.members():  # a bad data set, activation, run count or seed fails here, naming it
            member.run_seeds()

    def members(self) -> list[ZooSpec]:
        """One `ZooSpec` per shape, in order."""
        return [ZooSpec(mlp=MLPSpec(self.dataset, shape, self.activation), runs=self.runs, steps=self.steps,
                        distribution=self.distribution, seed=self.seed, member=k)
                for k, shape in enumerate(self.shapes)]


def member_file(folder: str | os.PathLike, spec: ZooSpec) -> Path:
    """Where a family member's zoo lives in the family's folder: ``DATASET-SIZES.npz``."""
    return Path(folder) / f"{spec.mlp.dataset}-{'-'.join(map(str, spec.mlp.layer_sizes))}.npz"


def train_zoo_family(spec: ZooFamilySpec, folder: str | os.PathLike | None = None, data_dir: str | None = None,
                     progress: bool = True) -> list[Zoo]:
    """Every member's zoo, trained in turn. With `folder`, each is saved there as it finishes, and a member whose
    file already holds a zoo of the same spec is read instead of trained (a killed job resumes)."""
    return [read_or_train(member, lambda m: train_zoo(m, data_dir=data_dir, progress=progress), folder)
            for member in spec.members()]


def read_or_train(member: ZooSpec, train: Callable[[ZooSpec], Zoo], folder: str | os.PathLike | None) -> Zoo:
    """A family member's zoo: read from `folder` when its file holds this very member (a resumed job), else
    `train(member)`, saved there as soon as it is done."""
    path = member_file(folder, member) if folder is not None else None
    if path is not None and path.is_file():
        zoo = Zoo.load(path)
        if zoo.spec != member:
            raise ValueError(f"{path} holds a zoo of another spec than this family's member {member.member}; "
                             "move it away or choose another folder")
        return zoo
    zoo = train(member)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        zoo.save(path)
    return zoo


def shape_label(hidden_sizes: Sequence[int]) -> str:
    """``64-32`` for hidden widths (64, 32)."""
    return "-".join(map(str, hidden_sizes))


def load_zoos(paths: Sequence[str | os.PathLike]) -> list[Zoo]:
    """The zoos of `paths`: each a zoo file, or a folder whose ``*.npz`` files are zoos (a shape-family zoo, read in
    the family's order, so that a fit on the folder is the fit on `train_zoo_family`'s list)."""
    zoos = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.glob("*.npz"))
            if not files:
                raise FileNotFoundError(f"no zoo files (*.npz) in the folder {path}")
            members = [Zoo.load(f) for f in files]  # a family's members in its order, as `train_zoo_family` gives them
            zoos += sorted(members, key=lambda z: (z.spec.member is None, z.spec.member or 0, str(z.spec.mlp)))
        else:
            zoos.append(Zoo.load(path))
    return zoos
