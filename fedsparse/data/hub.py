"""Any image-classification dataset on the Hugging Face hub, declared in the YAML.

``data.hub`` names the repository, its splits and columns, and the shapes the model is
built for; ``data.dataset`` is the name the run (and ``fedsparse list``) knows it by::

    data:
      dataset: cifar100
      hub: {repo: uoft-cs/cifar100, image_column: img, label_column: fine_label,
            input_shape: [3, 32, 32], num_classes: 100}

The arrays are read from a local copy when there is one, in the layout the hub itself
uses, so an offline machine needs no other format: ``data.path``, else the data root's
``<root>/<dataset>/``, holding either Parquet files per split (``train-*.parquet``,
``<split>.parquet`` or ``<split>/*.parquet``, at any depth) or a folder written by
``DatasetDict.save_to_disk``. Without one it is downloaded through Flower Datasets.
Images are scaled to [0, 1] and standardised with ``mean`` / ``std``. A text dataset
(``text_column``) becomes bag-of-words vectors: each text's tokens hashed into F buckets
(scikit-learn's ``HashingVectorizer``, ``input_shape: [1, 1, F]``), L2-normalised, for
the ``mlp`` model. An ``id_column``
(FEMNIST's writer) gives each sample its natural id for ``partition.method:
natural_id``. A dataset without a test split (``test_split: null``) is split with the
seed, stratified, ``data.test_fraction`` of it held out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.data.root import data_root, local_copy
from fedsparse.data.sources import (
    DATASETS,
    ArrayDataset,
    DataError,
    DatasetInfo,
    DatasetSource,
    DataSplits,
    seeded_split,
)


class HubDataset(BaseModel):
    """``data.hub``: where the dataset is and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str | None = Field(None, description="hub repository (e.g. uoft-cs/cifar100); null: local copies only")
    train_split: str = "train"
    test_split: str | None = Field("test", description="null: a seeded stratified split of train (test_fraction)")
    image_column: str = "image"
    text_column: str | None = Field(
        None, description="a text dataset: this column, hashed into input_shape[-1] token counts (no images read)"
    )
    label_column: str = "label"
    id_column: str | None = Field(None, description="each sample's natural id (partition.method: natural_id)")
    input_shape: tuple[int, int, int] = Field(description="channels, height, width of every image; text: [1, 1, F]")
    num_classes: int = Field(ge=2)
    mean: float = Field(0.5, description="images are scaled to [0, 1], then (x - mean) / std")
    std: float = Field(0.25, gt=0.0)


@dataclass(frozen=True)
class HubLoader:
    """The loader of one declared hub dataset (equal declarations, equal loaders)."""

    name: str
    spec: HubDataset

    @property
    def summary(self) -> str:
        return f"declared by a config (data.hub): {self.spec.repo or 'local copies only'}."

    def __call__(self, path: Path | None, seed: int, test_fraction: float) -> DataSplits:
        """``spec``'s splits as arrays: from ``path``, the data root's copy, else the hub."""
        spec = self.spec
        folder = path if path is not None else local_copy(self.name)
        splits = [spec.train_split] + ([spec.test_split] if spec.test_split else [])
        tables = _read_local(folder, splits) if folder is not None else _download(self.name, spec, splits)
        train = _arrays(tables[spec.train_split], spec)
        if spec.test_split is None:
            return seeded_split(train, test_fraction, seed)
        return DataSplits(train, _arrays(tables[spec.test_split], spec))


def declare(name: str, spec: HubDataset) -> None:
    """Register ``name`` as the dataset ``spec`` declares (again: a no-op). A name another
    source holds (a built-in, a plugin's) is refused."""
    source = DatasetSource(DatasetInfo(spec.input_shape, spec.num_classes, needs_path=False), HubLoader(name, spec))
    if name in DATASETS:
        existing = DATASETS.get(name)
        if existing == source:
            return
        if not isinstance(existing.load, HubLoader):
            raise ValueError(f"declares dataset {name!r}, a name another source holds; choose another data.dataset")
        from fedsparse.data.federated import load_federated_data
        from fedsparse.data.tasks import load_continual_data

        load_federated_data.cache_clear()  # arrays loaded under the old declaration of this name
        load_continual_data.cache_clear()
    DATASETS.add(name, source)


def _parquet_files(folder: Path, split: str) -> list[Path]:
    for pattern in (f"{split}-*.parquet", f"{split}.parquet", f"{split}/*.parquet"):
        found = sorted(folder.rglob(pattern))
        if found:
            return found
    raise DataError(f"{folder}: no Parquet files for split {split!r} ({split}-*.parquet, {split}.parquet, {split}/*)")


def _read_local(folder: Path, splits: list[str]) -> dict[str, Any]:
    """The splits of a local copy: ``save_to_disk`` output, else Parquet files."""
    from datasets import Dataset, load_from_disk

    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    if (folder / "dataset_dict.json").is_file():
        saved = load_from_disk(str(folder))
        missing = [split for split in splits if split not in saved]
        if missing:
            raise DataError(f"{folder}: no split {missing[0]!r} (it has {sorted(saved)})")
        return {split: saved[split] for split in splits}
    return {split: Dataset.from_parquet([str(f) for f in _parquet_files(folder, split)]) for split in splits}


def _download(name: str, spec: HubDataset, splits: list[str]) -> dict[str, Any]:
    if spec.repo is None:
        raise DataError(
            f"dataset {name!r}: no local copy (data.path, or {data_root()}/{name}) and no data.hub.repo to download"
        )
    try:
        from flwr_datasets import FederatedDataset

        hub = FederatedDataset(dataset=spec.repo, partitioners={})
        return {split: hub.load_split(split) for split in splits}
    except Exception as error:  # the hub client raises many types; all mean "no data"
        raise DataError(
            f"could not load {spec.repo!r} from the Hugging Face hub ({type(error).__name__}: {error}). "
            f"Offline? Put a copy in the hub's layout in {data_root()}/{name} or name one with data.path"
        ) from None


def _image(value: Any) -> np.ndarray:
    """One image cell as an array: a decoded PIL image, or the hub's {bytes, path} struct."""
    if isinstance(value, dict):
        from PIL import Image

        value = Image.open(io.BytesIO(value["bytes"]))
    return np.asarray(value, dtype=np.float32)


def _text_features(texts: list[str], spec: HubDataset) -> np.ndarray:
    """Token counts hashed into ``input_shape[-1]`` buckets, L2-normalised: (N, 1, 1, F)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    if spec.input_shape[:2] != (1, 1):
        raise DataError(f"data.hub.input_shape: a text dataset is [1, 1, F], got {list(spec.input_shape)}")
    vectorizer = HashingVectorizer(n_features=spec.input_shape[2], alternate_sign=False, norm="l2")
    return vectorizer.transform(texts).toarray().astype(np.float32).reshape(len(texts), *spec.input_shape)


def _images(table: Any, spec: HubDataset) -> np.ndarray:
    """A split's images (N, C, H, W), standardised."""
    images = np.stack([_image(value) for value in table[spec.image_column]])
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    if tuple(images.shape[1:]) != spec.input_shape:
        raise DataError(
            f"data.hub.input_shape: declared {list(spec.input_shape)}, the images are {list(images.shape[1:])}"
        )
    return ((images / 255.0 - spec.mean) / spec.std).astype(np.float32)


def _arrays(table: Any, spec: HubDataset) -> ArrayDataset:
    """A split's inputs (images or text features), labels, and natural ids if declared."""
    inputs = spec.text_column or spec.image_column
    for column in (inputs, spec.label_column, spec.id_column):
        if column is not None and column not in table.column_names:
            raise DataError(f"data.hub: no column {column!r} (the dataset has {table.column_names})")
    labels = np.asarray(table[spec.label_column], dtype=np.int64)
    if labels.min() < 0 or labels.max() >= spec.num_classes:
        raise DataError(f"data.hub.num_classes: declared {spec.num_classes}, labels run {labels.min()}..{labels.max()}")
    ids = np.asarray(table[spec.id_column]) if spec.id_column else None
    x = _text_features(list(table[inputs]), spec) if spec.text_column else _images(table, spec)
    return ArrayDataset(x, labels, ids)
