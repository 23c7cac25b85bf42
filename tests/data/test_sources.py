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


def test_a_dataset_the_hub_cannot_give_fails_clearly() -> None:
    with pytest.raises(DataError, match=r"Offline\? Put a local copy in the data root") as error:
        load_from_hub("fedsparse-tests/no-such-dataset", "img", 0.5, 0.25)
    assert "fedsparse data import" in str(error.value)


def test_a_dataset_without_path_is_read_from_the_data_root(monkeypatch, tmp_path: Path, mnist_dir: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FEDSPARSE_DATA", str(tmp_path))
    (tmp_path / "mnist").symlink_to(mnist_dir)
    splits = DATASETS.get("mnist").load(None, 0, 0.2)
    assert (len(splits.train), len(splits.test)) == (60_000, 10_000)
