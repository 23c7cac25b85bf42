"""Run a ServerApp and the fedsparse ClientApp on Flower's simulation engine (Ray)."""

from __future__ import annotations

import logging
import os

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from fedsparse.config import ExperimentConfig


def ray_backend_config(cfg: ExperimentConfig) -> dict:  # type: ignore[type-arg]
    """Client resources from the config; a private Ray instance unless an address is set.

    ``ray.init()`` with no address attaches to any cluster another process started on
    the machine, so the default is ``address="local"``.
    """
    resources = cfg.engine.client_resources
    init_args: dict[str, object] = {
        "address": cfg.engine.ray_address or "local",
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    return {
        "client_resources": {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
        "init_args": init_args,
    }


def run_on_ray(cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp | None = None) -> None:
    """Blocks until the ServerApp returns; Ray is shut down afterwards, always."""
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    import ray
    from flwr.simulation import run_simulation

    if client_app is None:
        from fedsparse.clients.app import app as client_app

    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=cfg.federation.num_clients,
            backend_name="ray",
            backend_config=ray_backend_config(cfg),
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
