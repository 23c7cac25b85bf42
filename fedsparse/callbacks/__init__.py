"""What happens around the round loop: evaluation, metrics rows, experiment trackers,
checkpoints, progress, the summary. Each callback owns its state and its part of the
checkpoint."""

from fedsparse.callbacks.base import Callback, RoundOutcome, RoundResult
from fedsparse.callbacks.evaluation import ClientEvaluation, ServerEvaluation, TaskMetrics
from fedsparse.callbacks.output import Checkpointer, FinalMetrics, MetricsWriter
from fedsparse.callbacks.progress import ProgressDisplay, RoundLog
from fedsparse.callbacks.trackers import MlflowTracker, TensorBoardTracker, Tracker, WandbTracker, tracker_callbacks

__all__ = [
    "Callback",
    "Checkpointer",
    "ClientEvaluation",
    "FinalMetrics",
    "MetricsWriter",
    "MlflowTracker",
    "ProgressDisplay",
    "RoundLog",
    "RoundOutcome",
    "RoundResult",
    "ServerEvaluation",
    "TaskMetrics",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "tracker_callbacks",
]
