"""Classification data sets as in-memory tensors with fixed train / validation / test splits.

`digits` (scikit-learn's `load_digits`, 8x8 images) ships inside scikit-learn and is the
default. `mnist` and `fashion-mnist` are read through torchvision's dataset classes from a
data root: the `data_dir` argument, else the `GI_DATA_DIR` environment variable, else a user
cache directory where torchvision may download them when the machine is online.
``synthetic-K`` (K a non-negative integer) is the K-th of an unlimited family of classification tasks made
here by scikit-learn's `make_classification` (`SyntheticTask`): each K fixes its input size, class count and
difficulty, and the same K gives the same data everywhere, so training tasks cost nothing to store.

The validation split is carved out of the training set with a fixed seed; rewards and model
selection use it. The test split is only ever reported.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gi_envs.files import first_sentence

DATASETS = ("digits", "mnist", "fashion-mnist")
DATASET_DIMS = {"digits": (64, 10), "mnist": (784, 10), "fashion-mnist": (784, 10)}  # (features, classes)
SYNTHETIC_PREFIX = "synthetic-"  # ``synthetic-K``: the K-th synthetic task (`SyntheticTask`)
SYNTHETIC_NAME = re.compile(r"synthetic-(0|[1-9][0-9]{0,17})")
SYNTHETIC_STREAM = 104_729  # a synthetic task's draws come from a generator seeded with (K, SYNTHETIC_STREAM)
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


@dataclass(frozen=True)
class SyntheticTask:
    """The classification task ``synthetic-K``: what `make_classification` is asked for, all drawn from K.

    Input sizes 8 to 128 (log-uniform), 2 to 10 classes, 2 clusters per class, class separation 0.5 to 2 (harder
    to easier), 5 % of labels flipped; 2,500 samples, of which 500 are the test split. Inputs are standardised
    with the training split's mean and std, as every data set here.
    """

    index: int
    n_features: int
    n_classes: int
    n_informative: int
    class_sep: float
    n_samples: int = 2_500
    n_test: int = 500
    flip_y: float = 0.05

    @classmethod
    @functools.lru_cache(maxsize=1024)
    def of(cls, index: int) -> SyntheticTask:
        """The task of index K (cached: `MLPSpec.layer_sizes` asks for its sizes at every access)."""
        rng = np.random.default_rng([int(index), SYNTHETIC_STREAM])
        n_features = int(round(np.exp(rng.uniform(np.log(8), np.log(128)))))
        n_classes = int(rng.integers(2, 11))
        # make_classification needs n_classes * clusters <= 2 ** n_informative
        least = int(np.ceil(np.log2(2 * n_classes)))
        n_informative = int(rng.integers(least, max(least, n_features // 2) + 1))
        class_sep = float(rng.uniform(0.5, 2.0))
        return cls(int(index), n_features, n_classes, min(n_informative, n_features), class_sep)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_classification

        x, y = make_classification(
            n_samples=self.n_samples, n_features=self.n_features, n_informative=self.n_informative,
            n_redundant=min(2, self.n_features - self.n_informative), n_classes=self.n_classes,
            n_clusters_per_class=2, class_sep=self.class_sep, flip_y=self.flip_y, random_state=self.index % 2**32,
            shuffle=True)
        return x.astype(np.float32), y.astype(np.int64)


def synthetic_index(name: str) -> int | None:
    """K of a ``synthetic-K`` name, None for another name."""
    match = SYNTHETIC_NAME.fullmatch(name) if isinstance(name, str) else None
    return int(match.group(1)) if match else None


def dataset_name(name: str) -> str:
    """The registry spelling of data set `name` (case-insensitive: ``MNIST`` is ``mnist``), or a ValueError
    naming the known ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in DATASETS and synthetic_index(key) is None:
        raise ValueError(f"dataset={name!r} is not known; expected one of {list(DATASETS)} or 'synthetic-K' (K a "
                         "non-negative integer: a generated task)")
    return key


def dataset_dims(name: str) -> tuple[int, int]:
    """(input features, classes) of data set `name`, without loading it."""
    name = dataset_name(name)
    index = synthetic_index(name)
    if index is not None:
        task = SyntheticTask.of(index)
        return task.n_features, task.n_classes
    return DATASET_DIMS[name]


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
    if synthetic_index(name) is not None:  # made, not read: a cache of its own, so that they never evict MNIST
        return _load_synthetic(name, float(val_fraction), int(split_seed))
    root = None if name == "digits" else resolve_data_dir(data_dir)
    return _load_cached(name, root, float(val_fraction), int(split_seed))


@functools.lru_cache(maxsize=64)
def _load_synthetic(name: str, val_fraction: float, split_seed: int) -> Dataset:
    return _load_cached.__wrapped__(name, None, val_fraction, split_seed)


@functools.lru_cache(maxsize=8)
def _load_cached(
    name: str, root: tuple[Path, bool] | None, val_fraction: float, split_seed: int
) -> Dataset:
    rng = np.random.default_rng(split_seed)
    index = synthetic_index(name)
    if name == "digits" or index is not None:
        synthetic = None if index is None else SyntheticTask.of(index)
        x, y = _digits_arrays() if synthetic is None else synthetic.arrays()
        order = rng.permutation(len(y))
        n_test = int(round(DIGITS_TEST_FRACTION * len(y))) if synthetic is None else synthetic.n_test
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
        n_classes=dataset_dims(name)[1],
    )
    assert (dataset.n_features, dataset.n_classes) == dataset_dims(name), f"{name}: unexpected input/output widths"
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
