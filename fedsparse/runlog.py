"""``run.log``: every run folder's timestamped record of what happened.

While a run executes, the ``fedsparse`` and ``flwr`` loggers also write to
``<run dir>/run.log`` (a new run starts the file, a resumed run appends to it): round
lines, warnings, rejected replies with their reasons, Flower's own records. Warnings
still reach the console when the application has configured no logging of its own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_LOG = "run.log"
LOGGERS = ("fedsparse", "flwr")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


FILE_ONLY = {"file_only": True}  # ``extra=`` of a record for run.log, not the console (the CLI prints its own line)


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class _DropDeprecationNotice(logging.Filter):
    """``run_simulation`` warns it is deprecated on every call; it is our engine, by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "deprecated" not in record.getMessage()


@contextmanager
def quiet_flower(verbose: bool) -> Iterator[None]:
    """Flower's console output down to warnings unless ``verbose`` (its records still
    reach the run log), and without its deprecation notice for ``run_simulation``."""
    flwr_logger = logging.getLogger("flwr")
    notice = _DropDeprecationNotice()
    flwr_logger.addFilter(notice)
    saved = [(handler, handler.level) for handler in flwr_logger.handlers]
    if not verbose:
        for handler, _ in saved:
            handler.setLevel(logging.WARNING)
    try:
        yield
    finally:
        flwr_logger.removeFilter(notice)
        for handler, level in saved:
            handler.setLevel(level)


@contextmanager
def run_log(run_dir: Path, level: int | str = logging.INFO, append: bool = False) -> Iterator[Path]:
    """Log to ``run_dir/run.log`` at ``level`` for the duration of the block."""
    path = run_dir / RUN_LOG
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a" if append else "w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    ours = logging.getLogger(LOGGERS[0])
    saved_level = ours.level
    ours.setLevel(min(handler.level, logging.WARNING))
    console = None
    if not ours.handlers and not logging.getLogger().handlers:  # keep warnings on the console
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.addFilter(_not_file_only)
        ours.addHandler(console)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield path
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        if console is not None:
            ours.removeHandler(console)
        ours.setLevel(saved_level)
        handler.close()
