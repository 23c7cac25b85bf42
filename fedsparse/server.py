"""The server's round loop, run inside the ServerApp on whatever Grid the engine gives.

It does what every strategy shares: client discovery, building the strategy, and each
round: configure, send (through the byte meter), screen the replies (reject, log, go
on), skip a round with too few valid replies, aggregate, account the simulation clock.
Everything else (evaluation, metrics rows, checkpoints, progress, the summary) is a
callback (:mod:`fedsparse.callbacks`), run in order after every round.

At the end the loop judges the run (:func:`run_status`): a run that aggregated no round
has failed (its summary says so and why, then :class:`FederationError` is raised, so
``fedsparse run`` exits non-zero and Flower marks a deployed run failed); one that
skipped more than ``federation.max_skipped_share`` of its rounds warns, with the most
frequent rejection reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from flwr.app import ArrayRecord, Message
from flwr.serverapp import Grid

from fedsparse import capabilities, startup
from fedsparse.callbacks import (
    Callback,
    Checkpointer,
    ClientEvaluation,
    FinalMetrics,
    MetricsWriter,
    ProgressDisplay,
    RoundLog,
    RoundOutcome,
    RoundResult,
    ServerEvaluation,
    TaskMetrics,
    tracker_callbacks,
)
from fedsparse.catalog import STRATEGIES
from fedsparse.checkpoint import Checkpoint, restore_rng_of
from fedsparse.clock import round_seconds
from fedsparse.config import ExperimentConfig
from fedsparse.devices import Assignment
from fedsparse.federation import Federation
from fedsparse.ledger import ByteLedger
from fedsparse.metering import MeteredGrid
from fedsparse.models import count_parameters
from fedsparse.nodes import NodeDirectory, discover
from fedsparse.results import RunWriter
from fedsparse.screening import Rejection, RejectionTally, screen_replies
from fedsparse.strategy import Strategy

log = logging.getLogger(__name__)


class FederationError(RuntimeError):
    """The federation cannot run (e.g. no node answered) or ran without aggregating a
    round; the message is one line saying why."""


TOP_REJECTIONS = 3  # the rejection kinds a summary lists and a failure names


def run_status(
    rounds: int, skipped: int, rejections: RejectionTally, max_skipped_share: float
) -> tuple[str, str | None]:
    """``("ok" | "degraded" | "failed", why)`` of a run that ran ``rounds`` rounds and
    skipped ``skipped`` of them; ``why`` is one line (None when ok), naming the most
    frequent rejection kinds."""
    if skipped <= max_skipped_share * rounds and skipped < rounds:
        return "ok", None
    top = rejections.top(TOP_REJECTIONS)
    reasons = "; ".join(f"{entry['count']}x {entry['reason']!r}" for entry in top) or "none"
    if skipped >= rounds:
        return "failed", f"no round aggregated ({skipped} of {rounds} skipped); rejected replies: {reasons}"
    return "degraded", (
        f"{skipped} of {rounds} rounds skipped (federation.max_skipped_share is {max_skipped_share:g}); "
        f"rejected replies: {reasons}"
    )


def default_callbacks(cfg: ExperimentConfig, writer: RunWriter) -> list[Callback]:
    """Evaluation first (later callbacks read what it found), then output: the metrics
    writer builds the row that the experiment trackers after it log."""
    callbacks: list[Callback] = [ClientEvaluation(), ServerEvaluation(), TaskMetrics(), FinalMetrics()]
    callbacks.append(MetricsWriter(writer))
    callbacks += tracker_callbacks(cfg.output)
    if cfg.output.checkpoint:
        callbacks.append(Checkpointer())
    callbacks += [RoundLog(), ProgressDisplay(cfg.output.progress)]
    return callbacks


def reply_listener(callbacks: Sequence[Callback], grid: MeteredGrid) -> Callable[[int, int], None]:
    """What the engine's grid calls as each reply arrives (``done`` of ``sent``): every
    callback's :meth:`~fedsparse.callbacks.Callback.on_reply`, with the grid's round."""

    def replied(done: int, sent: int) -> None:
        for callback in callbacks:
            callback.on_reply(grid.round, done, sent)

    return replied


class RoundLoop:
    def __init__(
        self,
        cfg: ExperimentConfig,
        grid: Grid,
        writer: RunWriter,
        callbacks: Sequence[Callback] | None = None,
        resume_from: Checkpoint | None = None,
        deployed: bool = False,
    ) -> None:
        """``deployed``: the clients are real devices with data of their own (:class:`Federation`)."""
        startup.step(f"building the model ({cfg.model.name})")
        self.federation = Federation(cfg, deployed)
        self.writer = writer
        self.callbacks = list(callbacks) if callbacks is not None else default_callbacks(cfg, writer)
        self.resume_from = resume_from
        self.ledger = ByteLedger()
        self.grid = MeteredGrid(grid, self.ledger)
        self.directory = NodeDirectory()
        self.skipped = 0
        self.rejections = RejectionTally()  # every round's, for the summary
        self.sim_seconds_total = 0.0
        self.first_round = 1  # of this process (a resumed run starts after its checkpoint)
        self.arrays = ArrayRecord()  # the global model (or the part the strategy shares)
        self.strategy: Strategy

    # ------------------------------------------------------------------ setup
    def _discover(self) -> None:
        fed = self.federation.cfg.federation
        self.directory = discover(
            self.grid,
            expected=fed.num_clients,
            timeout=fed.round_timeout,
            vet=Assignment(fed.num_clients, fed.profiles).contradiction,
        )
        found = len(self.directory.clients())
        if found < fed.clients_per_round:
            raise FederationError(
                f"only {found} client(s) answered; federation.clients_per_round needs {fed.clients_per_round}"
            )

    def _build_strategy(self) -> Strategy:
        cfg = self.federation.cfg
        strategy = STRATEGIES.get(cfg.strategy.name).build(
            cfg.strategy_params(), self.federation.strategy_context(self.directory)
        )
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy {cfg.strategy.name!r} is not a fedsparse.strategy.Strategy")
        return strategy

    # ------------------------------------------------------------------ one round
    def train_round(self, server_round: int) -> RoundOutcome:
        fed = self.federation.cfg.federation
        config = self.federation.task.to_config()
        messages = list(self.strategy.configure_train(server_round, self.arrays, config, self.grid))
        replies = self.grid.send_and_receive(messages, timeout=fed.round_timeout)
        accepted, rejected = screen_replies(
            messages,
            replies,
            self.directory.client_of,
            example_bound=lambda client: self.federation.example_bound(client, server_round, self.directory),
        )
        seconds = self.federation.client_seconds(messages, self.directory, self.ledger, server_round, accepted)
        if fed.deadline_seconds is not None:
            accepted, rejected, seconds = self._enforce_deadline(accepted, rejected, seconds, fed.deadline_seconds)
        outcome = RoundOutcome(accepted=accepted, rejected=rejected, client_seconds=seconds)
        valid = (self.directory.client_of(m.metadata.src_node_id) for m in accepted)
        if not (self.federation.clock_mode == "measured" and server_round == self.first_round):
            # a measured first round also times each process's warm-up (kernels, caches): not learned from
            capabilities.observe_round_times(self.strategy, server_round, {client: seconds[client] for client in valid})
        if len(accepted) < fed.min_replies:
            log.warning(
                "round %d skipped: %d valid replies, federation.min_replies is %d",
                server_round,
                len(accepted),
                fed.min_replies,
            )
            outcome.skipped = True
            return outcome
        arrays, metrics = self.strategy.aggregate_train(server_round, accepted)
        if arrays is None:
            outcome.skipped = True
            return outcome
        self.arrays = arrays
        outcome.train_metrics = dict(metrics or {})
        return outcome

    def _enforce_deadline(
        self, accepted: list[Message], rejected: list[Rejection], seconds: dict[int, float], deadline: float
    ) -> tuple[list[Message], list[Rejection], dict[int, float]]:
        """Drop the replies of clients slower than ``deadline`` (simulated seconds); the
        server waited for them only until then. Their bytes stay in the ledger: they were sent."""
        clients = [self.directory.client_of(m.metadata.src_node_id) for m in accepted]
        on_time = [m for m, client in zip(accepted, clients, strict=True) if seconds[client] <= deadline]
        missed = [
            Rejection(client, f"missed the {deadline:g} s deadline (simulated {seconds[client]:.3g} s)")
            for client in clients
            if seconds[client] > deadline
        ]
        if missed:
            log.info("%d client(s) missed the deadline: %s", len(missed), [r.client for r in missed])
        return on_time, [*rejected, *missed], {client: min(time, deadline) for client, time in seconds.items()}

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, server_round: int) -> Checkpoint:
        """Everything the next round depends on, after ``server_round``: the global model,
        the strategy's state, the ledger, the loop's counters and each callback's part."""
        state = capabilities.checkpoint_state(self.strategy)
        records = {"global": self.arrays, **{f"strategy.{name}": r for name, r in state.records.items()}}
        values: dict[str, Any] = {
            "strategy": state.values,
            "ledger": self.ledger.rows(),
            "sim_seconds_total": self.sim_seconds_total,
            "skipped": self.skipped,
            "rejections": self.rejections.values(),
            "callbacks": {c.key: c.checkpoint_values() for c in self.callbacks if c.key},
        }
        return Checkpoint(server_round, records, values)

    def _restore(self, checkpoint: Checkpoint) -> int:
        """Put the loop, its strategy and callbacks back at the end of the checkpoint's round."""
        records, values = checkpoint.records, checkpoint.values
        state = capabilities.StrategyState(capabilities.under_prefix(records, "strategy."), values["strategy"])
        capabilities.restore_checkpoint_state(self.strategy, state)
        self.arrays = records["global"]
        self.ledger.load_rows(values["ledger"])
        self.sim_seconds_total = float(values["sim_seconds_total"])
        self.skipped = int(values["skipped"])
        # a checkpoint of an older format has no tally: rejections count from the resume on
        self.rejections = RejectionTally.from_values(values.get("rejections", []))
        for callback in self.callbacks:
            if callback.key:
                callback.restore_values(values["callbacks"][callback.key])
        restore_rng_of(checkpoint)
        log.info("resuming after round %d of %d", checkpoint.round, self.federation.cfg.federation.rounds)
        return checkpoint.round

    # ------------------------------------------------------------------ main
    def run(self) -> dict[str, Any]:
        fed = self.federation.cfg.federation
        started = time.perf_counter()
        startup.step(f"finding the {fed.num_clients} clients")
        self._discover()
        startup.step(f"preparing round 1 ({self.federation.cfg.strategy.name})")
        self.strategy = self._build_strategy()
        self.arrays = self.strategy.initial_arrays(self.federation.model)
        done = 0 if self.resume_from is None else self._restore(self.resume_from)
        self.first_round = done + 1
        self.grid.report_replies(reply_listener(self.callbacks, self.grid))
        try:
            for callback in self.callbacks:
                callback.on_train_begin(self, done + 1)
            startup.first_round()
            for server_round in range(done + 1, fed.rounds + 1):
                self.grid.begin_round(server_round, self.directory.client_of)
                round_start = time.perf_counter()
                outcome = self.train_round(server_round)
                self.skipped += outcome.skipped
                self.rejections.add(outcome.rejected)
                self.sim_seconds_total += round_seconds(outcome.client_seconds)
                result = RoundResult(server_round, outcome, round_start)
                for callback in self.callbacks:
                    callback.after_round(result)
                self.writer.commit_round()  # the row, where no checkpointer wrote it with its checkpoint
            summary = self.summary(time.perf_counter() - started)
            if summary["status"] == "degraded":
                log.warning(summary["status_reason"])
            for callback in self.callbacks:
                callback.on_train_end(summary)
        finally:
            for callback in self.callbacks:
                callback.close()
        if summary["status"] == "failed":
            raise FederationError(summary["status_reason"])
        return summary

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        """What the loop itself knows at the end, the run's status among it; callbacks add their part."""
        cfg = self.federation.cfg
        fed = cfg.federation
        status, reason = run_status(fed.rounds, self.skipped, self.rejections, fed.max_skipped_share)
        return {
            "status": status,
            "status_reason": reason,
            "rounds_completed": fed.rounds,
            "rounds_aggregated": fed.rounds - self.skipped,
            "rounds_skipped": self.skipped,
            "replies_rejected": self.rejections.total(),
            "top_rejections": self.rejections.top(TOP_REJECTIONS),
            "model_parameters": count_parameters(self.federation.model),
            "bytes_up_total": self.ledger.total("up"),
            "bytes_down_total": self.ledger.total("down"),
            "wall_seconds": round(wall_seconds, 3),
            "sim_seconds_total": round(self.sim_seconds_total, 4),
            "strategy": cfg.strategy.name,
            "dataset": cfg.data.dataset,
            "num_clients": cfg.federation.num_clients,
            "clients_discovered": len(self.directory.clients()),
        }


def serve(
    grid: Grid,
    cfg: ExperimentConfig,
    writer: RunWriter,
    resume_from: Checkpoint | None = None,
    deployed: bool = False,
) -> dict[str, Any]:
    """Run the federation; its summary, or :class:`FederationError` (after the summary is
    written) if it cannot run or aggregated no round."""
    return RoundLoop(cfg, grid, writer, resume_from=resume_from, deployed=deployed).run()
