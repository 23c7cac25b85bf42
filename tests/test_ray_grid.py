"""The Ray engine on real Ray clusters started here (tests/ray_cluster.py): clients spread
over two raylets with the inline engine's results, GPU shares scheduled as declared, and
client resources checked against the cluster's, not the driver's; and the private Ray a
run starts, whose workers get the driver's priority."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedsparse.config import ConfigError, apply_overrides, read_yaml, validate_config
from fedsparse.ray_grid import even_split, ray_init_args

from .conftest import REPO
from .helpers import simulate, without_timings
from .ray_cluster import ray_cluster

QUICK = ("federation.rounds=3", "output.plots=false")


def most_at_once(rows: list[dict]) -> int:  # type: ignore[type-arg]
    """The most clients whose training spans overlapped, over all rounds."""
    most = 0
    for row in rows:
        spans = [(c["started"], c["finished"]) for c in row["clients"]]
        for start, _ in spans:
            most = max(most, sum(s <= start < f for s, f in spans))
    return most


def test_a_federation_on_two_raylets_runs_on_both_with_the_inline_engines_results(tmp_path: Path) -> None:
    with ray_cluster(["--num-cpus=1"], ["--num-cpus=1"]) as address:
        ray_rows, ray_summary = simulate(
            "quickstart.yaml", tmp_path / "ray", *QUICK, "engine.backend=ray", f"engine.ray_address={address}"
        )
    inline_rows, inline_summary = simulate("quickstart.yaml", tmp_path / "inline", *QUICK)
    nodes = {c["node"] for row in ray_rows for c in row["clients"]}
    assert len(nodes) == 2 and None not in nodes
    assert all(c["node"] is None for row in inline_rows for c in row["clients"])
    assert [without_timings(r) for r in ray_rows] == [without_timings(r) for r in inline_rows]
    assert without_timings(ray_summary) == without_timings(inline_summary)


@pytest.mark.parametrize(("share", "at_once"), [(0.25, 4), (0.5, 2)])
def test_gpu_shares_run_that_many_clients_at_once_on_a_declared_gpu(tmp_path: Path, share: float, at_once: int) -> None:
    overrides = (
        *QUICK,
        "federation.clients_per_round=8",
        "federation.local_epochs=8",  # long enough that spans overlap when they can
        "engine.backend=ray",
        f"engine.client_resources={{num_cpus: 0.5, num_gpus: {share}}}",
    )
    with ray_cluster(["--num-cpus=4", "--num-gpus=1"]) as address:
        rows, _ = simulate("quickstart.yaml", tmp_path / "run", *overrides, f"engine.ray_address={address}")
    assert most_at_once(rows) == at_once
    assert {c["device"] for row in rows for c in row["clients"]} == {"cpu"}  # declared only: no CUDA here
    assert "given a GPU share but trained on the CPU" in (tmp_path / "run" / "run.log").read_text()


def test_client_resources_are_checked_against_the_clusters() -> None:
    raw = read_yaml(REPO / "configs" / "quickstart.yaml")
    with ray_cluster(["--num-cpus=2"]) as address:
        attach = ["engine.backend=ray", f"engine.ray_address={address}"]
        validate_config(apply_overrides(raw, [*attach, "engine.client_resources={num_cpus: 2, num_gpus: 0}"]))
        for resources, field in (("{num_cpus: 1, num_gpus: 0.5}", "num_gpus"), ("{num_cpus: 3}", "num_cpus")):
            with pytest.raises(ConfigError, match=f"engine.client_resources.{field}: .* the cluster at {address}"):
                validate_config(apply_overrides(raw, [*attach, f"engine.client_resources={resources}"]))
    with pytest.raises(ConfigError, match=f"engine.ray_address: cannot attach to a Ray cluster at {address}"):
        validate_config(apply_overrides(raw, attach))


def niceness() -> int:
    return os.nice(0)


def test_the_private_ray_runs_its_workers_at_the_drivers_priority() -> None:
    import ray

    ray.init(**ray_init_args(None), num_cpus=1)
    try:
        worker_niceness = ray.get(ray.remote(niceness).remote())
    finally:
        ray.shutdown()
    assert worker_niceness == niceness()  # Ray's own default is 15: clients starved by the driver


@pytest.mark.parametrize(
    ("count", "parts", "lengths"),
    [(10, 4, [3, 3, 2, 2]), (1000, 4, [250] * 4), (3, 8, [1, 1, 1]), (7, 1, [7]), (0, 4, [])],
)
def test_cohorts_are_cut_evenly_and_keep_the_order(count: int, parts: int, lengths: list[int]) -> None:
    cohorts = even_split(list(range(count)), parts)
    assert [len(c) for c in cohorts] == lengths
    assert [i for c in cohorts for i in c] == list(range(count))
