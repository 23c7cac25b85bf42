"""A hub-style dataset on disk: real images (scikit-learn's digits) with labels and a
writer id per sample, saved by Hugging Face ``datasets`` as Parquet files (as the hub
serves them) and as a ``save_to_disk`` folder, read through ``data.hub`` offline and
partitioned by writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fedsparse.config import ConfigError
from fedsparse.data import DATASETS
from fedsparse.data.hub import HubDataset, HubLoader
from fedsparse.results import read_summary
from fedsparse.runner import run_experiment

from ..helpers import config_of

WRITERS = 12


def _split(images: np.ndarray, labels: np.ndarray, first_writer: int):  # type: ignore[no-untyped-def]
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features({"picture": ImageFeature(), "digit": Value("int64"), "writer": Value("string")})
    rows = {
        "picture": [Image.fromarray(image) for image in images],
        "digit": labels.tolist(),
        "writer": [f"w{(first_writer + row) % WRITERS:02d}" for row in range(len(labels))],
    }
    return Dataset.from_dict(rows, features=features)


@pytest.fixture(scope="module")
def digits_splits():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * 255 / 16).astype(np.uint8)  # 8×8 grayscale, as image files hold them
    return _split(images[:1500], bunch.target[:1500], 0), _split(images[1500:], bunch.target[1500:], 5)


@pytest.fixture(scope="module")
def parquet_copy(tmp_path_factory: pytest.TempPathFactory, digits_splits) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("hub") / "data"
    folder.mkdir()
    for name, split in zip(("train", "test"), digits_splits, strict=True):
        split.to_parquet(str(folder / f"{name}-00000-of-00001.parquet"))
    return folder.parent


HUB = (
    "data.hub={image_column: picture, label_column: digit, id_column: writer, input_shape: [1, 8, 8], "
    "num_classes: 10, mean: 0.3, std: 0.37}"
)


def test_a_parquet_copy_runs_partitioned_by_writer(parquet_copy: Path, tmp_path: Path) -> None:
    cfg = config_of(
        "quickstart.yaml",
        "data.dataset=my_digits",
        HUB,
        f"data.path={parquet_copy}",
        "data.partition={method: natural_id}",
        "federation.num_clients=4",
        "federation.clients_per_round=4",
        "federation.rounds=4",
    )
    from fedsparse.task import ClientTask

    data = ClientTask.from_experiment(cfg).federated_data()
    assert len(data.pool) == 1500 and len(data.test) == 297
    writers = [set(data.pool.ids[rows]) for rows in data.partitions]
    assert sorted(len(w) for w in writers) == [3, 3, 3, 3]
    assert set().union(*writers) == {f"w{w:02d}" for w in range(WRITERS)}
    run_experiment(cfg, tmp_path)
    assert read_summary(tmp_path)["final_accuracy"] > 0.85  # digits, however they are stored


def test_a_save_to_disk_copy_reads_the_same_arrays(parquet_copy: Path, tmp_path: Path, digits_splits) -> None:  # type: ignore[no-untyped-def]
    from datasets import DatasetDict

    DatasetDict({"train": digits_splits[0], "test": digits_splits[1]}).save_to_disk(str(tmp_path / "saved"))
    spec = HubDataset(
        image_column="picture", label_column="digit", id_column="writer", input_shape=(1, 8, 8), num_classes=10
    )
    from_parquet = HubLoader("a", spec)(parquet_copy, 0, 0.2)
    from_disk = HubLoader("a", spec)(tmp_path / "saved", 0, 0.2)
    for a, b in ((from_parquet.train, from_disk.train), (from_parquet.test, from_disk.test)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.ids, b.ids)


def test_without_a_test_split_a_seeded_stratified_one_is_held_out(parquet_copy: Path) -> None:
    spec = HubDataset(
        image_column="picture", label_column="digit", test_split=None, input_shape=(1, 8, 8), num_classes=10
    )
    splits = HubLoader("b", spec)(parquet_copy, 0, 0.2)
    assert (len(splits.train), len(splits.test)) == (1200, 300)
    assert np.array_equal(np.bincount(splits.test.y) > 0, np.ones(10, bool))


def test_wrong_declarations_are_named(parquet_copy: Path) -> None:
    base = ("data.dataset=my_digits2", f"data.path={parquet_copy}")
    with pytest.raises(ConfigError) as caught:
        config_of("quickstart.yaml", *base, "data.hub={input_shape: [1, 8, 8]}")
    assert caught.value.problems == ["data.hub.num_classes: required field is missing"]
    with pytest.raises(ConfigError, match=r"data\.dataset: declares dataset 'mnist', a name another source holds"):
        config_of("quickstart.yaml", "data.dataset=mnist", HUB)
    wrong_shape = HubDataset(image_column="picture", label_column="digit", input_shape=(3, 8, 8), num_classes=10)
    with pytest.raises(Exception, match=r"declared \[3, 8, 8\], the images are \[1, 8, 8\]"):
        HubLoader("c", wrong_shape)(parquet_copy, 0, 0.2)
    assert "my_digits2" not in DATASETS


def test_a_text_column_becomes_hashed_token_counts(tmp_path: Path) -> None:
    """The text path's mechanics (no real text dataset is on this machine): every text a
    unit vector of token counts in F buckets, equal texts equal vectors."""
    from datasets import Dataset

    texts = ["the cat sat on the mat", "a dog barked at the mailman", "the cat sat on the mat", "stocks fell sharply"]
    folder = tmp_path / "text"
    folder.mkdir()
    for split in ("train", "test"):
        Dataset.from_dict({"sentence": texts, "topic": [0, 1, 0, 2]}).to_parquet(str(folder / f"{split}.parquet"))
    spec = HubDataset(text_column="sentence", label_column="topic", input_shape=(1, 1, 64), num_classes=3)
    splits = HubLoader("t", spec)(folder, 0, 0.2)
    x = splits.train.x
    assert x.shape == (4, 1, 1, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x.reshape(4, -1), axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(x[0], x[2]) and not np.array_equal(x[0], x[1])
    with pytest.raises(Exception, match=r"a text dataset is \[1, 1, F\]"):
        HubLoader("t", spec.model_copy(update={"input_shape": (1, 8, 8)}))(folder, 0, 0.2)
