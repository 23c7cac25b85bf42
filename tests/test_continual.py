"""Continual runs end to end on real digits: metrics rows and summary, bytes per strategy,
both engines (client state in Flower's Context survives Ray's actor processes), and the
config checks around ``data.tasks``."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from fedsparse.config import ConfigError, apply_overrides, read_yaml, validate_config
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.task import ClientTask
from fedsparse.wire import encode_state

from .conftest import REPO
from .helpers import DIGITS_STREAM, simulate, without_timings

DIGITS = (*DIGITS_STREAM, "federation.local_epochs=2")


def run(tmp_path: Path, strategy: str, *overrides: str) -> tuple[list[dict], dict]:  # type: ignore[type-arg]
    return simulate("fcl_split_mnist.yaml", tmp_path / strategy, *DIGITS, f"strategy.name={strategy}", *overrides)


@pytest.mark.parametrize("strategy", ["fedweit", "local"])
def test_client_state_survives_rounds_and_a_task_boundary_under_ray(tmp_path: Path, strategy: str) -> None:
    ray_rows, ray_summary = run(tmp_path / "ray", strategy, "engine.backend=ray")
    inline_rows, inline_summary = run(tmp_path / "inline", strategy, "engine.backend=inline")
    assert [without_timings(r) for r in ray_rows] == [without_timings(r) for r in inline_rows]
    assert without_timings(ray_summary) == without_timings(inline_summary)
    assert all(not row["rejected"] for row in ray_rows)
    # round 3 starts task 2; each client still knows task 1 from the state it kept
    first_task_end, after_boundary = ray_rows[1]["task_accuracy"], ray_rows[2]["task_accuracy"]
    assert ray_rows[2]["task"] == 2
    for client, accuracies in after_boundary.items():
        assert len(accuracies) == 2
        assert first_task_end[client][0] > 0.9
        assert accuracies[0] > first_task_end[client][0] - 0.1


def test_continual_rows_summary_and_bytes_for_every_strategy(tmp_path: Path) -> None:
    results = {name: run(tmp_path, name) for name in ("local", "fedavg", "fedprox", "fedweit")}
    local_ewc = run(tmp_path / "ewc", "local", "strategy.local.ewc_lambda=100")
    for name, (rows, summary) in results.items():
        assert [row["task"] for row in rows] == [1, 1, 2, 2]
        assert rows[0]["forgetting"] is None and rows[-1]["forgetting"] is not None
        assert summary["final_avg_task_accuracy"] == rows[-1]["avg_task_accuracy"] == summary["final_accuracy"]
        assert summary["final_forgetting"] == rows[-1]["forgetting"]
        assert summary["final_avg_task_accuracy"] > 0.85, name
        for row in rows:
            mean = sum(sum(a) / len(a) for a in row["task_accuracy"].values()) / len(row["task_accuracy"])
            assert row["avg_task_accuracy"] == pytest.approx(mean)
            assert 0.0 <= row["val_accuracy"] <= 1.0  # the tasks' validation splits (val_fraction 0.1)
            assert row["bytes_up"] == sum(c["bytes_up"] for c in row["clients"])
    assert results["local"][1]["bytes_up_total"] == results["local"][1]["bytes_down_total"] == 0
    assert results["fedprox"][1]["bytes_up_total"] == results["fedavg"][1]["bytes_up_total"] > 0
    # FedAvg and FedProx share the trunk only: each task's head stays with its client
    cfg = validate_config(apply_overrides(read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"), list(DIGITS)))
    net = ClientTask.from_experiment(cfg).initial_model()
    assert isinstance(net, MultiHeadNet)
    trunk_bytes = encode_state(net.body_state()).count_bytes()
    for row in results["fedavg"][0]:
        assert {c["bytes_up"] for c in row["clients"]} == {c["bytes_down"] for c in row["clients"]} == {trunk_bytes}
    # what a client keeps grows with the tasks it has seen, for every strategy
    for name, (rows, summary) in results.items():
        sizes = [row["model_size_bytes"] for row in rows]
        assert 0 < sizes[0] <= sizes[-1] == summary["final_model_size_bytes"], name
    assert results["local"][0][-1]["model_size_bytes"] == results["fedavg"][0][-1]["model_size_bytes"]
    for name in ("local", "fedavg", "fedprox"):  # nothing kept for training only
        assert all(row["state_size_bytes"] == row["model_size_bytes"] for row in results[name][0]), name
    # EWC on a local learner: its Fisher and anchor from the first task's end, then its penalty
    ewc_rows = local_ewc[0]
    assert [row["state_size_bytes"] > row["model_size_bytes"] for row in ewc_rows] == [False, True, True, True]
    assert [r["task_accuracy"] for r in ewc_rows[:2]] == [r["task_accuracy"] for r in results["local"][0][:2]]
    assert ewc_rows[2]["task_accuracy"] != results["local"][0][2]["task_accuracy"]
    # FedWeIT's state adds each finished task's stored theta (dense, one float32 per weight of B)
    weights = sum(m.weight.numel() for m in net.trunk.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    finished = [0, 1, 1, 2]  # tasks of 2 rounds: the second round of each ends one
    for row, done in zip(results["fedweit"][0], finished, strict=True):
        assert row["state_size_bytes"] - row["model_size_bytes"] == pytest.approx(4 * weights * done)
    assert results["fedweit"][1]["final_state_size_bytes"] == results["fedweit"][0][-1]["state_size_bytes"]
    weit_rows, weit = results["fedweit"]
    assert 0 < weit["bytes_up_total"] < results["fedavg"][1]["bytes_up_total"]
    # at a task's last round the clients add their A; at the next task's first, the knowledge comes down
    assert weit_rows[1]["bytes_up"] > weit_rows[0]["bytes_up"] == weit_rows[2]["bytes_up"]
    assert weit_rows[2]["bytes_down"] > 2 * weit_rows[3]["bytes_down"]


def test_without_task_validation_splits_rows_have_no_validation_accuracy(tmp_path: Path) -> None:
    rows, _ = run(tmp_path, "local", "data.tasks.val_fraction=0", "federation.lr_plateau=null")
    assert all("val_accuracy" not in row for row in rows)


def _problems(*overrides: str) -> list[str]:
    raw = apply_overrides(read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"), list(overrides))
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    return caught.value.problems


def test_task_stream_configs_are_checked_against_strategy_and_federation() -> None:
    assert _problems("data.tasks=null", "federation.lr_plateau=null") == [
        "strategy.name: 'fedweit' learns task streams; set data.tasks"
    ]
    assert _problems("strategy.name=heterofl")[0].startswith("strategy.name: 'heterofl' does not run task streams")
    assert _problems("federation.rounds=40") == [
        "federation.rounds: must be data.tasks.num_tasks × rounds_per_task = 50 (got 40)"
    ]
    assert any(p.startswith("federation.client_eval_every:") for p in _problems("federation.client_eval_every=1"))
    assert any(p.startswith("federation.profiles:") for p in _problems("federation.profiles=[{bitwidth: 8}]"))
    assert any(
        p.startswith("data.tasks.num_tasks:") for p in _problems("data.tasks.num_tasks=6", "federation.rounds=60")
    )
    assert _problems("data.tasks.orderr=fixed") == ["data.tasks.orderr: unknown field; did you mean 'order'?"]
    assert _problems("data.tasks=null", "strategy.name=fedprox", "strategy.fedprox.ewc_lambda=10") == [
        "strategy.fedprox.ewc_lambda: EWC works on task streams; set data.tasks, or ewc_lambda: 0",
        "federation.lr_plateau: schedules task streams only; set data.tasks",
    ]


@pytest.mark.parametrize("name", ["fcl_split_mnist.yaml", "fcl_permuted_mnist.yaml"])
def test_shipped_continual_configs_are_valid(name: str) -> None:
    cfg = validate_config(read_yaml(REPO / "configs" / name))
    assert cfg.data.tasks is not None and cfg.federation.rounds == cfg.data.tasks.total_rounds


def test_fedweit_ablations_share_no_knowledge_or_nothing_at_all(tmp_path: Path) -> None:
    full_rows, _ = run(tmp_path / "full", "fedweit")
    no_kb_rows, no_kb = run(tmp_path / "no_kb", "fedweit", "strategy.fedweit.knowledge_base=false")
    alone_rows, alone = run(tmp_path / "alone", "fedweit", "strategy.fedweit.communicate=false")
    assert alone["bytes_up_total"] == alone["bytes_down_total"] == 0
    assert all(not row["rejected"] for row in alone_rows + no_kb_rows)
    assert alone["final_avg_task_accuracy"] > 0.85 and no_kb["final_avg_task_accuracy"] > 0.85
    # without the knowledge base only the base travels: no A up at a task's end, no knowledge down after it
    assert no_kb_rows[1]["bytes_up"] == no_kb_rows[0]["bytes_up"] < full_rows[1]["bytes_up"]
    assert no_kb_rows[2]["bytes_down"] < 0.5 * full_rows[2]["bytes_down"]


def test_fedweit_with_half_the_clients_each_round_loses_no_reply(tmp_path: Path) -> None:
    rows, summary = run(
        tmp_path,
        "fedweit",
        "federation.clients_per_round=2",
        "federation.min_replies=1",
        "data.tasks.rounds_per_task=3",
        "federation.rounds=6",
    )
    assert all(not row["rejected"] and len(row["clients"]) == 2 for row in rows)
    assert summary["final_avg_task_accuracy"] > 0.8
