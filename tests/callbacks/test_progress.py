"""The console's view of a round: the live display counts the replies inside a round."""

from __future__ import annotations

import io

from rich.progress import Progress, TextColumn

from fedsparse.callbacks.progress import ProgressDisplay


def live_display() -> ProgressDisplay:
    """A display as on a terminal, its live part not started (nothing drawn)."""
    display = ProgressDisplay(enabled=True, stream=io.StringIO())
    display.live = Progress(TextColumn("{task.fields[clients]}"))
    display.task = display.live.add_task("rounds", total=3, clients="")
    return display


def test_the_live_display_counts_the_clients_that_answered() -> None:
    display = live_display()
    assert display.live is not None and display.task is not None
    fields = display.live.tasks[0].fields
    display.on_reply(1, 2, 5)
    assert fields["clients"] == "clients 2/5"
    display.on_reply(1, 5, 5)
    assert fields["clients"] == "clients 5/5"


def test_without_a_terminal_replies_print_nothing() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(enabled=True, stream=stream)
    display.on_reply(1, 2, 5)
    assert stream.getvalue() == ""
