"""Evaluation after each round: on the server's test split per device format, on the
clients' validation splits (federated evaluation), and per task on task streams."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedsparse import protocol
from fedsparse.callbacks.base import Callback, RoundResult
from fedsparse.continual_metrics import TaskAccuracyLog
from fedsparse.data import ArrayDataset
from fedsparse.quant import quantize_state
from fedsparse.screening import screen_replies
from fedsparse.training import evaluate
from fedsparse.wire import load_into

if TYPE_CHECKING:
    from fedsparse.server import RoundLoop


class ServerEvaluation(Callback):
    """Accuracy and loss of the model each format's clients hold, quantized to that
    format, on the server's test split (``accuracy``, ``loss``, ``accuracy_by_bitwidth``)
    and on its validation split (``val_accuracy``, ``val_loss``) where ``data.validation``
    holds one out.

    Each is the mean over the formats present (with every client at float32, simply the
    global model's). Every ``federation.eval_every`` rounds and at the last; the test
    split only where ``federation.evaluate_test``; not on task streams, where the
    clients evaluate their own tasks.
    """

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.loop = loop

    def after_round(self, result: RoundResult) -> None:
        federation = self.loop.federation
        fed = federation.cfg.federation
        if result.server_round % fed.eval_every and result.server_round != fed.rounds:
            return
        test_set = federation.test_set if fed.evaluate_test else None
        if test_set is not None:
            by_bitwidth, loss = self._evaluate(test_set)
            result.evaluation.update(
                {
                    "accuracy": sum(by_bitwidth.values()) / len(by_bitwidth),
                    "loss": loss,
                    "accuracy_by_bitwidth": by_bitwidth,
                }
            )
        if federation.validation_set is not None:
            by_bitwidth, loss = self._evaluate(federation.validation_set)
            result.evaluation.update(
                {protocol.VAL_ACCURACY: sum(by_bitwidth.values()) / len(by_bitwidth), protocol.VAL_LOSS: loss}
            )

    def _evaluate(self, data: ArrayDataset) -> tuple[dict[str, float], float]:
        """Accuracy by format label and the mean loss over formats, on ``data``."""
        loop, federation = self.loop, self.loop.federation
        model = federation.model
        by_bitwidth: dict[str, float] = {}
        losses = []
        for precision in federation.eval_precisions:
            load_into(model, loop.strategy.model_for(precision, loop.arrays))
            if not precision.is_float32:
                model.load_state_dict(quantize_state(model.state_dict(), precision))
            stats = evaluate(model, data, federation.device)
            by_bitwidth[precision.label] = stats.accuracy
            losses.append(stats.loss)
        return by_bitwidth, sum(losses) / len(losses)


class ClientEvaluation(Callback):
    """Federated evaluation every ``federation.client_eval_every`` rounds (0: never):
    the clients' validation metrics, example-weighted, as ``client_<metric>``."""

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.loop = loop

    def after_round(self, result: RoundResult) -> None:
        loop = self.loop
        every = loop.federation.cfg.federation.client_eval_every
        if every == 0 or result.server_round % every:
            return
        config = loop.federation.task.to_config()
        messages = list(loop.strategy.configure_evaluate(result.server_round, loop.arrays, config, loop.grid))
        replies = loop.grid.send_and_receive(messages, timeout=loop.federation.cfg.federation.round_timeout)
        accepted, _ = screen_replies(messages, replies, loop.directory.client_of, with_arrays=False)
        metrics = loop.strategy.aggregate_evaluate(result.server_round, accepted) if accepted else None
        result.evaluation.update({f"client_{k}": v for k, v in dict(metrics or {}).items()})


# a task-stream client's sizes (metric key → row and summary name): what it keeps to
# serve all its tasks, and its whole state (with what only further training needs)
SIZE_KEYS = {protocol.MODEL_SIZE: "model_size_bytes", protocol.STATE_SIZE: "state_size_bytes"}


class TaskMetrics(Callback):
    """Task streams: the stream position, average task accuracy and forgetting from the
    accuracies the training clients reported (:mod:`fedsparse.continual_metrics`),
    ``val_accuracy`` (where tasks hold a validation split out: the mean over the round's
    training clients of their mean accuracy over their tasks' validation splits), and
    ``model_size_bytes`` / ``state_size_bytes``, the mean over them of what each keeps
    to serve all its tasks / in all (with what only further training needs)."""

    key = "task_log"

    def __init__(self) -> None:
        self.log = TaskAccuracyLog()
        self.latest: dict[str, float | None] = {}  # the last round's average task accuracy and forgetting

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.loop = loop

    def after_round(self, result: RoundResult) -> None:
        streams = self.loop.federation.streams
        if streams is None:
            return
        client_of = self.loop.directory.client_of
        reports: dict[int, list[float]] = {}
        validation: list[float] = []  # each reporting client's mean over its tasks' validation splits
        sizes: dict[str, list[float]] = {SIZE_KEYS[key]: [] for key in SIZE_KEYS}
        for reply in result.outcome.accepted:
            metrics = protocol.metrics_of(reply.content)
            assert metrics is not None, "task-stream replies are screened for their metrics"
            reports[client_of(reply.metadata.src_node_id)] = list(metrics[protocol.TASK_ACCURACY])  # type: ignore[arg-type]
            val = list(metrics.get(protocol.TASK_VAL_ACCURACY, []))  # type: ignore[arg-type]
            if val:
                validation.append(sum(val) / len(val))
            for key, name in SIZE_KEYS.items():
                if key in metrics:
                    sizes[name].append(float(metrics[key]))  # type: ignore[arg-type]
        summary: dict[str, float | None] = {
            **self.log.record_round(reports),
            **{name: sum(values) / len(values) if values else None for name, values in sizes.items()},
        }
        self.latest = dict(summary)
        result.evaluation.update(
            {
                "task": streams.stage_of_round(result.server_round) + 1,
                **summary,
                "accuracy": summary["avg_task_accuracy"],
                **({protocol.VAL_ACCURACY: sum(validation) / len(validation)} if validation else {}),
                "task_accuracy": {str(client): accuracies for client, accuracies in sorted(reports.items())},
            }
        )

    def on_train_end(self, summary: dict[str, Any]) -> None:
        streams = self.loop.federation.streams
        if streams is not None:
            summary["final_avg_task_accuracy"] = self.latest.get("avg_task_accuracy")
            summary["final_forgetting"] = self.latest.get("forgetting")
            for name in SIZE_KEYS.values():
                summary[f"final_{name}"] = self.latest.get(name)
            summary["num_tasks"] = streams.config.num_tasks

    def checkpoint_values(self) -> Any:
        return {"best": {str(client): best for client, best in self.log.best.items()}, "latest": self.latest}

    def restore_values(self, values: Any) -> None:
        self.log.best = {int(client): list(best) for client, best in values["best"].items()}
        self.latest = dict(values["latest"])
