"""Ctrl-C and SIGTERM: where they may stop a run, and how the CLI turns them into one line.

A run may be interrupted anywhere except inside :func:`uninterrupted`, the few
milliseconds in which a round's checkpoint and its metrics line are written: a signal
arriving there is held and delivered when the block ends, so the two files always
describe the same last round.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd program


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block, then deliver the first one that came to the
    handler in place before it. Outside the main thread (where Python runs signal
    handlers) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in HELD_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler installed outside Python, left in place
                signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def sigterm_as_interrupt() -> None:
    """From now on SIGTERM (``kill``, a job scheduler's stop) ends this process as Ctrl-C
    does: a ``KeyboardInterrupt`` in the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
