"""What a run does before its first round, said as it happens: one console line as each
start-up step begins (loading the data, partitioning it, starting the engine, building the
model, finding the clients), and one ``run.log`` line with each step's seconds.

The steps are marked where they happen (:func:`step`), in the runner, the data loader and
the round loop, which may run in another thread than the one that began the run (Flower's
engine serves the ServerApp in its own); a process runs one federation at a time, so the
announcer is the process's. Without one (a deployed ServerApp, a test calling the loop
directly, a Ray worker) every mark is a no-op. The module imports nothing heavy.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

log = logging.getLogger(__name__)

LOG_PREFIX = "start-up: "  # every run.log line of this module begins so


class Announcer:
    """The start-up of one run: its steps in order, each with its seconds once the next began."""

    def __init__(self, console: TextIO | None) -> None:
        """``console``: where each step is announced as it begins (``None``: nowhere)."""
        self.console = console
        self.began = time.perf_counter()
        self.current: tuple[str, float] | None = None
        self.finished: list[tuple[str, float]] = []  # (step, seconds), in order
        self.logging = False  # run.log is open: finished steps are logged as they finish
        self.lock = threading.Lock()

    def begin(self, what: str) -> None:
        """End the current step (if any) and begin ``what``, announcing it."""
        with self.lock:
            self._end_current()
            self.current = (what, time.perf_counter())
            if self.console is not None:
                print(f"{what}…", file=self.console, flush=True)

    def first_round(self) -> float:
        """End the last step; log and return the seconds since the start (of the command
        where ``fedsparse run`` began announcing, else of the run)."""
        with self.lock:
            self._end_current()
            total = time.perf_counter() - self.began
            if self.logging:
                log.info("%sround 1 begins %.2f s after the start", LOG_PREFIX, total)
            return total

    def open_log(self) -> None:
        """run.log is open: log the steps finished so far, and each later one as it finishes."""
        with self.lock:
            self.logging = True
            for what, seconds in self.finished:
                log.info("%s%s took %.2f s", LOG_PREFIX, what, seconds)

    def _end_current(self) -> None:
        if self.current is None:
            return
        what, began = self.current
        self.current = None
        seconds = time.perf_counter() - began
        self.finished.append((what, seconds))
        if self.logging:
            log.info("%s%s took %.2f s", LOG_PREFIX, what, seconds)


_active: Announcer | None = None


@contextmanager
def announcing(console: bool) -> Iterator[Announcer]:
    """The start-up of the run this block runs: its steps on stdout if ``console``, and
    in run.log once :meth:`Announcer.open_log` is called. One run at a time per process.

    Inside a block that already announces (``fedsparse run`` begins before it reads the
    config), the block goes on with that announcer, its console off unless ``console``."""
    global _active
    if _active is not None:
        if not console:
            _active.console = None
        yield _active
        return
    announcer = Announcer(sys.stdout if console else None)
    _active = announcer
    try:
        yield announcer
    finally:
        _active = None


def step(what: str) -> None:
    """Begin start-up step ``what`` (ending the one before) in the run being started, if any."""
    if _active is not None:
        _active.begin(what)


def open_log() -> None:
    """run.log is open (see :meth:`Announcer.open_log`); a no-op outside a run's start-up."""
    if _active is not None:
        _active.open_log()


def first_round() -> None:
    """The first round begins: the start-up is over, later marks are no-ops."""
    global _active
    if _active is not None:
        _active.first_round()
        _active = None
