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

from flwr.app import ArrayRecord, Message
from flwr.serverapp import Grid

from fedsparse.checkpoint import Checkpoint, checkpoint_path, restore_rng_of, save_checkpoint, with_rng
from fedsparse.config import ExperimentConfig
from fedsparse.clock import SimulationClock, round_seconds
from fedsparse.devices import Assignment, client_devices, client_precisions, client_widths, precision_of
from fedsparse.ledger import ByteLedger
from fedsparse.metering import MeteredGrid
from fedsparse.models import count_parameters
from fedsparse.nodes import ClientSampler, NodeDirectory, discover
from fedsparse.progress import RoundProgress
from fedsparse.quant import quantize_state
from fedsparse.results import RunWriter
from fedsparse.continual_metrics import TaskAccuracyLog
from fedsparse.screening import ARRAYS, NUM_EXAMPLES, TASK_ACCURACY, Rejection, screen_replies
from fedsparse.strategies import STRATEGIES, StrategyContext
from fedsparse.strategies.fedavg import FedAvg, StrategyState, under_prefix
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
    client_seconds: dict[int, float] = field(default_factory=dict)  # simulation clock, per client
    train_metrics: dict[str, float] = field(default_factory=dict)


class FederationServer:
    def __init__(
        self, cfg: ExperimentConfig, grid: Grid, writer: RunWriter, resume_from: Checkpoint | None = None
    ) -> None:
        self.cfg = cfg
        self.writer = writer
        self.resume_from = resume_from
        self.skipped = 0
        self.final: dict[str, Any] = {}  # the latest evaluation of every metric
        self.ledger = ByteLedger()
        self.grid = MeteredGrid(grid, self.ledger)
        self.task = ClientTask.from_experiment(cfg)
        self.device = pick_device(self.task.use_gpu)
        # a continual run's data are the clients' task streams; otherwise partitions and a test set
        self.streams = self.task.continual_data() if cfg.data.tasks is not None else None
        if self.streams is None:
            data = self.task.federated_data()
            self.test_set, self.server_data, info = data.test, data.server, data.info
            self.train_sizes = [data.train_size(client) for client in range(cfg.federation.num_clients)]
        else:
            self.test_set, self.server_data, info = None, None, self.streams.info
            self.train_sizes = []
        self.task_log = TaskAccuracyLog()
        self.model = self.task.initial_model()
        self.arrays: ArrayRecord = encode_model(self.model)  # until the strategy says what it shares
        self.directory = NodeDirectory()
        fed = cfg.federation
        self.precisions = tuple(
            client_precisions(fed.num_clients, [p.bitwidth for p in fed.profiles], [p.share for p in fed.profiles])
        )
        # every format present, evaluated each round; least precise first
        self.eval_precisions = sorted(set(self.precisions), key=lambda p: p.rank)
        self.clock = SimulationClock(
            client_devices(fed.num_clients, fed.profiles),
            reference_flops=fed.reference_gflops * 1e9,
            input_shape=info.input_shape,
            build_model=self.task.build_model,
        )
        self.sim_seconds_total = 0.0

    # ------------------------------------------------------------------ setup
    def _discover(self) -> None:
        fed = self.cfg.federation
        self.directory = discover(
            self.grid, expected=fed.num_clients, timeout=fed.round_timeout,
            vet=Assignment(fed.num_clients, fed.profiles).contradiction,
        )
        self.grid.client_of = self.directory.client_of
        found = len(self.directory.clients())
        if found < fed.clients_per_round:
            raise FederationError(
                f"only {found} client(s) answered; federation.clients_per_round needs {fed.clients_per_round}"
            )

    def _strategy(self) -> FedAvg:
        fed = self.cfg.federation
        context = StrategyContext(
            sampler=ClientSampler(self.directory, fed.clients_per_round, self.cfg.seed),
            client_eval=fed.client_eval_every > 0,
            precisions=self.precisions,
            build_model=self.task.build_model,
            server_data=self.server_data,
            seed=self.cfg.seed,
            widths=tuple(client_widths(fed.num_clients, fed.profiles)),
            tasks=self.cfg.data.tasks,
        )
        spec = STRATEGIES.get(self.cfg.strategy.name)
        strategy = spec.build(self.cfg.strategy_params(), context)
        assert isinstance(strategy, FedAvg), "fedsparse strategies build on strategies.fedavg.FedAvg"
        return strategy

    # ------------------------------------------------------------------ rounds
    def _train_round(self, strategy: FedAvg, server_round: int) -> RoundOutcome:
        fed = self.cfg.federation
        messages = list(strategy.configure_train(server_round, self.arrays, self.task.to_config(), self.grid))
        replies = self.grid.send_and_receive(messages, timeout=fed.round_timeout)
        accepted, rejected = screen_replies(
            messages, replies, self.directory.client_of, example_limit=self._train_size_or_none
        )
        outcome = RoundOutcome(accepted=accepted, rejected=rejected, client_seconds=self._client_seconds(messages))
        valid = (self.directory.client_of(m.metadata.src_node_id) for m in accepted)
        strategy.observe_round_times(server_round, {client: outcome.client_seconds[client] for client in valid})
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

    def _client_seconds(self, messages: list[Message]) -> dict[int, float]:
        """Simulated seconds of every client asked to train this round.

        Compute: training FLOPs of the model it was sent (a sub-model counts as such) on
        its partition for the configured epochs; transfer: the bytes the ledger saw it
        receive and send this round. A client whose reply was rejected still took that
        time: a synchronous server waited for it.
        """
        moved = self.ledger.round_clients(self.grid.round)
        full_model = tuple((name, tuple(t.shape)) for name, t in self.model.state_dict().items())
        seconds = {}
        for message in messages:
            client = self.directory.client_of(message.metadata.dst_node_id)
            sent = message.content.array_records.get(ARRAYS)  # none: the client trains its own model
            shapes = full_model if sent is None else tuple((name, tuple(a.shape)) for name, a in sent.items())
            traffic = moved.get(client, {})
            seconds[client] = self.clock.client_seconds(
                client,
                shapes,
                samples=self._train_size(client),
                epochs=self.cfg.federation.local_epochs,
                bytes_moved=traffic.get("bytes_up", 0) + traffic.get("bytes_down", 0),
            )
        return seconds

    def _train_size(self, client: int) -> int:
        """Samples ``client`` trains on this round: its partition, or its current task's share."""
        if self.streams is None:
            return self.train_sizes[client]
        return self.streams.train_size(client, self.streams.stage_of_round(self.grid.round))

    def _train_size_or_none(self, client: int) -> int | None:
        """The bound on a client's ``num-examples``; none for an id outside the federation."""
        return self._train_size(client) if 0 <= client < self.cfg.federation.num_clients else None

    def _task_metrics(self, server_round: int, outcome: RoundOutcome) -> dict[str, Any]:
        """Continual runs: the stream position and the task accuracies clients reported."""
        if self.streams is None:
            return {}
        reports = {
            self.directory.client_of(m.metadata.src_node_id): list(m.content.metric_records["metrics"][TASK_ACCURACY])
            for m in outcome.accepted
        }
        summary = self.task_log.record_round(reports)
        return {
            "task": self.streams.stage_of_round(server_round) + 1,
            **summary,
            "accuracy": summary["avg_task_accuracy"],
            "task_accuracy": {str(client): accuracies for client, accuracies in sorted(reports.items())},
        }

    def _client_eval(self, strategy: FedAvg, server_round: int) -> dict[str, float]:
        every = self.cfg.federation.client_eval_every
        if every == 0 or server_round % every:
            return {}
        messages = list(strategy.configure_evaluate(server_round, self.arrays, self.task.to_config(), self.grid))
        replies = self.grid.send_and_receive(messages, timeout=self.cfg.federation.round_timeout)
        accepted, _ = screen_replies(messages, replies, self.directory.client_of, with_arrays=False)
        metrics = strategy.aggregate_evaluate(server_round, accepted) if accepted else None
        return {f"client_{k}": v for k, v in dict(metrics or {}).items()}

    def _server_eval(self, strategy: FedAvg, server_round: int) -> dict[str, Any]:
        """Test accuracy of the model each format's clients hold, quantized to that format.

        ``accuracy`` and ``loss`` are the means over the formats present (with every
        client at float32, simply the global model's).
        """
        fed = self.cfg.federation
        if self.streams is not None:
            return {}  # per-client models: the clients evaluate their own tasks
        if server_round % fed.eval_every and server_round != fed.rounds:
            return {}
        by_bitwidth: dict[str, float] = {}
        losses = []
        for precision in self.eval_precisions:
            load_into(self.model, strategy.model_for(precision, self.arrays))
            if not precision.is_float32:
                self.model.load_state_dict(quantize_state(self.model.state_dict(), precision))
            assert self.test_set is not None
            stats = evaluate(self.model, self.test_set, self.device)
            by_bitwidth[precision.label] = stats.accuracy
            losses.append(stats.loss)
        return {
            "accuracy": sum(by_bitwidth.values()) / len(by_bitwidth),
            "loss": sum(losses) / len(losses),
            "accuracy_by_bitwidth": by_bitwidth,
        }

    def _bitwidth(self, client: int) -> str:
        return precision_of(self.precisions, client).label

    def _row(self, strategy: FedAvg, server_round: int, outcome: RoundOutcome, seconds: float) -> dict[str, Any]:
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
                {
                    "id": cid,
                    **counts,
                    "num_examples": examples.get(cid),
                    "bitwidth": self._bitwidth(cid),
                    "pruned_rate": strategy.pruned_rate(cid),
                    "sim_seconds": round(outcome.client_seconds.get(cid, 0.0), 4),
                }
                for cid, counts in per_client.items()
            ],
            "rejected": [{"id": r.client, "reason": r.reason} for r in outcome.rejected],
            **outcome.train_metrics,
            "round_seconds": round(seconds, 4),
            "sim_seconds": round(round_seconds(outcome.client_seconds), 4),
            "sim_seconds_total": round(self.sim_seconds_total, 4),
        }

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, strategy: FedAvg, server_round: int) -> None:
        """Everything the next round depends on, after ``server_round`` is written out."""
        state = strategy.checkpoint_state()
        records = {"global": self.arrays, **{f"strategy.{name}": r for name, r in state.records.items()}}
        values = {
            "strategy": state.values,
            "ledger": self.ledger.rows(),
            "sim_seconds_total": self.sim_seconds_total,
            "skipped": self.skipped,
            "final": self.final,
            "task_log": {str(client): best for client, best in self.task_log.best.items()},
        }
        save_checkpoint(checkpoint_path(self.writer.run_dir), with_rng(Checkpoint(server_round, records, values)))

    def _restore(self, strategy: FedAvg, checkpoint: Checkpoint) -> int:
        """Put the server and ``strategy`` back at the end of the checkpoint's round; return it."""
        strategy.restore_checkpoint_state(
            StrategyState(under_prefix(checkpoint.records, "strategy."), checkpoint.values["strategy"])
        )
        values = checkpoint.values
        self.arrays = checkpoint.records["global"]
        self.ledger.load_rows(values["ledger"])
        self.sim_seconds_total = float(values["sim_seconds_total"])
        self.skipped = int(values["skipped"])
        self.final = dict(values["final"])
        self.task_log.best = {int(client): list(best) for client, best in values["task_log"].items()}
        restore_rng_of(checkpoint)
        log.info("resuming after round %d of %d", checkpoint.round, self.cfg.federation.rounds)
        return checkpoint.round

    # ------------------------------------------------------------------ main
    def run(self) -> dict[str, Any]:
        fed = self.cfg.federation
        started = time.perf_counter()
        self._discover()
        strategy = self._strategy()
        self.arrays = strategy.initial_arrays_of(self.model)
        done = 0 if self.resume_from is None else self._restore(strategy, self.resume_from)
        with RoundProgress(fed.rounds, self.cfg.output.progress, done=done) as progress:
            for server_round in range(done + 1, fed.rounds + 1):
                self.grid.round = server_round
                round_start = time.perf_counter()
                outcome = self._train_round(strategy, server_round)
                self.skipped += outcome.skipped
                self.sim_seconds_total += round_seconds(outcome.client_seconds)
                evaluation = {
                    **self._client_eval(strategy, server_round),
                    **self._server_eval(strategy, server_round),
                    **self._task_metrics(server_round, outcome),
                }
                row = self._row(strategy, server_round, outcome, time.perf_counter() - round_start)
                row.update(evaluation)
                self.writer.append_round(row)
                self.final.update(evaluation)
                if self.cfg.output.checkpoint:
                    self._checkpoint(strategy, server_round)
                megabytes = (self.ledger.total("up") + self.ledger.total("down")) / 1e6
                progress.update(server_round, evaluation.get("accuracy"), megabytes)
        final = self.final
        summary = {
            "final_accuracy": final.get("accuracy"),
            "final_loss": final.get("loss"),
            "final_accuracy_by_bitwidth": final.get("accuracy_by_bitwidth"),
            "rounds_completed": fed.rounds,
            "rounds_skipped": self.skipped,
            "model_parameters": count_parameters(self.model),
            "bytes_up_total": self.ledger.total("up"),
            "bytes_down_total": self.ledger.total("down"),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "sim_seconds_total": round(self.sim_seconds_total, 4),
            **self._task_summary(final),
            "strategy": self.cfg.strategy.name,
            "dataset": self.cfg.data.dataset,
            "num_clients": fed.num_clients,
            "clients_discovered": len(self.directory.clients()),
        }
        self.writer.write_summary(summary)
        return summary


    def _task_summary(self, final: dict[str, Any]) -> dict[str, Any]:
        if self.streams is None:
            return {}
        return {
            "final_avg_task_accuracy": final.get("avg_task_accuracy"),
            "final_forgetting": final.get("forgetting"),
            "num_tasks": self.streams.config.num_tasks,
        }


def serve(
    grid: Grid, cfg: ExperimentConfig, writer: RunWriter, resume_from: Checkpoint | None = None
) -> dict[str, Any]:
    return FederationServer(cfg, grid, writer, resume_from).run()

