"""A secure federation loses a device: TLS on every link, SuperNode authentication, and
one SuperNode killed mid-run, with real processes.

The SuperLink serves TLS with a certificate signed by a private CA (made with the
README's openssl commands) and admits only SuperNodes whose public keys the user
registered with ``flwr supernode register``; a node with any other key is refused.
Once round 1 is logged, one SuperNode is SIGKILLed with its SuperExec and ClientApp (a
device losing power): the SuperLink stops hearing its heartbeat and answers for it, and
the run completes with the other two (configs/deployment.yaml: min_replies 2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fedsparse.results import METRICS_FILE, read_metrics, read_summary

from ..conftest import REPO
from .apps import MIN_ACCURACY, RUN_SECONDS, model_bytes
from .conftest import NODES, node_config
from .processes import CONNECTION, Federation, Tls, node_key

pytestmark = pytest.mark.deployment


def _wait_for_round_one(metrics: Path) -> None:
    deadline = time.monotonic() + RUN_SECONDS
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline, "round 1 was never logged"
        time.sleep(0.5)


def test_secure_federation_survives_a_killed_device(federation: Callable[..., Federation], tmp_path: Path) -> None:
    fed = federation(tls=Tls.make(tmp_path / "certificates"), supernode_auth=True)
    fed.start_superlink()
    keys = {f"node{i}": node_key(tmp_path / "keys", f"node{i}") for i in range(NODES)}
    for _, public in keys.values():
        registered = fed.flwr("supernode", "register", str(public), CONNECTION, "--format", "json")
        assert json.loads(registered.stdout)["success"], registered.stdout + registered.stderr
    stranger, _ = node_key(tmp_path / "keys", "stranger")
    refused = fed.start_supernode("stranger", node_config(0), key=stranger)
    configs = {name: node_config(i) for i, name in enumerate(keys)}
    nodes = fed.start_supernodes(configs, keys={name: private for name, (private, _) in keys.items()})
    refused.popen.wait(timeout=RUN_SECONDS)
    assert refused.popen.returncode != 0 and "Failed to activate SuperNode" in refused.log(), refused.log()
    listed = json.loads(fed.flwr("supernode", "list", CONNECTION, "--format", "json").stdout)
    assert len(listed["nodes"]) == NODES, listed

    run_id = fed.submit(REPO)
    metrics = fed.run_dir("deployment", run_id) / METRICS_FILE
    _wait_for_round_one(metrics)
    nodes[2].kill()
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))

    first, second = read_metrics(metrics.parent)
    assert not first["rejected"] and [c["id"] for c in first["clients"]] == [0, 1, 2]
    assert not second["skipped"] and [r["id"] for r in second["rejected"]] == [2]
    assert "Node Unavailable" in second["rejected"][0]["reason"]
    dead = second["clients"][2]
    assert (dead["id"], dead["bytes_down"], dead["bytes_up"], dead["num_examples"]) == (2, model_bytes("cnn"), 0, None)
    assert read_summary(metrics.parent)["final_accuracy"] > MIN_ACCURACY
