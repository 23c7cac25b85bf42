"""AdaptCL learns from real device times: three real SuperNodes, one of them standing for
a device 4× slower (``throttle=0.25`` in its node config), on the measured clock that
deployment uses by default (configs/deployment_adaptcl.yaml)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fedsparse.results import read_metrics

from ..conftest import REPO
from .apps import RUN_SECONDS
from .conftest import NODES, node_config
from .processes import Federation

pytestmark = pytest.mark.deployment

SLOW = NODES - 1


def test_adaptcl_prunes_the_device_that_is_really_slower(federation: Callable[..., Federation]) -> None:
    fed = federation()
    fed.start_superlink()
    configs = {f"node{i}": node_config(i) + (" throttle=0.25" if i == SLOW else "") for i in range(NODES)}
    fed.start_supernodes(configs)
    run_id = fed.submit(REPO, config="configs/deployment_adaptcl.yaml", out="adaptcl")
    status = fed.wait_finished(run_id, 2 * RUN_SECONDS)  # the slow device sets the pace
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))
    rows = read_metrics(fed.run_dir("adaptcl", run_id))

    def times(row: dict) -> dict[int, float]:  # type: ignore[type-arg]
        return {c["id"]: c["sim_seconds"] for c in row["clients"]}

    def slowdown(row: dict) -> float:  # type: ignore[type-arg]
        seconds = times(row)
        return seconds[SLOW] / max(t for c, t in seconds.items() if c != SLOW)

    # measured, not counted: the throttled node takes about 4× as long on the full model
    assert slowdown(rows[1]) > 2.5
    last = {c["id"]: c["pruned_rate"] for c in rows[-1]["clients"]}
    assert last[SLOW] > 0.4 + max(rate for c, rate in last.items() if c != SLOW)
    assert slowdown(rows[-1]) < slowdown(rows[1]) / 1.5
