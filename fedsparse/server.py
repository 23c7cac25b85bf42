"""The server's round loop, run inside the ServerApp on whatever Grid the engine gives.

It owns what every strategy shares: client discovery and seeded sampling, the byte
meter, screening of replies (reject, log, go on), skipping a round that has too few valid
replies, server-side evaluation, and writing one metrics line per round. Strategies only
configure messages and aggregate screened replies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from flwr.app import ArrayRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedsparse.config import ExperimentConfig
from fedsparse.ledger import ByteLedger
from fedsparse.metering import MeteredGrid
from fedsparse.models import count_parameters
from fedsparse.nodes import ClientSampler, NodeDirectory, discover
from fedsparse.progress import RoundProgress
from fedsparse.results import RunWriter
from fedsparse.screening import NUM_EXAMPLES, Rejection, screen_replies
from fedsparse.strategies import STRATEGIES, StrategyContext
from fedsparse.task import ClientTask
from fedsparse.training import evaluate, pick_device
from fedsparse.wire import encode_model, load_into

log = logging.getLogger("fedsparse")


class FederationError(RuntimeError):
    """The federation cannot run (e.g. no node answered); the message says why."""


@dataclass
class RoundOutcome:
    accepted: list[Message] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: bool = False
    train_metrics: dict[str, float] = field(default_factory=dict)


class FederationServer:
    def __init__(self, cfg: ExperimentConfig, grid: Grid, writer: RunWriter) -> None:
        self.cfg = cfg
        self.writer = writer
        self.ledger = ByteLedger()
        self.grid = MeteredGrid(grid, self.ledger)
        self.task = ClientTask.from_experiment(cfg)
        self.device = pick_device(self.task.use_gpu)
        self.test_set = self.task.federated_data().test
        torch.manual_seed(cfg.seed)
        self.model = self.task.build_model()
        self.arrays: ArrayRecord = encode_model(self.model)
        self.directory = NodeDirectory()

    # ------------------------------------------------------------------ setup
    def _discover(self) -> None:
        fed = self.cfg.federation
        self.directory = discover(self.grid, expected=fed.num_clients, timeout=fed.round_timeout)
        self.grid.client_of = self.directory.client_of
        found = len(self.directory.clients())
        if found < fed.clients_per_round:
            raise FederationError(
                f"only {found} client(s) answered; federation.clients_per_round needs {fed.clients_per_round}"
            )

    def _strategy(self) -> Strategy:
        fed = self.cfg.federation
        context = StrategyContext(
            sampler=ClientSampler(self.directory, fed.clients_per_round, self.cfg.seed),
            client_eval=fed.client_eval_every > 0,
        )
        spec = STRATEGIES.get(self.cfg.strategy.name)
        return spec.build(self.cfg.strategy_params(), context)

    # ------------------------------------------------------------------ rounds
    def _train_round(self, strategy: Strategy, server_round: int) -> RoundOutcome:
        fed = self.cfg.federation
        messages = list(strategy.configure_train(server_round, self.arrays, self.task.to_config(), self.grid))
        replies = self.grid.send_and_receive(messages, timeout=fed.round_timeout)
        accepted, rejected = screen_replies(messages, replies, self.directory.client_of)
        outcome = RoundOutcome(accepted=accepted, rejected=rejected)
        if len(accepted) < fed.min_replies:
            log.warning(
                "round %d skipped: %d valid replies, federation.min_replies is %d",
                server_round, len(accepted), fed.min_replies,
            )
            outcome.skipped = True
            return outcome
        arrays, metrics = strategy.aggregate_train(server_round, accepted)
        if arrays is None:
            outcome.skipped = True
            return outcome
        self.arrays = arrays
        outcome.train_metrics = dict(metrics or {})
        return outcome

    def _client_eval(self, strategy: Strategy, server_round: int) -> dict[str, float]:
        every = self.cfg.federation.client_eval_every
        if every == 0 or server_round % every:
            return {}
        messages = list(strategy.configure_evaluate(server_round, self.arrays, self.task.to_config(), self.grid))
        replies = self.grid.send_and_receive(messages, timeout=self.cfg.federation.round_timeout)
        accepted, _ = screen_replies(messages, replies, self.directory.client_of, with_arrays=False)
        metrics = strategy.aggregate_evaluate(server_round, accepted) if accepted else None
        return {f"client_{k}": v for k, v in dict(metrics or {}).items()}

    def _server_eval(self, server_round: int) -> dict[str, float]:
        fed = self.cfg.federation
        if server_round % fed.eval_every and server_round != fed.rounds:
            return {}
        load_into(self.model, self.arrays)
        stats = evaluate(self.model, self.test_set, self.device)
        return {"accuracy": stats.accuracy, "loss": stats.loss}

    def _row(self, server_round: int, outcome: RoundOutcome, seconds: float) -> dict[str, Any]:
        per_client = self.ledger.round_clients(server_round)
        examples = {
            self.directory.client_of(m.metadata.src_node_id): int(m.content.metric_records["metrics"][NUM_EXAMPLES])
            for m in outcome.accepted
            if "metrics" in m.content.metric_records
        }
        return {
            "round": server_round,
            "skipped": outcome.skipped,
            "bytes_up": self.ledger.round_total(server_round, "up"),
            "bytes_down": self.ledger.round_total(server_round, "down"),
            "clients": [
                {"id": cid, **counts, "num_examples": examples.get(cid)}
                for cid, counts in per_client.items()
            ],
            "rejected": [{"id": r.client, "reason": r.reason} for r in outcome.rejected],
            **outcome.train_metrics,
            "round_seconds": round(seconds, 4),
        }

    # ------------------------------------------------------------------ main
    def run(self) -> dict[str, Any]:
        fed = self.cfg.federation
        started = time.perf_counter()
        self._discover()
        strategy = self._strategy()
        final: dict[str, float] = {}
        skipped = 0
        with RoundProgress(fed.rounds, self.cfg.output.progress) as progress:
            for server_round in range(1, fed.rounds + 1):
                self.grid.round = server_round
                round_start = time.perf_counter()
                outcome = self._train_round(strategy, server_round)
                skipped += outcome.skipped
                evaluation = {**self._client_eval(strategy, server_round), **self._server_eval(server_round)}
                row = self._row(server_round, outcome, time.perf_counter() - round_start)
                row.update(evaluation)
                self.writer.append_round(row)
                final.update(evaluation)
                megabytes = (self.ledger.total("up") + self.ledger.total("down")) / 1e6
                progress.update(server_round, evaluation.get("accuracy"), megabytes)
        summary = {
            "final_accuracy": final.get("accuracy"),
            "final_loss": final.get("loss"),
            "rounds_completed": fed.rounds,
            "rounds_skipped": skipped,
            "model_parameters": count_parameters(self.model),
            "bytes_up_total": self.ledger.total("up"),
            "bytes_down_total": self.ledger.total("down"),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "strategy": self.cfg.strategy.name,
            "dataset": self.cfg.data.dataset,
            "num_clients": fed.num_clients,
            "clients_discovered": len(self.directory.clients()),
        }
        self.writer.write_summary(summary)
        return summary


def serve(grid: Grid, cfg: ExperimentConfig, writer: RunWriter) -> dict[str, Any]:
    return FederationServer(cfg, grid, writer).run()

