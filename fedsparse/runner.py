"""One experiment, start to finish, in this process: what ``fedsparse run`` and
``fedsparse compare`` both do for each run.

Data problems are found before any engine starts (:func:`check_data`), so a missing
folder or an impossible split is one clear line, not a traceback from inside a worker.
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedsparse import startup
from fedsparse.config import ExperimentConfig
from fedsparse.runlog import FILE_ONLY, run_log

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp


log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """The run could not start or finish; the message is the one line to show the user."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; the message is the one line to show the user
    (the last completed round and how to continue)."""


def io_problem(error: OSError) -> str:
    """``<path>: cannot write (No space left on device)``: an I/O error as one line naming its file."""
    where = error.filename if error.filename is not None else "output"
    return f"{where}: cannot write ({error.strerror or error})"


def interrupted_line(cfg: ExperimentConfig, run_dir: Path) -> str:
    """What a user needs after an interrupt: the last round whose checkpoint was written,
    and the command that continues the run from there."""
    from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

    total = cfg.federation.rounds
    if not cfg.output.checkpoint:
        return "interrupted; this run keeps no checkpoint (output.checkpoint is false), so it cannot be resumed"
    try:
        done = load_checkpoint(checkpoint_path(run_dir)).round
    except CheckpointError:
        return f"interrupted before round 1 of {total} was completed; nothing to resume, run it again"
    return (
        f"interrupted after round {done} of {total}; continue with: fedsparse run --resume {shlex.quote(str(run_dir))}"
    )


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


def new_run_dir(cfg: ExperimentConfig, stem: str) -> Path:
    """A folder for a new run in ``output.dir``: ``output.name``, else
    ``<stem>-<strategy>-<timestamp>`` (``-2``, ``-3``, … if that is taken)."""
    if cfg.output.name:
        return Path(cfg.output.dir) / cfg.output.name
    base = Path(cfg.output.dir) / f"{stem}-{cfg.strategy.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse a folder a new run must not write into: one holding a run (unless
    ``overwrite``), or one holding anything else."""
    from fedsparse.results import METRICS_FILE

    holds_run = (run_dir / METRICS_FILE).exists()
    if holds_run and not overwrite:
        raise RunFailed(f"{run_dir} already holds a run; pass --overwrite, --resume it, or choose another --out")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not holds_run:
        raise RunFailed(f"{run_dir} holds other files; a run goes into a new folder or replaces a run")


def client_state_root(cfg: ExperimentConfig, run_dir: Path) -> Path:
    """Where simulated nodes keep their own state (``client-<id>/`` each, written only for
    nodes whose learner keeps any), on every engine."""
    from fedsparse.results import CLIENT_STATE_DIR

    return run_dir / CLIENT_STATE_DIR


def report_client_state(run_dir: Path, root: Path) -> None:
    """Add what the nodes keep on disk (:func:`fedsparse.node_state.state_bytes`) to the
    run's ``summary.json``."""
    from fedsparse.node_state import state_bytes
    from fedsparse.results import read_summary, write_summary

    write_summary(run_dir, {**read_summary(run_dir), **state_bytes(root)})


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: Path,
    resume: bool = False,
    log_level: int | str = "INFO",
    client_app: ClientApp | None = None,
) -> dict[str, Any]:
    """Run ``cfg`` into ``run_dir`` on its configured engine; return the run's summary.
    :class:`RunFailed` (one line) if it cannot run or aggregated no round; its
    ``summary.json`` and ``run.log`` then say why too.

    With ``resume``, ``run_dir`` holds an interrupted run of ``cfg`` and its checkpoint:
    the run continues after the checkpoint's round. The run's records at ``log_level``
    and above go to ``run_dir/run.log`` (:mod:`fedsparse.runlog`), one line per start-up
    step among them; with ``output.progress`` the console names each step as it begins
    (:mod:`fedsparse.startup`). ``client_app``: the
    ClientApp the simulated nodes run (default: fedsparse's own).
    """
    from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
    from fedsparse.results import CLIENT_STATE_DIR, read_summary

    client_state = client_state_root(cfg, run_dir)
    if resume:
        try:
            load_checkpoint(checkpoint_path(run_dir))  # fail here, not inside the engine
        except CheckpointError as error:
            raise RunFailed(str(error)) from None
        if cfg.data.tasks is not None and not client_state.is_dir():
            raise RunFailed(
                f"{run_dir}: the clients' task-stream state was not saved ({CLIENT_STATE_DIR}/ is missing), "
                "so this run cannot be resumed exactly"
            )
    with startup.announcing(cfg.output.progress):
        startup.step(f"loading data ({cfg.data.dataset})")
        check_data(cfg)
        try:
            with run_log(run_dir, log_level, append=resume):
                startup.open_log()
                startup.step(f"starting the {cfg.engine.backend} engine")
                _run_logged(cfg, run_dir, resume, client_app, client_state)
        except OSError as error:  # run.log has it, unless run.log itself could not be written
            raise RunFailed(io_problem(error)) from None
    report_client_state(run_dir, client_state)
    return read_summary(run_dir)


def _run_logged(
    cfg: ExperimentConfig, run_dir: Path, resume: bool, client_app: ClientApp | None, client_state: Path
) -> None:
    """Run on the engine with run.log open: a failure or an interrupt is its last line."""
    from fedsparse.app import make_server_app
    from fedsparse.engine import run_engine
    from fedsparse.server import FederationError

    try:
        run_engine(cfg, make_server_app(cfg, run_dir, resume), client_app, client_state_root=client_state)
    except FederationError as error:  # run.log has it already (fedsparse.app.run_into)
        raise RunFailed(str(error)) from None
    except OSError as error:
        log.error("run failed: %s", io_problem(error), extra=FILE_ONLY)
        raise
    except KeyboardInterrupt:
        line = interrupted_line(cfg, run_dir)
        log.warning(line, extra=FILE_ONLY)
        raise RunInterrupted(line) from None
