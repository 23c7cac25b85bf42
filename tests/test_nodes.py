from __future__ import annotations

from fedsparse.devices import profile_counts, profile_index
from fedsparse.nodes import ClientSampler, NodeDirectory


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
