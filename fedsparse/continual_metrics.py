"""Continual-learning metrics from the clients' per-task accuracy reports (docs/methods.md §3).

Every round each training client reports its accuracy on every task of its stream seen
so far. From those: the average task accuracy (per client the mean over its seen tasks,
then the mean over clients) and forgetting (per client the mean, over its past tasks, of
the drop from the task's best accuracy so far to its accuracy now; then the mean over
clients). A round counts the clients that reported in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean


class TaskAccuracyLog:
    def __init__(self) -> None:
        self.best: dict[int, list[float]] = {}  # client → best accuracy per stream position

    def record_round(self, reports: Mapping[int, Sequence[float]]) -> dict[str, float | None]:
        """Fold in one round's reports; the round's ``avg_task_accuracy`` and ``forgetting``."""
        averages, drops = [], []
        for client, accuracies in sorted(reports.items()):
            best = self.best.setdefault(client, [])
            for position, accuracy in enumerate(accuracies):
                if position < len(best):
                    best[position] = max(best[position], accuracy)
                else:
                    best.append(accuracy)
            averages.append(fmean(accuracies))
            past = range(len(accuracies) - 1)  # the last one is the task being learned
            if past:
                drops.append(fmean(best[k] - accuracies[k] for k in past))
        return {
            "avg_task_accuracy": fmean(averages) if averages else None,
            "forgetting": fmean(drops) if drops else None,
        }
