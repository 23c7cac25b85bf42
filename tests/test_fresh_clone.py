"""A fresh clone with no folder beside it runs every shipped config: no config names a
path outside the repository, and datasets come from the data root ($FEDSPARSE_DATA)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from fedsparse.results import read_summary

from .conftest import REPO


def fresh_clone(target: Path) -> Path:
    """The repository's committed HEAD, cloned into ``target`` (nothing beside it)."""
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(target)], check=True)
    return target


def test_every_shipped_config_validates_and_an_mnist_one_runs_from_the_data_root(
    tmp_path: Path, mnist_dir: Path
) -> None:
    clone = fresh_clone(tmp_path / "clone")
    assert not (clone.parent / "shared").exists()
    root = tmp_path / "data"
    root.mkdir()
    (root / "mnist").symlink_to(mnist_dir)
    env = {**os.environ, "FEDSPARSE_DATA": str(root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    configs = sorted((clone / "configs").glob("*.yaml"))
    assert len(configs) >= 10
    for config in configs:
        data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
        assert data.get("path") is None, f"{config.name} names a data folder"
        result = subprocess.run(
            [sys.executable, "-m", "fedsparse.cli", "validate", f"configs/{config.name}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{config.name}: {result.stderr}"
    out = tmp_path / "run"
    settings = ["federation.rounds=1", "data.partition.max_samples_per_client=100", "output.plots=false"]
    command = [sys.executable, "-m", "fedsparse.cli", "run", "configs/mnist_iid.yaml", "--out", str(out)]
    for item in settings:
        command += ["--set", item]
    result = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_summary(out)
    assert summary["dataset"] == "mnist" and summary["final_accuracy"] > 0.2  # above chance (0.1) after one round
