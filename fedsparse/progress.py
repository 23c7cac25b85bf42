"""Live progress on the terminal: round, accuracy, cumulative MB."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RoundProgress:
    def __init__(self, total_rounds: int, enabled: bool, done: int = 0) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]round"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("acc {task.fields[accuracy]}"),
            TextColumn("{task.fields[megabytes]:.2f} MB"),
            TimeElapsedColumn(),
            disable=not enabled,
        )
        self._task = self._progress.add_task("rounds", total=total_rounds, completed=done, accuracy="-", megabytes=0.0)

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def update(self, completed_round: int, accuracy: float | None, megabytes: float) -> None:
        fields: dict[str, Any] = {"megabytes": megabytes}
        if accuracy is not None:
            fields["accuracy"] = f"{accuracy:.4f}"
        self._progress.update(self._task, completed=completed_round, **fields)
