"""A plugin dataset for the tuning tests: digits with a poisoned test split (noise
images, every label 0), its training data identical to ``digits``'."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedsparse.data.sources import DATASETS, ArrayDataset, DatasetInfo, DatasetSource, DataSplits, load_digits_splits


def load_poisoned(path: Path | None, seed: int, test_fraction: float) -> DataSplits:
    """digits, its test split replaced by noise labelled 0."""
    splits = load_digits_splits(path, seed, test_fraction)
    noise = np.random.default_rng(0).normal(size=splits.test.x.shape).astype(np.float32)
    return DataSplits(splits.train, ArrayDataset(noise, np.zeros_like(splits.test.y)))


DATASETS.add("digits_poisoned_test", DatasetSource(DatasetInfo((1, 8, 8), 10, needs_path=False), load_poisoned))
