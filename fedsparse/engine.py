"""Run a ServerApp and a ClientApp on the configured engine.

Every engine runs the very same apps; ``engine.backend`` only picks how messages travel:

* ``inline``: in this process (:mod:`fedsparse.inline`), the fast one on one machine;
* ``ray``: clients in Ray actors (:mod:`fedsparse.ray_grid`), for GPUs shared by
  parallel clients and for clusters (``engine.ray_address``);
* ``flower-ray``: Flower's own Ray simulation engine (``flwr.simulation.run_simulation``),
  the reference the other two are checked against.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedsparse import protocol
from fedsparse.compat import Run
from fedsparse.config import ExperimentConfig
from fedsparse.ray_grid import ray_init_args


def ray_backend_config(cfg: ExperimentConfig) -> dict:
    """Flower's Ray engine: client resources from the config, Ray started as :func:`ray_init_args` says."""
    resources = cfg.engine.client_resources
    return {
        "client_resources": {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
        "init_args": ray_init_args(cfg.engine.ray_address),
    }


def load_client_app(reference: str) -> ClientApp:
    """The ClientApp at ``reference`` (``package.module:attribute``), imported with the
    working folder on ``sys.path`` (as ``python -m`` has it, and as Ray's workers inherit
    it); ``ValueError`` in one line if it cannot be imported or is no ClientApp."""
    module_name, _, attribute = reference.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r} ({error})") from None
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attribute!r}") from None
    if not isinstance(found, ClientApp):
        raise ValueError(f"{reference!r} is a {type(found).__name__}, not a flwr.clientapp.ClientApp")
    return found


def configured_client_app(cfg: ExperimentConfig) -> ClientApp:
    """``engine.client_app`` when the config names one, else fedsparse's own ClientApp."""
    if cfg.engine.client_app is not None:
        return load_client_app(cfg.engine.client_app)
    from fedsparse.clients.app import app

    return app


def run_engine(
    cfg: ExperimentConfig,
    server_app: ServerApp,
    client_app: ClientApp | None = None,
    client_state_root: Path | None = None,
) -> None:
    """Run on ``cfg.engine.backend``; blocks until the ServerApp returns.

    ``client_state_root``: each node's ``Context.state`` is saved there after every round
    it trains, in ``client-<id>/``, and restored from there on resume
    (:mod:`fedsparse.node_state`). The inline and Ray engines save it on the driver, which
    holds every node's Context (a cluster needs no shared disk); on Flower's engine the
    ClientApp saves it where its actor runs (a cluster needs the folder shared).
    """
    app = client_app or configured_client_app(cfg)
    if cfg.engine.backend == "inline":
        run_inline(cfg, server_app, app, client_state_root)
    elif cfg.engine.backend == "ray":
        run_on_ray(cfg, server_app, app, client_state_root)
    else:
        run_on_flower_ray(
            cfg, server_app, app if client_state_root is None else with_state_dirs(app, client_state_root)
        )


def serve_on(grid: Grid, server_app: ServerApp, run: Run) -> None:
    """Run ``server_app`` on ``grid`` in this thread, with the run's ids as
    ``flwr.simulation.run_simulation`` sets them up (Messages the ServerApp builds carry a
    valid run id and source node)."""
    from flwr.app import RecordDict

    from fedsparse.compat import SUPERLINK_NODE_ID

    server_app(
        grid, Context(run_id=run.run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={})
    )


def run_inline(
    cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp, client_state_root: Path | None = None
) -> None:
    """The ServerApp in this thread, each message a direct ClientApp call."""
    from fedsparse.compat import new_run
    from fedsparse.inline import InlineGrid, client_threads

    run = new_run()
    run.override_config = dict(cfg.engine.client_run_config)  # every node's Context.run_config
    threads = client_threads(cfg.engine.client_resources.num_cpus)
    serve_on(
        InlineGrid(client_app, cfg.federation.num_clients, run, threads=threads, state_root=client_state_root),
        server_app,
        run,
    )


def run_on_ray(
    cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp, client_state_root: Path | None = None
) -> None:
    """fedsparse's Ray engine (:class:`fedsparse.ray_grid.RayGrid`) on a private Ray, or on
    the cluster at ``engine.ray_address``; its actors and the driver's Ray connection are
    stopped afterwards, always."""
    import ray

    from fedsparse.compat import new_run
    from fedsparse.ray_grid import RayGrid
    from fedsparse.task import ClientTask

    ray.init(**ray_init_args(cfg.engine.ray_address))
    try:
        run = new_run()
        run.override_config = dict(cfg.engine.client_run_config)  # every node's Context.run_config
        task = ClientTask.from_experiment(cfg)
        grid = RayGrid(
            client_app, task, cfg.federation.num_clients, run, cfg.engine.client_resources, state_root=client_state_root
        )
        try:
            serve_on(grid, server_app, run)
        finally:
            grid.close()
    finally:
        ray.shutdown()


def with_state_dirs(client_app: ClientApp, root: Path) -> ClientApp:
    """``client_app`` on nodes whose node config names ``root/client-<partition id>`` as
    their run's state folder (Flower's simulation gives its nodes only their partition)."""
    wrapper = ClientApp()

    def call(message: Message, context: Context) -> Message:
        partition = context.node_config[protocol.PARTITION_ID]
        context.node_config[protocol.RUN_STATE_DIR] = str(root / f"client-{partition}")
        return client_app(message, context)

    for register in (wrapper.train, wrapper.evaluate, wrapper.query):
        register()(call)
    return wrapper


def run_on_flower_ray(cfg: ExperimentConfig, server_app: ServerApp, client_app: ClientApp) -> None:
    """Flower's simulation engine; Ray is shut down afterwards, always."""
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
