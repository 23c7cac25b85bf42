"""Capability-adapted sub-models end to end on real MNIST: the simulation clock in the
metrics, AdaptCL learning rates from round times, smaller messages for pruned clients,
and the YAML for device profiles."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fedsparse.config import ConfigError, validate_config

from .helpers import simulate

SHORT = ("federation.rounds=4", "federation.lr=0.05", "data.partition.max_samples_per_client=300", "output.plots=false")
FAST, MEDIUM, SLOW = range(0, 4), range(4, 8), range(8, 10)  # the high config's 0.4 / 0.4 / 0.2 shares


def _by_client(row: dict) -> dict[int, dict]:  # type: ignore[type-arg]
    return {c["id"]: c for c in row["clients"]}


def test_adaptcl_learns_rates_that_equalise_round_times(tmp_path: Path, mnist_dir: Path) -> None:
    # 7 rounds: whole channels make the last steps into the slack band small (see rates.py)
    run = (f"data.path={mnist_dir}", *SHORT, "federation.rounds=7")
    rows, summary = simulate("adaptcl_mnist_high.yaml", tmp_path / "adaptcl", *run)
    _, fedavg = simulate("adaptcl_mnist_high.yaml", tmp_path / "fedavg", *run, "strategy.name=fedavg")
    for row in rows:
        assert row["sim_seconds"] == pytest.approx(max(c["sim_seconds"] for c in row["clients"]), abs=1e-3)
    assert summary["sim_seconds_total"] == pytest.approx(sum(r["sim_seconds"] for r in rows), abs=1e-2)
    assert rows[-1]["sim_seconds_total"] == summary["sim_seconds_total"]

    first, last = _by_client(rows[0]), _by_client(rows[-1])
    assert all(c["pruned_rate"] == 0.0 for c in first.values())  # no prior knowledge
    assert all(last[c]["pruned_rate"] == 0.0 for c in FAST)
    assert 0.0 < last[MEDIUM[0]]["pruned_rate"] < last[SLOW[0]]["pruned_rate"] <= 0.9
    # 10× slower devices at first; after learning every device ends within the slack
    assert first[SLOW[0]]["sim_seconds"] > 5 * first[FAST[0]]["sim_seconds"]
    fastest = last[FAST[0]]["sim_seconds"]
    assert max(c["sim_seconds"] for c in last.values()) <= fastest * 1.1
    # pruned clients download (and upload) only their sub-model
    assert last[SLOW[0]]["bytes_down"] < last[MEDIUM[0]]["bytes_down"] < last[FAST[0]]["bytes_down"] / 1.5
    assert last[SLOW[0]]["bytes_up"] < last[FAST[0]]["bytes_up"] / 2
    # same clients, same data: AdaptCL spends a fraction of FedAvg's simulated time, and learns
    assert summary["sim_seconds_total"] < fedavg["sim_seconds_total"] / 2.5
    assert summary["final_accuracy"] > max(0.7, rows[0]["accuracy"] + 0.05)


def test_heterofl_gives_each_device_its_static_width(tmp_path: Path, mnist_dir: Path) -> None:
    rows, summary = simulate(
        "adaptcl_mnist_high.yaml", tmp_path, f"data.path={mnist_dir}", "strategy.name=heterofl", *SHORT
    )
    for row in rows:  # speeds 1, 1/4, 1/10 → widths 1, 1/2, 1/4 (widest with width² ≤ speed)
        clients = _by_client(row)
        assert [clients[c]["pruned_rate"] for c in (FAST[0], MEDIUM[0], SLOW[0])] == [0.0, 0.5, 0.75]
    assert summary["final_accuracy"] > max(0.6, rows[0]["accuracy"] + 0.1)


DIGITS = ("data.dataset=digits", "data.path=null", "federation.rounds=2", "output.plots=false")


def test_with_fixed_rates_adaptcl_learns_nothing_and_prunes_as_told(tmp_path: Path) -> None:
    rates = [0.0] * 4 + [0.3] * 4 + [0.6] * 2
    rows, _ = simulate(
        "adaptcl_mnist_high.yaml",
        tmp_path,
        *DIGITS,
        f"strategy.adaptcl.fixed_rates={rates}",
        "federation.clock_jitter=0.2",
    )
    for row in rows:
        assert [c["pruned_rate"] for c in sorted(row["clients"], key=lambda c: c["id"])] == rates


def test_a_deadline_drops_the_clients_slower_than_it_and_ends_the_round_there(tmp_path: Path) -> None:
    rows, _ = simulate("adaptcl_mnist_high.yaml", tmp_path / "all", *DIGITS, "strategy.name=fedavg")
    times = _by_client(rows[0])
    deadline = (times[MEDIUM[0]]["sim_seconds"] + times[SLOW[0]]["sim_seconds"]) / 2
    late, _ = simulate(
        "adaptcl_mnist_high.yaml",
        tmp_path / "deadline",
        *DIGITS,
        "strategy.name=fedavg",
        f"federation.deadline_seconds={deadline}",
    )
    for row, full in zip(late, rows, strict=True):
        assert sorted(r["id"] for r in row["rejected"]) == list(SLOW)
        assert all("deadline" in r["reason"] for r in row["rejected"])
        assert row["sim_seconds"] == pytest.approx(deadline, abs=1e-3) and deadline < full["sim_seconds"]
        assert row["bytes_up"] == full["bytes_up"]  # the late uploads were still sent
    assert late[-1]["accuracy"] != rows[-1]["accuracy"]  # aggregated without them


def _high(quickstart_raw: dict) -> dict:  # type: ignore[type-arg]
    raw = copy.deepcopy(quickstart_raw)
    raw["federation"]["profiles"] = [{"share": 0.5, "speed": 1.0}, {"share": 0.5, "speed": 0.1, "bandwidth_mbps": 2}]
    raw["strategy"] = {"name": "adaptcl", "adaptcl": {"slack": 0.1, "max_pruned_rate": 0.9}}
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("federation", "profiles", 1, "speed"), 0, "federation.profiles.1.speed: must be > 0.0"),
        (("federation", "profiles", 1, "bandwidth_mbps"), -5, "federation.profiles.1.bandwidth_mbps: must be > 0.0"),
        (("federation", "profiles", 0, "width"), 1.5, "federation.profiles.0.width: must be <= 1.0"),
        (("federation", "reference_gflops"), 0, "federation.reference_gflops: must be > 0.0"),
        (("strategy", "adaptcl", "max_pruned_rate"), 1.0, "strategy.adaptcl.max_pruned_rate: must be < 1.0"),
        (("strategy", "adaptcl", "slack"), 0, "strategy.adaptcl.slack: must be > 0.0"),
        (
            ("strategy", "adaptcl", "fixed_rates"),
            [0.0],
            "strategy.adaptcl.fixed_rates: needs one rate per client (10), got 1",
        ),
        (
            ("strategy", "adaptcl", "fixed_rates"),
            [0.95] * 10,
            "strategy.adaptcl.fixed_rates: every rate must be in [0, max_pruned_rate = 0.9]",
        ),
        (("federation", "clock_jitter"), 1.0, "federation.clock_jitter: must be < 1.0"),
        (("federation", "deadline_seconds"), 0, "federation.deadline_seconds: must be > 0.0"),
    ],
)
def test_bad_device_and_adaptcl_settings_name_the_field(
    quickstart_raw: dict, path: tuple, value: object, message: str
) -> None:  # type: ignore[type-arg]
    raw = _high(quickstart_raw)
    validate_config(copy.deepcopy(raw))  # the unmodified config is valid
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    assert message in caught.value.problems


def test_on_the_measured_clock_adaptcl_prunes_the_device_that_is_really_slower(tmp_path: Path, mnist_dir: Path) -> None:
    from . import throttled_client

    rows, _ = simulate(
        "adaptcl_mnist_high.yaml",
        tmp_path,
        f"data.path={mnist_dir}",
        "data.partition.max_samples_per_client=200",
        "federation.profiles=[{share: 1.0}]",
        "federation.batch_size=50",
        "strategy.name=adaptcl",
        "strategy.adaptcl={slack: 0.3, max_pruned_rate: 0.9}",
        "federation.clock=measured",
        "federation.num_clients=4",
        "federation.clients_per_round=4",
        "federation.rounds=6",
        "federation.local_epochs=3",
        "output.plots=false",
        client_app=throttled_client.app,
    )
    slow = throttled_client.THROTTLED

    def slowdown(row: dict) -> float:  # type: ignore[type-arg]
        times = _by_client(row)
        return times[slow]["sim_seconds"] / max(t["sim_seconds"] for c, t in times.items() if c != slow)

    # round 1 also times each process's warm-up, so rates are learned from round 2 on
    assert all(c["pruned_rate"] == 0.0 for row in rows[:2] for c in row["clients"])
    # throttled to a quarter: 4× the others' time by design, measured (timing noise on 2
    # shared cores has put it as low as 2.44)
    assert slowdown(rows[1]) > 2.0
    last = _by_client(rows[-1])
    # real times are noisy and rates only ever grow, so the others may be trimmed a little
    assert last[slow]["pruned_rate"] > 0.4 + max(t["pruned_rate"] for c, t in last.items() if c != slow)
    assert slowdown(rows[-1]) < slowdown(rows[1]) / 1.5
