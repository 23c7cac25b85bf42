"""The Python API: ``fedsparse.run`` and ``fedsparse.compare`` from a notebook-like
session, equal to the CLI for the same config and seed, leaving process state alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

import fedsparse
from fedsparse.config import ConfigError, read_yaml
from fedsparse.results import read_metrics, read_summary

from .conftest import REPO
from .helpers import without_timings

SHORT = ["federation.rounds=3", "output.plots=true"]


def test_run_twice_in_one_process_equals_the_cli(tmp_path: Path) -> None:
    backend = matplotlib.get_backend()
    config = REPO / "configs" / "quickstart.yaml"
    by_path = fedsparse.run(config, SHORT, out=tmp_path / "path")
    by_dict = fedsparse.run(read_yaml(config), SHORT, out=tmp_path / "dict")
    cli = tmp_path / "cli"
    command = [sys.executable, "-m", "fedsparse.cli", "run", str(config), "--out", str(cli)]
    for item in SHORT:
        command += ["--set", item]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    expected_rows = [without_timings(r) for r in read_metrics(cli)]
    for result in (by_path, by_dict):
        assert [without_timings(r) for r in result.rows] == expected_rows
        assert without_timings(result.summary) == without_timings(read_summary(cli))
        assert (result.run_dir / "accuracy_vs_round.png").is_file()
    assert matplotlib.get_backend() == backend  # plotting left the backend alone


def test_bad_input_raises_with_every_fault_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        fedsparse.run({"federation": {"rounds": 0, "lr": -1}}, out=tmp_path / "bad")
    assert set(error.value.problems) == {"federation.rounds: must be >= 1", "federation.lr: must be > 0.0"}
    assert not (tmp_path / "bad").exists()


def test_compare_returns_its_table(tmp_path: Path) -> None:
    result = fedsparse.compare(
        REPO / "configs" / "quickstart.yaml",
        ["federation.rounds=2", "output.plots=false"],
        strategies=["fedavg", "fedprox"],
        seeds=1,
        out=tmp_path / "cmp",
    )
    assert [row["strategy"] for row in result.table] == ["fedavg", "fedprox"]
    for row in result.table:
        summary = read_summary(tmp_path / "cmp" / row["strategy"] / "seed0")
        assert row["final_accuracy_mean"] == pytest.approx(summary["final_accuracy"])
    assert "fedprox" in result.markdown and all(path.is_file() for path in result.paths)
