"""Plugins from outside the repository: the example package under tests/plugin_package
(a strategy with its own client learner, a model and a dataset, all through entry
points) is pip-installed into a folder of its own and used as a user would, through the
command line: ``fedsparse list``, a run of its stateful learner killed and resumed on the
inline engine and on Ray, a run on Ray, ``fedsparse compare`` beside built-in
strategies. A module named with ``--plugin`` (no entry points) registers a model that
only the clients build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedsparse.results import read_metrics, read_summary

from .conftest import REPO
from .helpers import run_killed_after, without_timings

CONFIG = """
seed: 0
data: {dataset: mirrored_digits, partition: {method: iid}}
model: {name: tiny_mlp, options: {hidden: 48}}
federation: {num_clients: 4, clients_per_round: 4, rounds: 3, local_epochs: 1, batch_size: 16, lr: 0.1}
strategy: {name: example_median, example_median: {decay: 1.0e-4}}
output: {plots: false, progress: false}
"""
# a plugin that is just an importable module: a model registered by its import
LOOSE_MODULE = '''"""A wider MLP, registered by importing this module."""
from torch import nn

from fedsparse.models import MODELS


@MODELS.register("wide_mlp")
def wide_mlp(input_shape, num_classes):
    """Two hidden layers of 64 units."""
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, num_classes))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user who pip-installed the plugin (into its own folder)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO / "tests" / "plugin_package"),
        ],
        check=True,
        capture_output=True,
    )
    (target / "loose_plugin.py").write_text(LOOSE_MODULE)
    return {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}


def fedsparse(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", *args], env=env, capture_output=True, text=True, cwd=REPO
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "plugin.yaml"
    path.write_text(CONFIG)
    return path


def test_list_shows_each_plugin_entry_and_the_package_it_comes_from(installed: dict[str, str]) -> None:
    listing = fedsparse(installed, "list", "--plugin", "loose_plugin").stdout
    for name in ("example_median", "example_decay", "tiny_mlp", "mirrored_digits"):
        line = next(row for row in listing.splitlines() if row.split()[:1] == [name])
        assert line.endswith("[fedsparse-example-plugin]"), line
    wide = next(row for row in listing.splitlines() if row.split()[:1] == ["wide_mlp"])
    assert "Two hidden layers of 64 units." in wide and wide.endswith("[loose_plugin]")
    assert next(row for row in listing.splitlines() if row.split()[:1] == ["fedavg"]).endswith("[fedsparse]")


def test_without_the_plugin_its_names_are_config_errors(config: Path) -> None:
    """The CLI's quick check (no torch) names the dataset first; the model, which needs
    the model registry, once the quick faults are fixed."""
    result = fedsparse(dict(os.environ), "validate", str(config), check=False)
    assert result.returncode == 2
    assert "data.dataset: must be one of" in result.stderr and "(got 'mirrored_digits')" in result.stderr
    assert "Traceback" not in result.stderr
    result = fedsparse(dict(os.environ), "validate", str(config), "--set", "data.dataset=digits", check=False)
    assert result.returncode == 2
    assert "model.name: must be one of" in result.stderr and "(got 'tiny_mlp')" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("engine", ["inline", "ray"])
def test_a_plugin_run_killed_midway_resumes_to_the_uninterrupted_result(
    installed: dict[str, str], config: Path, tmp_path: Path, engine: str
) -> None:
    """The plugin's stateful learner: its clients' momentum lives in their node state."""
    settings = ["--set", "federation.rounds=25", "--set", "federation.local_epochs=3"]
    settings += ["--set", "strategy={name: example_momentum}", "--set", f"engine.backend={engine}"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    fedsparse(installed, "run", str(config), "--out", str(whole), *settings)
    run_killed_after(
        [sys.executable, "-m", "fedsparse.cli", "run", str(config), "--out", str(killed), *settings], killed, installed
    )
    assert not (killed / "summary.json").exists(), "the run finished before it was killed"
    fedsparse(installed, "run", "--resume", str(killed))
    assert [without_timings(r) for r in read_metrics(killed)] == [without_timings(r) for r in read_metrics(whole)]
    summary = read_summary(whole)
    assert summary["final_accuracy"] > 0.5  # mirrored digits are as learnable as digits
    assert without_timings(read_summary(killed)) == without_timings(summary)
    assert summary["stateful_clients"] == 4


def test_a_plugin_run_on_ray_imports_the_plugins_in_every_actor(
    installed: dict[str, str], config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    fedsparse(
        installed, "run", str(config), "--out", str(out), "--plugin", "loose_plugin",
        "--set", "model={name: wide_mlp}", "--set", "engine.backend=ray",
    )  # fmt: skip
    rows = read_metrics(out)
    assert len(rows) == 3 and all(len(row["clients"]) == 4 and not row["rejected"] for row in rows)
    assert "loose_plugin" in (out / "config.yaml").read_text()  # a resume imports it again


def test_compare_runs_a_plugin_strategy_beside_builtin_ones(
    installed: dict[str, str], config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "compare"
    printed = fedsparse(
        installed, "compare", str(config), "--strategies", "example_median,fedavg,fedmedian", "--seeds", "1",
        "--out", str(out), "--no-progress",
    ).stdout  # fmt: skip
    for name in ("example_median", "fedavg", "fedmedian"):
        assert name in printed
        assert (out / name / "seed0" / "summary.json").exists()
    summary = json.loads((out / "example_median" / "seed0" / "summary.json").read_text())
    assert summary["strategy"] == "example_median" and summary["rounds_completed"] == 3
