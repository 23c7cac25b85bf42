"""How a running federation shows itself: one line per round in the run log, and on
the console a live display on a terminal or one plain line per round elsewhere (a pipe,
a batch job's output file, a notebook)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from fedsparse import protocol
from fedsparse.callbacks.base import Callback, RoundResult
from fedsparse.results import megabytes

if TYPE_CHECKING:
    from fedsparse.ledger import ByteLedger
    from fedsparse.server import RoundLoop

log = logging.getLogger(__name__)


def round_line(result: RoundResult, rounds: int, ledger: ByteLedger) -> str:
    """``round 3/15 · accuracy 0.8123 · validation 0.8050 · 1.23 MB · 1 rejected`` (what
    happened so far; validation where data.validation holds a set out)."""
    accuracy = result.evaluation.get("accuracy")
    parts = [f"round {result.server_round}/{rounds}"]
    parts.append("accuracy -" if accuracy is None else f"accuracy {accuracy:.4f}")
    if protocol.VAL_ACCURACY in result.evaluation:
        parts.append(f"validation {result.evaluation[protocol.VAL_ACCURACY]:.4f}")
    parts.append(f"{megabytes(ledger.total('up') + ledger.total('down')):.2f} MB")
    if result.outcome.rejected:
        parts.append(f"{len(result.outcome.rejected)} rejected")
    if result.outcome.skipped:
        parts.append("skipped")
    return " · ".join(parts)


class RoundLog(Callback):
    """One INFO record per round (it lands in the run's ``run.log``)."""

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        cfg = loop.federation.cfg
        self.ledger, self.rounds = loop.ledger, cfg.federation.rounds
        found = len(loop.directory.clients())
        self.gpu_share = cfg.engine.client_resources.num_gpus > 0
        log.info(
            "%s on %s: %d clients (%d found), rounds %d-%d",
            cfg.strategy.name,
            cfg.data.dataset,
            cfg.federation.num_clients,
            found,
            first_round,
            self.rounds,
        )

    def after_round(self, result: RoundResult) -> None:
        log.info(round_line(result, self.rounds, self.ledger))
        on_cpu = [c["id"] for c in (result.row or {}).get("clients", []) if c.get(protocol.DEVICE) == "cpu"]
        if self.gpu_share and on_cpu:
            log.warning("clients %s were given a GPU share but trained on the CPU: no CUDA where they ran", on_cpu)
            self.gpu_share = False  # said once

    def on_train_end(self, summary: dict[str, Any]) -> None:
        log.info("finished (%s): final accuracy %s", summary["status"], summary.get("final_accuracy"))


class ProgressDisplay(Callback):
    """Round, accuracy and cumulative MB on the console (``output.progress``): a live
    display on a terminal, else one plain line per round on ``stream``. Inside a round the
    live display counts the clients that have answered (``clients 3/5``), on the engines
    that report replies one by one (:meth:`Callback.on_reply`)."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream
        self.live: Progress | None = None
        self.task: TaskID | None = None

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.ledger, self.rounds = loop.ledger, loop.federation.cfg.federation.rounds
        stream = self.stream or sys.stdout
        if self.enabled and stream.isatty():
            self.live = Progress(
                TextColumn("[bold]round"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("acc {task.fields[accuracy]}"),
                TextColumn("{task.fields[megabytes]:.2f} MB"),
                TextColumn("{task.fields[clients]}"),
                TimeElapsedColumn(),
            )
            self.task = self.live.add_task(
                "rounds", total=self.rounds, completed=first_round - 1, accuracy="-", megabytes=0.0, clients=""
            )
            self.live.start()

    def on_reply(self, server_round: int, done: int, sent: int) -> None:
        if self.live is not None and self.task is not None:
            self.live.update(self.task, clients=f"clients {done}/{sent}")

    def after_round(self, result: RoundResult) -> None:
        if not self.enabled:
            return
        if self.live is None:
            print(round_line(result, self.rounds, self.ledger), file=self.stream or sys.stdout, flush=True)
            return
        assert self.task is not None
        accuracy = result.evaluation.get("accuracy")
        moved = megabytes(self.ledger.total("up") + self.ledger.total("down"))
        fields: dict[str, Any] = {"megabytes": moved, "clients": ""}
        if accuracy is not None:
            fields["accuracy"] = f"{accuracy:.4f}"
        self.live.update(self.task, completed=result.server_round, **fields)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
