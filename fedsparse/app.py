"""The fedsparse ServerApp.

``make_server_app`` builds one bound to a validated config and run directory (what
``fedsparse run`` hands to the simulation engine). The module-level ``server_app`` is the
``[tool.flwr.app.components]`` entry for ``flwr run``: it reads the YAML path from the
run config key ``config`` and the output folder from ``out``, both confined to their
roots (:mod:`fedsparse.deployment`), and writes the run folder a simulated run gets,
``run.log`` included. Under Flower's local simulation the experiment has one client per
simulated SuperNode (:func:`fedsparse.deployment.fitted_to_simulation`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedsparse.checkpoint import checkpoint_path, load_checkpoint
from fedsparse.compat import simulated_supernodes
from fedsparse.config import ConfigError, ExperimentConfig, dump_config, load_config
from fedsparse.deployment import deployed_paths, fitted_to_simulation
from fedsparse.results import RunWriter
from fedsparse.runlog import run_log
from fedsparse.server import FederationError, serve

log = logging.getLogger(__name__)


def run_into(grid: Grid, cfg: ExperimentConfig, run_dir: Path, resume: bool = False, deployed: bool = False) -> None:
    """Run ``cfg`` into ``run_dir``; with ``resume``, continue from the folder's checkpoint;
    ``deployed``: on real devices (:class:`fedsparse.federation.Federation`). A
    :class:`FederationError` is logged as the run's last line, then raised."""
    try:
        if resume:
            checkpoint = load_checkpoint(checkpoint_path(run_dir))
            writer = RunWriter.resuming(run_dir, checkpoint, dump_config(cfg))
            serve(grid, cfg, writer, checkpoint, deployed=deployed)
        else:
            serve(grid, cfg, RunWriter(run_dir, dump_config(cfg)), deployed=deployed)
    except FederationError as error:
        log.error("run failed: %s", error)
        raise
    if cfg.output.plots:
        from fedsparse.plots import plot_run

        plot_run(run_dir)


def make_server_app(cfg: ExperimentConfig, run_dir: Path, resume: bool = False) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_into(grid, cfg, run_dir, resume)

    return app


server_app = ServerApp()


@server_app.main()
def deployed_main(grid: Grid, context: Context) -> None:
    """Refuses (raises, so Flower marks the run failed) before reading or writing anything
    if ``config`` or ``out`` escapes its root; raises too (the run is failed, with the
    reason) when the federation cannot run or aggregated no round, or when Flower's local
    simulation has SuperNodes the config cannot take as its clients (within seconds)."""
    paths = deployed_paths(grid.run, context.run_config)
    cfg = load_config(paths.config)
    supernodes = simulated_supernodes(grid)
    if cfg.federation.clock is None and supernodes is None:  # real devices: a declared profile is only a hint
        cfg = cfg.model_copy(update={"federation": cfg.federation.model_copy(update={"clock": "measured"})})
    with run_log(paths.run_dir):
        try:
            cfg = fitted_to_simulation(cfg, supernodes)
        except ConfigError as error:
            log.error("run failed: %s", error)
            raise
        run_into(grid, cfg, paths.run_dir, deployed=supernodes is None)
