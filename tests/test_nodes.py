from __future__ import annotations

import logging

import pytest
from flwr.supercore.run import Run

from fedsparse.devices import profile_counts, profile_index
from fedsparse.inline import InlineGrid
from fedsparse.nodes import ClientSampler, NodeDirectory, discover


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
