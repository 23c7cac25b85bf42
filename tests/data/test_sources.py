from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fedsparse.data.sources import DATASETS, DataError, load_from_hub, read_idx


def test_mnist_idx_folder_is_the_real_60k_10k(mnist_dir: Path) -> None:
    splits = DATASETS.get("mnist").load(mnist_dir, 0, 0.2)
    assert splits.train.x.shape == (60000, 1, 28, 28) and splits.test.x.shape == (10000, 1, 28, 28)
    assert splits.train.x.dtype == np.float32 and splits.train.y.dtype == np.int64
    assert np.bincount(splits.test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(splits.train.x.mean())) < 0.01  # standardized


def test_truncated_idx_is_a_clear_error(tmp_path: Path, mnist_dir: Path) -> None:
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as handle:
        raw = handle.read()
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(broken)


def test_folder_without_the_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing train-images-idx3-ubyte\.gz"):
        DATASETS.get("mnist").load(tmp_path, 0, 0.2)


def test_digits_split_is_seeded_and_stratified() -> None:
    load = DATASETS.get("digits").load
    a, b, c = load(None, 1, 0.2), load(None, 1, 0.2), load(None, 2, 0.2)
    assert len(a.train) + len(a.test) == 1797
    assert np.array_equal(a.test.y, b.test.y) and not np.array_equal(a.test.y, c.test.y)
    assert set(np.unique(a.test.y)) == set(range(10))


def test_hub_dataset_offline_fails_clearly() -> None:
    with pytest.raises(DataError, match="Are you offline"):
        load_from_hub("uoft-cs/cifar10", "img", 0.5, 0.25)
