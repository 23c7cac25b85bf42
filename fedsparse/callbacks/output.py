"""What a run leaves behind: the latest evaluation, metrics rows and the summary,
checkpoints."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fedsparse import protocol
from fedsparse.callbacks.base import Callback, RoundResult
from fedsparse.checkpoint import with_rng
from fedsparse.results import RunWriter
from fedsparse.rows import round_row

if TYPE_CHECKING:
    from fedsparse.server import RoundLoop


class FinalMetrics(Callback):
    """The latest value of every evaluated metric, for the summary's ``final_*`` fields
    (the clients' own evaluation metrics too: ``final_client_<metric>``)."""

    key = "final"

    def __init__(self) -> None:
        self.final: dict[str, Any] = {}

    def after_round(self, result: RoundResult) -> None:
        self.final.update(result.evaluation)

    def on_train_end(self, summary: dict[str, Any]) -> None:
        summary["final_accuracy"] = self.final.get("accuracy")
        summary["final_loss"] = self.final.get("loss")
        summary["final_accuracy_by_bitwidth"] = self.final.get("accuracy_by_bitwidth")
        summary.update({f"final_{key}": value for key, value in self.final.items() if key.startswith("client_")})
        if protocol.VAL_ACCURACY in self.final:
            summary["final_val_accuracy"] = self.final[protocol.VAL_ACCURACY]
            summary["final_val_loss"] = self.final.get(protocol.VAL_LOSS)  # task streams report accuracy only

    def checkpoint_values(self) -> Any:
        return self.final

    def restore_values(self, values: Any) -> None:
        self.final = dict(values)


class MetricsWriter(Callback):
    """One ``metrics.jsonl`` line per round (:func:`fedsparse.rows.round_row` and the
    evaluation), also left in ``result.row`` for the callbacks after it; ``summary.json``
    at the end. It must come after every evaluator. The row is staged in the
    :class:`RunWriter`; the :class:`Checkpointer`, or else the loop at the round's end,
    commits it."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.loop = loop

    def after_round(self, result: RoundResult) -> None:
        row = round_row(self.loop, result.server_round, result.outcome, time.perf_counter() - result.started)
        result.row = {**row, **result.evaluation}
        self.writer.append_round(result.row)

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.writer.write_summary(summary)


class Checkpointer(Callback):
    """After every round, the whole state the next round depends on, in one file, written
    together with the round's metrics row (:meth:`RunWriter.commit_round`)."""

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.loop = loop

    def after_round(self, result: RoundResult) -> None:
        checkpoint = self.loop.checkpoint(result.server_round)
        self.loop.writer.commit_round(with_rng(checkpoint))
