"""Average task accuracy and forgetting from the clients' per-task reports, by hand."""

from __future__ import annotations

import pytest

from fedsparse.continual_metrics import TaskAccuracyLog


def test_average_and_forgetting_follow_methods_md() -> None:
    log = TaskAccuracyLog()
    first = log.record_round({0: [0.8], 1: [0.6]})
    assert first == {"avg_task_accuracy": pytest.approx(0.7), "forgetting": None}  # no past task yet
    second = log.record_round({0: [0.9, 0.5], 1: [0.7, 0.9]})
    # client 0: task 1 best 0.9 now 0.9 → 0; client 1: best 0.7 now 0.7 → 0
    assert second["avg_task_accuracy"] == pytest.approx(((0.9 + 0.5) / 2 + (0.7 + 0.9) / 2) / 2)
    assert second["forgetting"] == pytest.approx(0.0)
    third = log.record_round({0: [0.6, 0.8, 0.4], 1: [0.7, 0.95, 0.5]})
    # client 0: task 1 0.9 → 0.6 (0.3), task 2 0.8 → 0.8 (0); client 1: 0.7 → 0.7, 0.95 → 0.95
    assert third["forgetting"] == pytest.approx(((0.3 + 0.0) / 2 + 0.0) / 2)
    # a client missing from a round is not counted in it, and its best values are kept
    fourth = log.record_round({1: [0.5, 0.9, 0.6, 0.2]})
    assert fourth["forgetting"] == pytest.approx((0.2 + 0.05 + 0.0) / 3)
    assert fourth["avg_task_accuracy"] == pytest.approx((0.5 + 0.9 + 0.6 + 0.2) / 4)
    assert log.record_round({}) == {"avg_task_accuracy": None, "forgetting": None}
