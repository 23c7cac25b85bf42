"""fedsparse and plain Flower on the same infrastructure, both ways round, with real processes.

- Stock Flower ClientApps (tests/deployment/stock_app) in a fedsparse FedAvg federation:
  they have no query handler, so the server serves them under the free client ids; their
  replies (one float32 ArrayRecord, a MetricRecord with ``num-examples``) pass screening.
- fedsparse's ClientApp under Flower's built-in FedAvg ServerApp
  (tests/deployment/fedavg_app): the strategy sends no fedsparse task, so the clients
  read theirs from the run config.

Both run on the shared SuperNodes: a SuperNode runs whichever ClientApp a run's FAB names.
"""

from __future__ import annotations

import json

import pytest

from fedsparse.results import read_metrics, read_summary

from .apps import FEDAVG_APP, MIN_ACCURACY, RUN_SECONDS, STOCK_APP, model_bytes
from .conftest import NODES
from .processes import Federation

pytestmark = pytest.mark.deployment


def test_stock_flower_clients_in_a_fedsparse_federation(shared_federation: Federation) -> None:
    fed = shared_federation
    run_id = fed.submit(STOCK_APP)
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))
    assert fed.run_log(run_id).count("has no query handler") == NODES

    run_dir = fed.run_dir("stock", run_id)
    summary, (row,) = read_summary(run_dir), read_metrics(run_dir)
    assert summary["clients_discovered"] == NODES and summary["rounds_skipped"] == 0
    assert summary["final_accuracy"] > MIN_ACCURACY
    expected = model_bytes("mlp", hidden=[32])
    assert not row["rejected"]
    assert [(c["id"], c["bytes_down"], c["bytes_up"], c["num_examples"]) for c in row["clients"]] == [
        (client, expected, expected, 300) for client in range(NODES)
    ]


def test_fedsparse_clients_under_flowers_fedavg(shared_federation: Federation) -> None:
    fed = shared_federation
    run_id = fed.submit(FEDAVG_APP)
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))

    result = json.loads((fed.runs_root / "flower-fedavg" / f"{run_id}.json").read_text())
    assert list(result["train"]) == list(result["evaluate_clientapp"]) == ["1"]
    assert result["train"]["1"]["bitwidth"] == 32  # the clients trained at float32
    assert result["evaluate_serverapp"]["1"]["accuracy"] > MIN_ACCURACY
    assert result["evaluate_clientapp"]["1"]["val_accuracy"] > MIN_ACCURACY
