"""The Flower apps the deployment tests submit, and what a finished run must show.

The project's own app is this repository (its pyproject.toml, configs/deployment.yaml);
two small apps mix fedsparse with plain Flower, one either way round.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import ArrayRecord

from fedsparse.models import build_model

HERE = Path(__file__).resolve().parent
STOCK_APP = HERE / "stock_app"  # fedsparse's ServerApp, stock Flower ClientApps
FEDAVG_APP = HERE / "fedavg_app"  # Flower's FedAvg ServerApp, fedsparse's ClientApp

RUN_SECONDS = 300.0  # bound on one run, start to finish, on a loaded 2-core machine
# Digits (10 classes, chance 0.10), measured with these configs: 0.83 after the 2 rounds
# of configs/deployment.yaml (0.80 with a device killed after round 1), 0.80 for the
# stock clients' and 0.81 for Flower's FedAvg single round.
MIN_ACCURACY = 0.6


def model_bytes(name: str, **options: object) -> int:
    """One float32 copy of a digits model on the wire, by Flower's own count."""
    return ArrayRecord(build_model(name, (1, 8, 8), 10, **options).state_dict()).count_bytes()
