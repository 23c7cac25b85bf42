"""The callback contract of the round loop (the pattern of pfl-research's
``TrainingProcessCallback``).

After every round the loop hands each callback, in order, the round's
:class:`RoundResult`: evaluators add to ``result.evaluation``, later callbacks read it.
The metrics writer builds the round's row once the evaluators ran (it reads the loop's
ledger, evaluation traffic included), writes it and sets ``result.row``; callbacks after
it (the experiment trackers) read that row, never build their own. Then the
checkpointer and the progress display. A callback with state that
a resumed run needs names its part of the checkpoint (``key``) and returns it as JSON-able
values; the loop gives those values back, under the same key, when a run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from flwr.app import Message

from fedsparse.screening import Rejection

if TYPE_CHECKING:
    from fedsparse.server import RoundLoop


@dataclass
class RoundOutcome:
    """What the training part of a round produced."""

    accepted: list[Message] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: bool = False
    client_seconds: dict[int, float] = field(default_factory=dict)  # simulation clock, per client
    train_metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoundResult:
    """One finished round: its outcome, when it started (``time.perf_counter()``), what
    evaluators found, and the metrics row (``None`` until the metrics writer set it: the
    very object written to ``metrics.jsonl``; read it, do not change it)."""

    server_round: int
    outcome: RoundOutcome
    started: float
    evaluation: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] | None = None


class Callback:
    """A no-op callback; subclasses override what they need."""

    key: ClassVar[str] = ""  # the name of its part of the checkpoint; "": it has none

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        """Before the first round this process runs (``first_round`` > 1 when resuming)."""

    def on_reply(self, server_round: int, done: int, sent: int) -> None:
        """Inside a round, as each client's reply arrives: ``done`` of the ``sent`` messages
        of the current exchange (training, then any client evaluation) have answered or
        run out of time. Only on the engines whose grid reports replies one by one (inline, ray)."""

    def after_round(self, result: RoundResult) -> None:
        """After each round, in the loop's callback order."""

    def on_train_end(self, summary: dict[str, Any]) -> None:
        """After the last round, with the summary so far (a callback may add to it)."""

    def close(self) -> None:
        """Always called last, also when the run fails: release what the callback holds."""

    def checkpoint_values(self) -> Any:
        """This callback's part of the checkpoint (JSON-able); only if ``key`` is set."""
        return None

    def restore_values(self, values: Any) -> None:
        """The inverse of :meth:`checkpoint_values`, before the first resumed round."""
