"""What happens around the round loop: evaluation, metrics rows, checkpoints, progress,
the summary. Each callback owns its state and its part of the checkpoint."""

from fedsparse.callbacks.base import Callback, RoundOutcome, RoundResult
from fedsparse.callbacks.evaluation import ClientEvaluation, ServerEvaluation, TaskMetrics
from fedsparse.callbacks.output import Checkpointer, FinalMetrics, MetricsWriter
from fedsparse.callbacks.progress import ProgressDisplay, RoundLog

__all__ = [
    "Callback",
    "Checkpointer",
    "ClientEvaluation",
    "FinalMetrics",
    "MetricsWriter",
    "ProgressDisplay",
    "RoundLog",
    "RoundOutcome",
    "RoundResult",
    "ServerEvaluation",
    "TaskMetrics",
]
