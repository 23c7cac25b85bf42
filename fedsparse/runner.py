"""One experiment, start to finish, in this process: what ``fedsparse run`` and
``fedsparse compare`` both do for each run.

Data problems are found before any engine starts (:func:`check_data`), so a missing
folder or an impossible split is one clear line, not a traceback from inside a worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedsparse.config import ExperimentConfig


class RunFailed(RuntimeError):
    """The run could not start or finish; the message is the one line to show the user."""


def check_data(cfg: ExperimentConfig) -> None:
    """Load and partition once, so missing data fails before any engine starts."""
    from fedsparse.data import DataError
    from fedsparse.task import ClientTask

    try:
        ClientTask.from_experiment(cfg).federated_data()
    except DataError as error:
        raise RunFailed(f"data: {error}") from None
    except ValueError as error:  # a partitioner refusing the requested split
        raise RunFailed(f"data.partition: {error}") from None


def run_experiment(cfg: ExperimentConfig, run_dir: Path) -> dict[str, Any]:
    """Run ``cfg`` into ``run_dir`` on its configured engine; return the run's summary."""
    from fedsparse.app import make_server_app
    from fedsparse.engine import run_engine
    from fedsparse.results import read_summary
    from fedsparse.server import FederationError

    check_data(cfg)
    try:
        run_engine(cfg, make_server_app(cfg, run_dir))
    except FederationError as error:
        raise RunFailed(str(error)) from None
    return read_summary(run_dir)
