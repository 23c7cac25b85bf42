from __future__ import annotations

import logging

import pytest
from flwr.supercore.run import Run

from fedsparse.devices import profile_counts, profile_index
from fedsparse.inline import InlineGrid
from fedsparse.nodes import ClientSampler, NodeDirectory, discover
from fedsparse.screening import ExampleBound


def directory(n: int) -> NodeDirectory:
    return NodeDirectory({7000 + 13 * c: c for c in range(n)})


def test_sampling_is_seeded_by_client_id_not_node_id() -> None:
    a = ClientSampler(directory(20), 5, seed=1)
    shuffled = NodeDirectory(dict(reversed(list(directory(20).client_by_node.items()))))
    b = ClientSampler(shuffled, 5, seed=1)
    assert a.sample(3) == b.sample(3)
    assert len(set(a.sample(3))) == 5
    assert a.sample(3) != a.sample(4)
    assert a.sample(3) != ClientSampler(directory(20), 5, seed=2).sample(3)


def test_all_clients_when_per_round_covers_them() -> None:
    nodes = ClientSampler(directory(4), 10, seed=0).sample(1)
    assert sorted(directory(4).client_of(n) for n in nodes) == [0, 1, 2, 3]


def test_profile_counts_always_cover_every_client() -> None:
    assert profile_counts(3, [0.5, 0.5]) == [2, 1]
    assert profile_counts(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert sum(profile_counts(7, [0.33, 0.33, 0.34])) == 7
    assert [profile_index(c, 10, [0.5, 0.3, 0.2]) for c in range(10)] == [0] * 5 + [1] * 3 + [2] * 2


class LateJoiningGrid(InlineGrid):
    """The fedsparse ClientApp on nodes that connect one more per ``get_node_ids`` call,
    as when an engine is still registering nodes after the ServerApp started."""

    def __init__(self, num_nodes: int, first: int) -> None:
        from fedsparse.clients.app import app

        super().__init__(app, num_nodes, Run.create_empty(run_id=1))
        self.visible = first

    def get_node_ids(self) -> list[int]:
        nodes = list(super().get_node_ids())[: self.visible]
        self.visible += 1
        return nodes


@pytest.mark.usefixtures("server_identity")
def test_discovery_waits_for_every_expected_node() -> None:
    directory = discover(LateJoiningGrid(12, first=3), expected=12, timeout=30)
    assert directory.clients() == list(range(12))


@pytest.mark.usefixtures("server_identity")
def test_discovery_goes_on_with_the_nodes_there_at_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    grid = LateJoiningGrid(1000, first=2)
    with caplog.at_level(logging.WARNING, logger="fedsparse"):
        directory = discover(grid, expected=1000, timeout=0.2)
    assert 2 <= len(directory.clients()) < 1000
    assert "of 1000 nodes connected" in caplog.text


def _declaring_grid(num_nodes: int, declared: dict[int, dict[str, object]]) -> InlineGrid:
    """The fedsparse ClientApp on nodes whose node config adds ``declared[partition]``."""
    from fedsparse.clients.app import app

    grid = InlineGrid(app, num_nodes, Run.create_empty(run_id=1))
    for node in grid.get_node_ids():
        config = grid.context_of(node).node_config
        config.update(declared.get(int(config["partition-id"]), {}))  # type: ignore[arg-type]
    return grid


@pytest.mark.usefixtures("server_identity")
def test_a_node_contradicting_its_profile_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    from fedsparse.config import ProfileConfig
    from fedsparse.devices import Assignment

    profiles = [ProfileConfig(name="pi", share=0.5, bitwidth=8), ProfileConfig(name="laptop", share=0.5)]
    declared = {0: {"profile": "pi", "bitwidth": 8}, 1: {"bitwidth": 32}, 2: {"profile": "laptop"}, 3: {"bitwidth": 8}}
    with caplog.at_level(logging.WARNING, logger="fedsparse"):
        found = discover(_declaring_grid(4, declared), 4, 30, vet=Assignment(4, profiles).contradiction)
    assert found.clients() == [0, 2]
    assert "bitwidth=32, the config assigns 8 to client 1" in caplog.text
    assert "bitwidth=8, the config assigns 32 to client 3" in caplog.text
    assert caplog.text.count("left out of the federation") == 2  # once each: not asked again


@pytest.mark.usefixtures("server_identity")
def test_a_deployed_device_is_bounded_by_what_it_declares_else_by_the_cap(quickstart_cfg) -> None:  # type: ignore[no-untyped-def]
    """Simulated, a reply's weight is bounded by the client's partition; deployed, by the
    num-examples the device declares, else federation.max_num_examples, else twice the
    largest partition. A declaration that is no positive count is not taken."""
    from fedsparse.federation import Federation

    declared = {0: {"num-examples": 5000}, 1: {"num-examples": 0}}
    found = discover(_declaring_grid(10, declared), 10, 30, attempts=1)
    assert found.declared_examples == {0: 5000} and 1 not in found.clients()

    simulated = Federation(quickstart_cfg)
    partitions = simulated.train_sizes
    assert simulated.example_bound(0, 1, found) == ExampleBound(partitions[0], "training samples this client holds")
    deployed = Federation(quickstart_cfg, deployed=True)
    assert deployed.example_bound(0, 1, found) == ExampleBound(5000, "examples its node config declares")
    default = deployed.example_bound(2, 1, found)
    assert default is not None and default.limit == 2 * max(partitions) and "max_num_examples" in default.basis
    assert deployed.example_bound(10, 1, found) is None  # not a client of this federation: asked nothing

    capped = quickstart_cfg.model_copy(deep=True)
    capped.federation.max_num_examples = 300
    bound = Federation(capped, deployed=True).example_bound(2, 1, found)
    assert bound == ExampleBound(300, "examples federation.max_num_examples allows")


def test_declarations_against_the_assignment() -> None:
    from fedsparse.config import ProfileConfig
    from fedsparse.devices import Assignment
    from fedsparse.nodes import Declaration

    check = Assignment(3, [ProfileConfig(name="edge")]).contradiction
    assert check(Declaration(2, num_partitions=3, bitwidth=32, profile="edge")) is None
    assert check(Declaration(1)) is None  # a device may declare nothing
    assert "outside 0..2" in str(check(Declaration(3)))
    assert "num-partitions=10" in str(check(Declaration(0, num_partitions=10)))
    assert "profile='phone'" in str(check(Declaration(0, profile="phone")))


@pytest.mark.usefixtures("server_identity")
def test_stock_clients_take_the_client_ids_nobody_claimed(caplog: pytest.LogCaptureFixture) -> None:
    """A Flower ClientApp without a query handler answers the identity query with an
    error; such nodes are served under the free ids, in node-id order."""
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

    from fedsparse.clients.app import app as fedsparse_app

    stock = ClientApp()  # registers no query handler, as a stock Flower client

    def mixed(message: Message, context: Context) -> Message:
        return (stock if int(context.node_config["partition-id"]) in (0, 2) else fedsparse_app)(message, context)

    grid = InlineGrid(mixed, 4, Run.create_empty(run_id=1))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="fedsparse"):
        found = discover(grid, expected=4, timeout=30)
    stock_nodes = sorted(n for n in grid.get_node_ids() if grid.context_of(n).node_config["partition-id"] in (0, 2))
    identified = {
        n: int(grid.context_of(n).node_config["partition-id"]) for n in grid.get_node_ids() if n not in stock_nodes
    }
    assert {n: found.client_of(n) for n in identified} == identified  # 1 and 3 keep their ids
    assert [found.client_of(n) for n in stock_nodes] == [0, 2]
    assert caplog.text.count("has no query handler") == 2
    assert "asking again" not in caplog.text
