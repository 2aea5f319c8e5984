"""The data sets: splits, normalisation, offline loading and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import gi_envs
from gi_envs.datasets import DATA_DIR_ENV, load_dataset
from gi_envs.spec import MLPSpec


def test_digits_splits_are_disjoint_normalised_and_fixed() -> None:
    data = load_dataset("digits")
    assert (len(data.train), len(data.val), len(data.test)) == (1150, 288, 359)
    assert data.n_features == 64 and data.n_classes == 10
    assert abs(float(data.train.x.mean())) < 1e-4 and abs(float(data.train.x.std()) - 1.0) < 1e-3
    rows = {tuple(r) for r in data.train.x.numpy().round(4)}
    overlap = sum(tuple(r) in rows for r in data.test.x.numpy().round(4))
    assert overlap <= 5  # load_digits has a few duplicate images; the splits share no rows otherwise
    again = load_dataset("digits", split_seed=0, val_fraction=0.2)
    assert again is data  # cached per process
    other = load_dataset("digits", split_seed=1)
    assert not torch.equal(other.val.y, data.val.y)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_torchvision_datasets_read_the_offline_data_root(name: str, data_dir) -> None:
    data = load_dataset(name, data_dir=data_dir)
    assert (len(data.train), len(data.val), len(data.test)) == (48000, 12000, 10000)
    assert data.n_features == 784 and data.n_classes == 10
    assert sorted(np.unique(data.test.y.numpy())) == list(range(10))
    assert abs(float(data.train.x.mean())) < 1e-3


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"dataset='cifar'.*digits.*mnist.*fashion-mnist"):
        load_dataset("cifar")


def test_missing_data_root_gives_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=DATA_DIR_ENV):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def _copy_mnist(data_dir: Path, root: Path) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in (data_dir / "MNIST" / "raw").iterdir():
        (raw / source.name).symlink_to(source.resolve())
    return raw


def test_image_and_label_files_of_different_splits_are_refused_naming_both(data_dir: Path, tmp_path: Path) -> None:
    raw = _copy_mnist(data_dir, tmp_path)
    (raw / "train-labels-idx1-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte").symlink_to((data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").resolve())
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds 60,000 images but .*train-labels-idx1-ubyte "
                                         r"holds 10,000 labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_a_truncated_image_file_names_its_cause(data_dir: Path, tmp_path: Path) -> None:
    raw = _copy_mnist(data_dir, tmp_path)
    images = raw / "t10k-images-idx3-ubyte"
    content = images.resolve().read_bytes()[:1000]
    images.unlink()
    images.write_bytes(content)
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("mnist", data_dir=tmp_path)
    cause = str(error.value).split("Cause: ")[1]
    assert cause.strip(), str(error.value)  # never "Cause: " with nothing after it


def test_a_data_dir_that_is_no_path_is_refused() -> None:
    with pytest.raises(ValueError, match=r"data_dir=123 is not allowed; expected None or a folder's path"):
        gi_envs.EnvConfig(data_dir=123)  # type: ignore[arg-type]


def test_data_set_names_are_case_insensitive_everywhere() -> None:
    assert load_dataset("DIGITS") is load_dataset("digits")
    assert MLPSpec("Digits").dataset == "digits" and gi_envs.EnvConfig(dataset="DIGITS").dataset == "digits"
