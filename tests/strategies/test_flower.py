"""Flower's own strategies by name: on the same replies, the aggregate is what Flower's
class computes; their server state survives a checkpoint; their YAML blocks are checked."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse.capabilities import checkpoint_state, restore_checkpoint_state
from fedsparse.catalog import STRATEGIES
from fedsparse.compat import new_run
from fedsparse.config import ConfigError
from fedsparse.inline import InlineGrid
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.strategies.flower import FLOWER_STRATEGIES
from fedsparse.strategy import StrategyContext

from ..helpers import config_of, reply_from

NODES = {100 + client: client for client in range(5)}
EXAMPLES = [30, 10, 50, 20, 40]


def _ours(name: str, **params: object):  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get(name)
    context = StrategyContext(ClientSampler(NodeDirectory(NODES), len(NODES), seed=0), client_eval=False)
    return spec.build(spec.params(**params), context)


def _flowers(name: str, **params: object):  # type: ignore[no-untyped-def]
    return FLOWER_STRATEGIES[name](min_available_nodes=1, min_train_nodes=1, **params)


def _model(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}


def _record(state: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({name: Array(value) for name, value in state.items()})


def _round(ours, flowers, grid, server_round: int, model, uploads):  # type: ignore[no-untyped-def]
    sent = list(ours.configure_train(server_round, _record(model), ConfigRecord(), grid))
    replies = [
        reply_from(message, _record(uploads[NODES[message.metadata.dst_node_id]]), {"num-examples": examples})
        for message, examples in zip(sent, EXAMPLES, strict=True)
    ]
    got, _ = ours.aggregate_train(server_round, replies)
    flowers.configure_train(server_round, _record(model), ConfigRecord(), grid)
    plain = [
        Message(
            RecordDict({"arrays": _record(uploads[c]), "metrics": MetricRecord({"num-examples": EXAMPLES[c]})}),
            dst_node_id=0,
            message_type=MessageType.TRAIN,
        )
        for c in range(len(NODES))
    ]
    expected, _ = flowers.aggregate_train(server_round, plain)
    return {k: got[k].numpy() for k in got}, {k: expected[k].numpy() for k in expected}


@pytest.fixture
def grid() -> InlineGrid:
    return InlineGrid(ClientApp(), 5, new_run())


PARAMS: dict[str, dict[str, object]] = {
    "fedavgm": {"server_momentum": 0.9, "server_learning_rate": 0.5},
    "multikrum": {"num_nodes_to_select": 3},
    "krum": {"num_malicious_nodes": 1},
}


@pytest.mark.parametrize("name", sorted(FLOWER_STRATEGIES))
def test_the_aggregate_is_flowers_own_on_the_same_replies(server_identity, grid, name: str) -> None:  # type: ignore[no-untyped-def]
    params = PARAMS.get(name, {})
    ours, flowers = _ours(name, **params), _flowers(name, **params)
    rng = np.random.default_rng(0)
    model = _model(rng)
    for server_round in (1, 2, 3):  # stateful ones (FedOpt moments, momentum) carry over rounds
        uploads = [
            {k: v + rng.normal(scale=0.1, size=v.shape).astype(np.float32) for k, v in model.items()} for _ in NODES
        ]
        got, expected = _round(ours, flowers, grid, server_round, model, uploads)
        for key in expected:
            assert got[key].dtype == np.float32
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)
        model = got


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad", "fedavgm"])
def test_a_restored_strategy_continues_with_the_same_server_state(server_identity, grid, name: str) -> None:  # type: ignore[no-untyped-def]
    params = PARAMS.get(name, {})
    rng = np.random.default_rng(1)
    model = _model(rng)
    first = _ours(name, **params)
    rounds = [
        [{k: v + rng.normal(size=v.shape).astype(np.float32) for k, v in model.items()} for _ in NODES] for _ in "ab"
    ]
    model, _ = _round(first, _flowers(name, **params), grid, 1, model, rounds[0])
    resumed = _ours(name, **params)
    restore_checkpoint_state(resumed, checkpoint_state(first))
    after_resume, _ = _round(resumed, _flowers(name, **params), grid, 2, model, rounds[1])
    uninterrupted, _ = _round(first, _flowers(name, **params), grid, 2, model, rounds[1])
    for key in uninterrupted:
        np.testing.assert_array_equal(after_resume[key], uninterrupted[key])
    assert checkpoint_state(first).records, f"{name} keeps server state; it must be checkpointed"


def test_a_flower_strategys_block_is_validated_like_any_other() -> None:
    with pytest.raises(ConfigError) as caught:
        config_of("quickstart.yaml", "strategy.name=fedadam", "strategy.fedadam.beta_1=1.5", "strategy.krum.bogus=1")
    assert "strategy.fedadam.beta_1: must be < 1.0" in caught.value.problems
    assert "strategy.krum.bogus: unknown field" in caught.value.problems
    cfg = config_of("quickstart.yaml", "strategy.name=fedtrimmedavg", "strategy.fedtrimmedavg.beta=0.1")
    assert cfg.strategy_params().model_dump() == {"beta": 0.1}


@pytest.mark.parametrize("name", ["fedadam", "krum", "fedmedian", "fedavgm"])
def test_a_run_meters_every_client_as_fedavgs_would(tmp_path, name: str) -> None:  # type: ignore[no-untyped-def]
    from fedsparse.results import read_metrics, read_summary
    from fedsparse.runner import run_experiment

    runs = {}
    for strategy in ("fedavg", name):
        run_experiment(
            config_of("quickstart.yaml", f"strategy.name={strategy}", "federation.rounds=2"), tmp_path / strategy
        )
        runs[strategy] = read_metrics(tmp_path / strategy)
    assert read_summary(tmp_path / name)["rounds_completed"] == 2
    for ours, reference in zip(runs[name], runs["fedavg"], strict=True):
        assert not ours["rejected"]
        metered = [(c["id"], c["bytes_up"], c["bytes_down"]) for c in ours["clients"]]
        assert metered == [(c["id"], c["bytes_up"], c["bytes_down"]) for c in reference["clients"]]
        assert all(up > 0 and down > 0 for _, up, down in metered)
