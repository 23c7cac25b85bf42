"""How the project's app fits an experiment to Flower's local simulation (`flwr run .`):
one client per simulated SuperNode, or one line saying why the config cannot have them.
The run itself: tests/deployment/test_flwr_run.py."""

from __future__ import annotations

import pytest

from fedsparse.config import ConfigError, load_config
from fedsparse.deployment import fitted_to_simulation

from .conftest import REPO


def test_the_experiment_takes_its_client_count_from_the_simulated_supernodes() -> None:
    cfg = load_config(REPO / "configs" / "deployment.yaml")  # 3 clients, 3 a round, 2 replies needed
    assert fitted_to_simulation(cfg, None) is cfg and fitted_to_simulation(cfg, 3) is cfg
    fed = fitted_to_simulation(cfg, 2).federation
    assert (fed.num_clients, fed.clients_per_round, fed.min_replies) == (2, 2, 2)
    fed = fitted_to_simulation(cfg, 10).federation
    assert (fed.num_clients, fed.clients_per_round, fed.min_replies) == (10, 3, 2)


def test_supernodes_the_config_cannot_take_are_one_line() -> None:
    cfg = load_config(
        REPO / "configs" / "deployment.yaml",
        ["data.partition.method=pathological", "data.partition.classes_per_client=4"],
    )
    with pytest.raises(ConfigError) as caught:
        fitted_to_simulation(cfg, 2)
    (line,) = caught.value.problems
    assert line.startswith("2 simulated SuperNode(s) cannot be the config's clients (data.partition.classes_per_client")
    assert line.endswith("run with --federation-config num-supernodes=3 to keep the config's count")


def test_only_flowers_simulation_runtime_has_a_supernode_count() -> None:
    """fedsparse's own engines and real SuperLinks keep the config's client count."""
    from flwr.clientapp import ClientApp

    from fedsparse.compat import new_run, simulated_supernodes
    from fedsparse.inline import InlineGrid

    assert simulated_supernodes(InlineGrid(ClientApp(), 3, new_run())) is None
