"""fedsparse and plain Flower on the same infrastructure, both ways round, with real processes.

- Stock Flower ClientApps (tests/deployment/stock_app) in a fedsparse FedAvg federation:
  they have no query handler, so the server serves them under the free client ids; their
  replies (one float32 ArrayRecord, a MetricRecord with ``num-examples``) pass screening
  although each device holds data of its own, more than the config's partition, while
  the device claiming 10^12 examples is rejected; their own evaluation metrics are
  aggregated beside the server's accuracy. With a cap below every device's data, every
  reply is rejected and the run fails, with the reason in ``flwr ls``, ``run.log`` and
  ``summary.json``.
- fedsparse's ClientApp under Flower's built-in FedAvg ServerApp
  (tests/deployment/fedavg_app): the strategy sends no fedsparse task, so the clients
  read theirs from the run config.

Both run on the shared SuperNodes: a SuperNode runs whichever ClientApp a run's FAB names.
"""

from __future__ import annotations

import json

import pytest

from fedsparse.results import read_metrics, read_summary
from fedsparse.runlog import RUN_LOG

from .apps import FEDAVG_APP, MIN_ACCURACY, RUN_SECONDS, STOCK_APP, model_bytes
from .conftest import NODES
from .processes import Federation

pytestmark = pytest.mark.deployment


OWN_DATA = [502, 646]  # the honest stock devices' training sets (stock_client.SHARES); the partition is 431
FORGED = "num-examples 1000000000000 exceeds the 862 examples allowed to a device that declares none"


def test_stock_flower_clients_with_their_own_data(shared_federation: Federation) -> None:
    fed = shared_federation
    run_id = fed.submit(STOCK_APP)
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))
    assert fed.run_log(run_id).count("has no query handler") == NODES

    run_dir = fed.run_dir("stock", run_id)
    summary, rows = read_summary(run_dir), read_metrics(run_dir)
    assert summary["clients_discovered"] == NODES and summary["status"] == "ok"
    assert summary["rounds_aggregated"] == 2 and summary["rounds_skipped"] == 0
    # from the initial model's chance level (0.1) up, round after round
    assert MIN_ACCURACY < rows[0]["accuracy"] < rows[1]["accuracy"] == summary["final_accuracy"]
    expected = model_bytes("mlp", hidden=[32])
    for row, evaluated in zip(rows, (False, True), strict=True):  # the clients evaluate in round 2
        (rejected,) = row["rejected"]  # the forger, whichever client id the server gave it
        assert rejected["reason"].startswith(FORGED), rejected
        sizes = {(c["bytes_down"], c["bytes_up"]) for c in row["clients"]}
        assert sizes == {((1 + evaluated) * expected, expected)}  # evaluation sends the model too
        assert sorted(c["num_examples"] for c in row["clients"] if c["id"] != rejected["id"]) == OWN_DATA
    assert "client_eval_acc" not in rows[0]
    # the devices' own metric names, example-weighted: their thirds of the test split make up
    # the server's test split, so their mean accuracy is the server's
    assert rows[1]["client_eval_acc"] == pytest.approx(rows[1]["accuracy"], abs=1e-6)
    assert rows[1]["client_eval_loss"] == pytest.approx(rows[1]["loss"], rel=1e-5)
    assert summary["final_client_eval_acc"] == rows[1]["client_eval_acc"]
    assert summary["top_rejections"] == [{"reason": rows[0]["rejected"][0]["reason"], "count": 2}]
    logged = (run_dir / RUN_LOG).read_text()
    assert "round 2/2 · accuracy" in logged and f"rejected reply of client {rejected['id']}: {FORGED}" in logged


def test_a_run_whose_every_reply_is_rejected_fails(shared_federation: Federation) -> None:
    fed = shared_federation
    run_id = fed.submit(STOCK_APP, config="stock_capped.yaml")
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:failed", status
    assert "no round aggregated (1 of 1 skipped)" in str(status["status-details"]), status

    run_dir = fed.run_dir("stock", run_id)
    summary = read_summary(run_dir)
    assert (summary["status"], summary["rounds_aggregated"], summary["replies_rejected"]) == ("failed", 0, NODES)
    assert summary["status_reason"].startswith("no round aggregated (1 of 1 skipped); rejected replies: 3x 'num-")
    assert "exceeds the 100 examples federation.max_num_examples allows" in summary["status_reason"]
    assert f"run failed: {summary['status_reason']}" in (run_dir / RUN_LOG).read_text()


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
