"""Shared fixtures.

Real MNIST comes from the data root (``$FEDSPARSE_DATA/mnist``, see
:mod:`fedsparse.data.root`). With a local copy there, every test runs offline: a hub
lookup must fail fast, not hang. Without one, the suite fetches MNIST from the hub once.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from fedsparse.data.root import local_copy

REPO = Path(__file__).resolve().parents[1]
LOCAL_MNIST = local_copy("mnist")

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] = "0"
if LOCAL_MNIST is not None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def write_idx(path: Path, values: np.ndarray) -> None:
    """``values`` (uint8) as a gzipped IDX file, the format MNIST is distributed in."""
    header = struct.pack(">HBB", 0, 0x08, values.ndim) + struct.pack(f">{values.ndim}I", *values.shape)
    path.write_bytes(gzip.compress(header + values.astype(np.uint8).tobytes()))


def mnist_from_hub(folder: Path) -> Path:
    """The hub's MNIST written as the four standard IDX files in ``folder``."""
    from flwr_datasets import FederatedDataset

    hub = FederatedDataset(dataset="ylecun/mnist", partitioners={})
    for split, prefix in (("train", "train"), ("test", "t10k")):
        table = hub.load_split(split)
        images = np.stack([np.asarray(image, dtype=np.uint8) for image in table["image"]])
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.asarray(table["label"], dtype=np.uint8))
    return folder


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with real MNIST's four IDX files: the data root's copy, else the hub's."""
    if LOCAL_MNIST is not None:
        return LOCAL_MNIST
    return mnist_from_hub(tmp_path_factory.mktemp("mnist"))


@pytest.fixture
def quickstart_raw() -> dict:
    from fedsparse.config import read_yaml

    return read_yaml(REPO / "configs" / "quickstart.yaml")


@pytest.fixture
def server_identity():  # type: ignore[no-untyped-def]
    """Flower stamps every new Message with the process's task identity (set by the
    engine in a real run); unit tests that build Messages by hand set one."""
    from fedsparse.compat import SUPERLINK_NODE_ID, set_task_identity, task_identity

    saved = task_identity()
    set_task_identity(1, 1, SUPERLINK_NODE_ID)
    yield
    set_task_identity(*saved)


@pytest.fixture
def quickstart_cfg(quickstart_raw: dict):  # type: ignore[no-untyped-def]
    from fedsparse.config import validate_config

    return validate_config(quickstart_raw)
