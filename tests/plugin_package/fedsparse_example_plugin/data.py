"""scikit-learn's digits, mirrored left to right: a dataset that works offline."""

from __future__ import annotations

from pathlib import Path

from fedsparse.data.sources import ArrayDataset, DatasetInfo, DatasetSource, DataSplits, load_digits_splits


def load_mirrored_digits(path: Path | None, seed: int, test_fraction: float) -> DataSplits:
    """scikit-learn's 8×8 digits mirrored left to right, split as fedsparse splits digits."""
    splits = load_digits_splits(path, seed, test_fraction)
    mirrored = [ArrayDataset(part.x[..., ::-1].copy(), part.y) for part in (splits.train, splits.test)]
    return DataSplits(*mirrored)


MIRRORED_DIGITS = DatasetSource(DatasetInfo((1, 8, 8), 10, needs_path=False), load_mirrored_digits)
