"""Classification data sets as in-memory tensors with fixed train / validation / test splits.

`digits` (scikit-learn's `load_digits`, 8x8 images) ships inside scikit-learn and is the
default. `mnist` and `fashion-mnist` are read through torchvision's dataset classes from a
data root: the `data_dir` argument, else the `GI_DATA_DIR` environment variable, else a user
cache directory where torchvision may download them when the machine is online.

The validation split is carved out of the training set with a fixed seed; rewards and model
selection use it. The test split is only ever reported.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gi_envs.files import first_sentence

DATASETS = ("digits", "mnist", "fashion-mnist")
DATASET_DIMS = {"digits": (64, 10), "mnist": (784, 10), "fashion-mnist": (784, 10)}  # (features, classes)
DATA_DIR_ENV = "GI_DATA_DIR"
DEFAULT_VAL_FRACTION = 0.2
DIGITS_TEST_FRACTION = 0.2  # load_digits has no official test split; we carve one with split_seed


@dataclass(frozen=True)
class Split:
    """Inputs `x` (n, n_features) float32, normalised; labels `y` (n,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """One data set, split three ways, with the train split's normalisation applied to all."""

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]


def default_cache_dir() -> Path:
    """Where torchvision may download data sets when neither `data_dir` nor GI_DATA_DIR is set."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "grad-instructor" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The data root to read, and whether torchvision may download into it.

    Only the user cache directory (neither `data_dir` nor GI_DATA_DIR given) allows a download:
    an explicit root is expected to hold the files already.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser(), False
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser(), False
    return default_cache_dir(), True


def dataset_name(name: str) -> str:
    """The registry spelling of data set `name` (case-insensitive: ``MNIST`` is ``mnist``), or a ValueError
    naming the known ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(f"dataset={name!r} is not known; expected one of {list(DATASETS)}")
    return key


def load_dataset(
    name: str = "digits",
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
) -> Dataset:
    """Load `name` with its train / validation / test splits, cached per process.

    :param name: one of ``digits``, ``mnist``, ``fashion-mnist`` (any case: ``MNIST`` is ``mnist``).
    :param data_dir: root holding torchvision's ``MNIST/raw`` and ``FashionMNIST/raw`` folders;
        defaults to ``$GI_DATA_DIR``, then to a user cache directory (downloads allowed there).
    :param val_fraction: share of the training set held out as the validation split, in (0, 1).
    :param split_seed: seed of the permutation that carves the validation (and digits' test) split.
    """
    name = dataset_name(name)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1")
    root = None if name == "digits" else resolve_data_dir(data_dir)
    return _load_cached(name, root, float(val_fraction), int(split_seed))


@functools.lru_cache(maxsize=8)
def _load_cached(
    name: str, root: tuple[Path, bool] | None, val_fraction: float, split_seed: int
) -> Dataset:
    rng = np.random.default_rng(split_seed)
    if name == "digits":
        x, y = _digits_arrays()
        order = rng.permutation(len(y))
        n_test = int(round(DIGITS_TEST_FRACTION * len(y)))
        x_test, y_test = x[order[:n_test]], y[order[:n_test]]
        x_trainval, y_trainval = x[order[n_test:]], y[order[n_test:]]
    else:
        assert root is not None
        x_trainval, y_trainval = _torchvision_arrays(name, *root, train=True)
        x_test, y_test = _torchvision_arrays(name, *root, train=False)

    order = rng.permutation(len(y_trainval))
    n_val = int(round(val_fraction * len(y_trainval)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train = x_trainval[train_idx]
    mean, std = float(x_train.mean()), float(x_train.std())

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
        return Split(x=xs, y=torch.from_numpy(y.astype(np.int64)))

    dataset = Dataset(
        name=name,
        train=split(x_train, y_trainval[train_idx]),
        val=split(x_trainval[val_idx], y_trainval[val_idx]),
        test=split(x_test, y_test),
        n_classes=int(y_trainval.max()) + 1,
    )
    assert (dataset.n_features, dataset.n_classes) == DATASET_DIMS[name], f"{name}: unexpected input/output widths"
    return dataset


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32) / 16.0, bunch.target


def _torchvision_arrays(
    name: str, root: Path, may_download: bool, train: bool
) -> tuple[np.ndarray, np.ndarray]:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        ds = cls(str(root), train=train, download=may_download)
    except Exception as err:  # torchvision raises RuntimeError offline or when files are missing
        raise FileNotFoundError(
            f"dataset {name!r} could not be read from {root} (expected {root}/{cls.__name__}/raw/"
            f"*-ubyte{'' if may_download else '; downloads are off for an explicit data root'}). "
            f"Set {DATA_DIR_ENV} or pass data_dir= to a folder in torchvision's layout, "
            f"for example {DATA_DIR_ENV}=../shared/data. Cause: {first_sentence(err, 200)}"
        ) from err
    prefix = "train" if train else "t10k"
    if len(ds.data) != len(ds.targets):  # torchvision reads the two files apart and pairs them blindly
        raw = Path(ds.raw_folder)
        raise ValueError(f"dataset {name!r}: {raw / f'{prefix}-images-idx3-ubyte'} holds {len(ds.data):,} images but "
                         f"{raw / f'{prefix}-labels-idx1-ubyte'} holds {len(ds.targets):,} labels; the two files must "
                         "come from the same split (replace the one that does not)")
    x = ds.data.numpy().reshape(len(ds.data), -1).astype(np.float32) / 255.0
    return x, ds.targets.numpy()
