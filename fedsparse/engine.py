"""Run a ServerApp and a ClientApp on the configured engine: inline (in-process) or Ray.

Both engines run the very same apps; ``engine.backend`` only picks how messages travel.
Ray stays the engine for GPUs shared by parallel clients and for clusters
(``engine.ray_address``); the inline engine (:mod:`fedsparse.inline`) is the fast one on
a single machine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from fedsparse.config import ExperimentConfig


def ray_backend_config(cfg: ExperimentConfig) -> dict:
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


def _fedsparse_client_app() -> ClientApp:
    from fedsparse.clients.app import app

    return app


def run_engine(
    cfg: ExperimentConfig,
    server_app: ServerApp,
    client_app: ClientApp | None = None,
    client_state_root: Path | None = None,
) -> None:
    """Run on ``cfg.engine.backend``; blocks until the ServerApp returns.

    ``client_state_root``: nodes keep their state on disk there (inline engine only: Ray's
    simulated nodes get no node config beyond their partition).
    """
    client_app = client_app or _fedsparse_client_app()
    if cfg.engine.backend == "inline":
        run_inline(cfg, server_app, client_app, client_state_root)
    else:
        run_on_ray(cfg, server_app, client_app)


def run_inline(
    cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp, client_state_root: Path | None = None
) -> None:
    """The ServerApp in this thread, each message a direct ClientApp call.

    The run and task identity are set up as ``flwr.simulation.run_simulation`` does, so
    Messages the ServerApp builds carry a valid run id and source node.
    """
    from flwr.app import Context, RecordDict

    from fedsparse.compat import SUPERLINK_NODE_ID, new_run
    from fedsparse.inline import InlineGrid, client_threads

    run = new_run()
    threads = client_threads(cfg.engine.client_resources.num_cpus)
    grid = InlineGrid(client_app, cfg.federation.num_clients, run, threads=threads, state_root=client_state_root)
    context = Context(run_id=run.run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={})
    server_app(grid, context)


def run_on_ray(cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp) -> None:
    """Flower's simulation engine; Ray is shut down afterwards, always."""
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    import ray
    from flwr.simulation import run_simulation

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
