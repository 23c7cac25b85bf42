"""A Flower user's own ClientApp in a fedsparse simulation (``engine.client_app``):
tests/stock_clientapp.py, written as Flower's quickstart-pytorch writes one, runs on the
inline and Ray engines under fedsparse's FedAvg and Flower's FedAdam, with the byte
ledger, federated evaluation, checkpoints (resume) and ``compare``; what only
fedsparse's clients can do is refused at validation, one line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from flwr.app import ArrayRecord

import fedsparse
from fedsparse.config import ConfigError, validate_config
from fedsparse.models import build_model
from fedsparse.runner import run_experiment

from .stock_clientapp import Net

CLIENTS = 3
TRAIN_EXAMPLES = 479  # each node's IID share of the 1,797 digits (599), 80 % of it (load_data)


def stock_config(rounds: int = 2, **sections: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "data": {"dataset": "digits", "partition": {"method": "iid"}},
        "model": {"name": "mlp", "options": {"hidden": [32]}},
        "federation": {"num_clients": CLIENTS, "clients_per_round": CLIENTS, "rounds": rounds, "client_eval_every": 1},
        "strategy": {"name": "fedavg"},
        "engine": {
            "client_app": "tests.stock_clientapp:app",
            "client_run_config": {"lr": 0.1, "batch-size": 32, "local-epochs": 2},
        },
        "output": {"plots": False, "progress": False},
        **sections,
    }


@pytest.mark.parametrize(("backend", "strategy"), [("inline", "fedavg"), ("inline", "fedadam"), ("ray", "fedavg")])
def test_a_stock_client_app_trains_under_fedsparse_and_flower_strategies(
    backend: str, strategy: str, tmp_path: Path
) -> None:
    raw = stock_config(strategy={"name": strategy}, engine={**stock_config()["engine"], "backend": backend})
    result = fedsparse.run(raw, out=tmp_path / "run")
    summary, rows = result.summary, result.rows
    assert summary["status"] == "ok" and summary["rounds_aggregated"] == 2
    assert summary["final_accuracy"] > 0.6  # fedsparse's server evaluation of the stock clients' model
    model = ArrayRecord(build_model("mlp", (1, 8, 8), 10, hidden=[32]).state_dict()).count_bytes()
    assert model == ArrayRecord(Net().state_dict()).count_bytes()
    for row in rows:  # every node served as its partition's client id; every byte in the ledger
        assert [c["id"] for c in row["clients"]] == list(range(CLIENTS)) and row["rejected"] == []
        assert all((c["bytes_down"], c["bytes_up"]) == (2 * model, model) for c in row["clients"])  # train + eval
        assert all(c["num_examples"] == TRAIN_EXAMPLES for c in row["clients"])
        assert row["client_eval_acc"] > 0.5  # the ClientApp's own evaluate handler, aggregated
    log = (result.run_dir / "run.log").read_text()
    assert "Traceback" not in log and "no query handler (a stock Flower ClientApp?); serving it as client 0" in log


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    timings = ("round_seconds", "started", "finished")
    return [
        {
            **{k: v for k, v in row.items() if k not in timings},
            "clients": [{k: v for k, v in c.items() if k not in timings} for c in row["clients"]],
        }
        for row in rows
    ]


def test_a_resumed_stock_client_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    whole = fedsparse.run(stock_config(rounds=3), out=tmp_path / "whole")
    part = tmp_path / "part"
    fedsparse.run(stock_config(rounds=2), out=part)  # its checkpoint is after round 2
    run_experiment(validate_config(stock_config(rounds=3)), part, resume=True)  # round 3
    lines = (part / "metrics.jsonl").read_text().splitlines()
    assert _comparable([yaml.safe_load(line) for line in lines]) == _comparable(whole.rows)


def test_compare_runs_fedsparse_and_flower_strategies_over_a_stock_client_app(tmp_path: Path) -> None:
    config = tmp_path / "stock.yaml"
    config.write_text(yaml.safe_dump(stock_config()))
    result = fedsparse.compare(config, strategies=["fedavg", "fedadam"], seeds=2, out=tmp_path / "compare")
    assert sorted(entry["strategy"] for entry in result.table) == ["fedadam", "fedavg"]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"strategy": {"name": "fedprox"}}, "strategy.name: 'fedprox' needs fedsparse's clients; a ClientApp of your "),
        (
            {"federation": {"num_clients": 3, "clients_per_round": 3, "profiles": [{"bitwidth": 8}]}},
            "federation.profiles: a ClientApp of your own (engine.client_app) trains at float32",
        ),
        ({"strategy": {"name": "heterofl"}}, "strategy.name: 'heterofl' needs fedsparse's clients"),
        ({"engine": {"client_app": "tests.no_such_module:app"}}, "engine.client_app: cannot import 'tests.no_such"),
        ({"engine": {"client_app": "tests.stock_clientapp:Net"}}, "engine.client_app: 'tests.stock_clientapp:Net' is"),
        ({"engine": {"client_app": "tests.stock_clientapp:app", "backend": "flower-ray"}}, "engine.backend: a"),
        ({"engine": {"client_app": "no colon"}}, "engine.client_app: expected 'package.module:attribute'"),
        ({"engine": {"client_run_config": {"lr": 0.1}}}, "engine.client_run_config: set only with engine.client_app"),
    ],
)
def test_what_only_fedsparses_clients_do_is_refused_in_one_line(change: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config({**stock_config(), **change})
    assert any(problem.startswith(line) for problem in caught.value.problems), caught.value.problems
    assert all("\n" not in problem for problem in caught.value.problems)
