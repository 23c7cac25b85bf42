"""Runs as Ray tasks on a real two-raylet cluster (tests/ray_cluster.py):
``fedsparse compare --jobs N`` with ``engine.ray_address``, spread over the nodes, with
the same comparison as running them one by one here; and a ``simulations/`` sweep's
``--ray-address``, with the same results as its runs in processes here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import REPO
from ..helpers import sweep_module
from ..ray_cluster import ray_cluster

SETTINGS = [
    "federation.rounds=2",
    "data.partition.max_samples_per_client=40",
    "output.plots=false",
]


def _compare(out: Path, *extra: str, jobs: int = 1) -> subprocess.CompletedProcess[str]:
    args = ["compare", str(REPO / "configs" / "quickstart.yaml"), "--strategies", "fedavg,fedpaq", "--seeds", "1"]
    args += ["--out", str(out), "--no-progress", "--jobs", str(jobs)]
    for item in [*SETTINGS, *extra]:
        args += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def _nodes(run_dir: Path) -> set[str]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {client["node"] for row in rows for client in row["clients"]}


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with ray_cluster(["--num-cpus=1"], ["--num-cpus=1"]) as head:
        yield head


def test_runs_as_ray_tasks_spread_over_the_cluster_give_the_same_comparison(tmp_path: Path, address: str) -> None:
    here = _compare(tmp_path / "here")
    assert here.returncode == 0, here.stderr[-3000:]
    remote = _compare(tmp_path / "cluster", "engine.backend=ray", f"engine.ray_address={address}", jobs=2)
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert (tmp_path / "cluster" / "comparison.csv").read_text() == (tmp_path / "here" / "comparison.csv").read_text()
    nodes = [_nodes(tmp_path / "cluster" / strategy / "seed0") for strategy in ("fedavg", "fedpaq")]
    assert all(len(found) == 1 and None not in found for found in nodes)  # each run is one task, on one node
    assert nodes[0] != nodes[1]  # spread over both raylets
    planned = (tmp_path / "cluster" / "fedavg" / "seed0" / "config.yaml").read_text()
    assert f"ray_address: {address}" in planned  # the run folder keeps the planned config


def test_a_sweeps_runs_as_ray_tasks_equal_its_runs_in_processes_here(tmp_path: Path, address: str) -> None:
    sweep = sweep_module()
    seeds = (0, 1)

    def run_all(name: str, ray_address: str | None) -> list[Path]:
        parser = sweep.sweep_parser(None, "test")
        args = parser.parse_args(
            ["--jobs", "2", "--out", str(tmp_path / name), "--archive", str(tmp_path / f"{name}-archive")]
        )
        args.ray_address = ray_address
        with sweep.run_pool(args) as pool:
            return list(pool.map(lambda seed: sweep.run_one("quickstart.yaml", "fedavg", SETTINGS, seed, args), seeds))

    here, remote = run_all("here", None), run_all("cluster", address)
    for local_run, cluster_run in zip(here, remote, strict=True):
        local, on_cluster = (json.loads((run / "summary.json").read_text()) for run in (local_run, cluster_run))
        assert {k: v for k, v in on_cluster.items() if k != "wall_seconds"} == {
            k: v for k, v in local.items() if k != "wall_seconds"
        }
    assert {node for run in remote for node in _nodes(run)} - {None}  # ran in Ray tasks, on the cluster's nodes
    assert not {node for run in here for node in _nodes(run)} - {None}
