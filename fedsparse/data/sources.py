"""Dataset sources: where the raw arrays come from.

Every source returns the same thing, an official (or seeded) train/test split of
float32 images in NCHW and int64 labels, so partitioning, training and evaluation never
care whether the data came from scikit-learn, a local IDX folder or the Hugging Face hub.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsparse.data.root import data_root, local_copy
from fedsparse.registry import Registry, first_sentence


class DataError(RuntimeError):
    """A dataset cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ArrayDataset:
    """Images ``x`` (N, C, H, W) float32 and labels ``y`` (N,) int64; ``ids`` (N,): each
    sample's natural id (a writer, a device) where the dataset has one."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        return ArrayDataset(self.x[indices], self.y[indices], None if self.ids is None else self.ids[indices])


@dataclass(frozen=True)
class DataSplits:
    train: ArrayDataset
    test: ArrayDataset


@dataclass(frozen=True)
class DatasetInfo:
    """What the config validator and the model builder need to know up front."""

    input_shape: tuple[int, int, int]
    num_classes: int
    needs_path: bool  # True: ``data.path`` must name a local folder
    path_optional: bool = False  # True: without a path the hub copy is downloaded


# (local folder or None, seed, test fraction) → the train/test split
Loader = Callable[[Path | None, int, float], DataSplits]


@dataclass(frozen=True)
class DatasetSource:
    info: DatasetInfo
    load: Loader

    @property
    def summary(self) -> str:
        """What ``fedsparse list`` says of it: its loader's own summary, else the first
        sentence of its docstring."""
        return str(getattr(self.load, "summary", "")) or first_sentence(self.load.__doc__)


DATASETS: Registry[DatasetSource] = Registry("dataset", entry_point_group="fedsparse.datasets")


def _standardize(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((x - mean) / std).astype(np.float32)


def seeded_split(data: ArrayDataset, test_fraction: float, seed: int) -> DataSplits:
    """Stratified split for datasets that ship without a test set."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(data))
    train, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=data.y)
    return DataSplits(data.subset(train), data.subset(test))


def load_digits_splits(path: Path | None, seed: int, test_fraction: float) -> DataSplits:
    """scikit-learn's bundled 8×8 handwritten digits: works on any machine, offline."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = _standardize(bunch.images.astype(np.float32) / 16.0, 0.3, 0.37)[:, None]
    y = bunch.target.astype(np.int64)
    return seeded_split(ArrayDataset(x, y), test_fraction, seed)


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file, the format MNIST is distributed in."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: truncated ({data.size} values for shape {shape})")
    return data.reshape(shape)


IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: missing {stem}.gz (the four standard *-ubyte.gz files)")


def idx_files(folder: Path) -> list[str]:
    """The names of the four IDX files in ``folder``; :class:`DataError` if one is missing."""
    return [_find_idx(folder, stem).name for stem in IDX_FILES.values()]


def load_idx_folder(folder: Path, mean: float, std: float) -> DataSplits:
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}

    def images(raw: np.ndarray) -> np.ndarray:
        return _standardize(raw.astype(np.float32) / 255.0, mean, std)[:, None]

    return DataSplits(
        ArrayDataset(images(arrays["train_x"]), arrays["train_y"].astype(np.int64)),
        ArrayDataset(images(arrays["test_x"]), arrays["test_y"].astype(np.int64)),
    )


def load_from_hub(repo: str, image_key: str, mean: float, std: float) -> DataSplits:
    """Download through Flower Datasets (Hugging Face hub); offline, fail clearly."""
    try:
        from flwr_datasets import FederatedDataset

        fds = FederatedDataset(dataset=repo, partitioners={})
        train, test = fds.load_split("train"), fds.load_split("test")
    except Exception as error:  # the hub client raises many types; all mean "no data"
        raise DataError(
            f"could not load {repo!r} from the Hugging Face hub ({type(error).__name__}: {error}). "
            f"Offline? Put a local copy in the data root ({data_root()}/<dataset>, "
            "'fedsparse data import DATASET FOLDER' does it; set FEDSPARSE_DATA to use another root) "
            "or name one with data.path"
        ) from None

    def convert(split) -> ArrayDataset:  # type: ignore[no-untyped-def]
        images = np.stack([np.asarray(img, dtype=np.float32) for img in split[image_key]])
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        return ArrayDataset(_standardize(images / 255.0, mean, std), np.asarray(split["label"], np.int64))

    return DataSplits(convert(train), convert(test))


def _mnist_like(name: str, hub_repo: str, mean: float, std: float) -> Loader:
    """A folder of the four IDX files: ``data.path``, else the data root's copy, else the hub."""

    def load(path: Path | None, seed: int, test_fraction: float) -> DataSplits:
        folder = path if path is not None else local_copy(name)
        if folder is None:
            return load_from_hub(hub_repo, "image", mean, std)
        return load_idx_folder(folder, mean, std)

    load.__doc__ = f"{name}: four IDX files (data.path, else the data root's copy), else {hub_repo} from the hub."
    return load


def load_cifar10(path: Path | None, seed: int, test_fraction: float) -> DataSplits:
    """cifar10: uoft-cs/cifar10 from the hub."""
    return load_from_hub("uoft-cs/cifar10", "img", 0.47, 0.25)


DATASETS.add(
    "digits",
    DatasetSource(DatasetInfo((1, 8, 8), 10, needs_path=False), load_digits_splits),
)
DATASETS.add(
    "mnist",
    DatasetSource(
        DatasetInfo((1, 28, 28), 10, needs_path=True, path_optional=True),
        _mnist_like("mnist", "ylecun/mnist", 0.1307, 0.3081),
    ),
)
DATASETS.add(
    "fashion_mnist",
    DatasetSource(
        DatasetInfo((1, 28, 28), 10, needs_path=True, path_optional=True),
        _mnist_like("fashion_mnist", "zalando-datasets/fashion_mnist", 0.2860, 0.3530),
    ),
)
DATASETS.add(
    "cifar10",
    DatasetSource(
        DatasetInfo((3, 32, 32), 10, needs_path=False),
        load_cifar10,
    ),
)
