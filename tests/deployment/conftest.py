"""Fixtures for the deployment tests: federations of real Flower processes, always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .processes import Federation

NODES = 3


def node_config(partition: int) -> str:
    """A device's ``--node-config``: its partition, and the profile configs/deployment.yaml
    gives every client (``edge``, float32), declared."""
    return f'partition-id={partition} num-partitions={NODES} profile="edge" bitwidth=32'


@pytest.fixture(scope="session")
def shared_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One insecure SuperLink with three SuperNodes for every test that leaves them
    running: SuperNodes serve whichever app a run brings, so runs of different apps
    share them (starting a federation costs ~10 s of the 2 cores)."""
    fed = Federation(tmp_path_factory.mktemp("shared"))
    try:
        fed.start_superlink()
        fed.start_supernodes({f"node{i}": node_config(i) for i in range(NODES)})
        yield fed
    finally:
        fed.close()


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Callable[..., Federation]]:
    """``federation(**options)`` builds a :class:`Federation` under ``tmp_path``; every
    process any of them started is stopped at teardown, whatever the test did."""
    made: list[Federation] = []

    def make(**options: object) -> Federation:
        made.append(Federation(tmp_path / f"federation-{len(made)}", **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for built in made:
        built.close()
