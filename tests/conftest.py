"""Shared fixtures. Every test runs offline: a hub lookup must fail fast, not hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] = "0"

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    assert (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), f"real MNIST expected at {MNIST_DIR}"
    return MNIST_DIR


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
