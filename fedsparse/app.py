"""The fedsparse ServerApp.

``make_server_app`` builds one bound to a validated config and run directory (what
``fedsparse run`` hands to the simulation engine). The module-level ``server_app`` is the
``[tool.flwr.app.components]`` entry for ``flwr run``: it reads the YAML path from the
run config key ``config`` and the output folder from ``out``.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedsparse.checkpoint import checkpoint_path, load_checkpoint
from fedsparse.config import ExperimentConfig, dump_config, load_config
from fedsparse.results import RunWriter
from fedsparse.server import serve


def run_into(grid: Grid, cfg: ExperimentConfig, run_dir: Path, resume: bool = False) -> None:
    """Run ``cfg`` into ``run_dir``; with ``resume``, continue from the folder's checkpoint."""
    if resume:
        checkpoint = load_checkpoint(checkpoint_path(run_dir))
        serve(grid, cfg, RunWriter.resuming(run_dir, checkpoint.round), checkpoint)
    else:
        serve(grid, cfg, RunWriter(run_dir, dump_config(cfg)))
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
    cfg = load_config(str(context.run_config["config"]))
    run_into(grid, cfg, Path(str(context.run_config.get("out", "runs/deployment"))))
