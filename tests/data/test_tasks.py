from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from fedsparse.data import ContinualData, TasksConfig, load_continual_data
from fedsparse.data.tasks import task_streams


def load(seed: int = 0, num_clients: int = 5, **tasks: object) -> ContinualData:
    return load_continual_data("digits", None, TasksConfig(**tasks).model_dump_json(), num_clients, 0.2, seed)


def images(x: np.ndarray) -> Counter:
    return Counter(row.tobytes() for row in x)


def test_real_mnist_class_split_remaps_labels_and_splits_disjointly(mnist_dir: Path) -> None:
    cfg = TasksConfig(kind="class_split", classes_per_task=2, num_tasks=5)
    data = load_continual_data("mnist", str(mnist_dir), cfg.model_dump_json(), 5, 0.2, 0)
    assert data.num_outputs == 2 and data.num_heads == 5
    covered = [sorted(c for s in range(5) for c in data.spec(k, s).classes) for k in range(5)]
    assert covered == [list(range(10))] * 5
    tasks = {(k, s): data.task(k, s) for k in range(5) for s in range(5)}
    for task in tasks.values():
        assert task.train.y.dtype == np.int64 and set(np.unique(task.train.y)) == {0, 1}
        assert set(np.unique(task.test.y)) == {0, 1}
        assert task.train.x.shape[1:] == (1, 28, 28)
    for spec in data.pool:
        holders = [(k, s) for (k, s) in tasks if data.streams[k][s] == spec.pool_id]
        assert len(holders) == 5  # pool == num_tasks: every client learns every task
        rows = [data.train_rows(k, s) for k, s in holders]
        assert sum(len(r) for r in rows) == len(np.unique(np.concatenate(rows)))  # disjoint
        for head, label in enumerate(spec.classes):
            original = images(data.train.x[data.train.y == label])
            shared = sum((images(tasks[h].train.x[tasks[h].train.y == head]) for h in holders), Counter())
            assert shared == original  # shares cover the class exactly once, label remapped
            test = tasks[holders[0]].test
            assert images(test.x[test.y == head]) == images(data.test.x[data.test.y == label])


def test_streams_differ_across_clients_and_fixed_order_is_sorted() -> None:
    shuffled = load(order="per_client_shuffle", num_tasks=5)
    assert len(set(shuffled.streams)) > 1
    assert all(sorted(s) == list(range(5)) for s in shuffled.streams)
    fixed = load(order="fixed", num_tasks=5)
    assert fixed.streams == ((0, 1, 2, 3, 4),) * 5
    partial = task_streams(TasksConfig(num_tasks=2, pool_size=5, order="fixed"), 8, 0)
    assert all(s == sorted(s) and len(set(s)) == 2 for s in partial)


def test_larger_pool_gives_partial_overlap_with_disjoint_shares() -> None:
    data = load(num_clients=6, classes_per_task=2, num_tasks=2, pool_size=5)
    held = [set(s) for s in data.streams]
    assert any(len(h) < 5 for h in held) and set().union(*held) == set(range(5))
    assert any(held[a] & held[b] for a in range(6) for b in range(a + 1, 6))  # overlap exists
    for spec in data.pool:
        rows = [data.shares[(k, spec.pool_id)] for k in range(6) if spec.pool_id in held[k]]
        together = np.concatenate(rows)
        assert len(together) == len(np.unique(together))
        assert np.array_equal(np.sort(together), np.flatnonzero(np.isin(data.train.y, spec.classes)))


def test_permuted_tasks_permute_pixels_and_keep_labels() -> None:
    data = load(kind="permuted", num_tasks=3, num_clients=2)
    assert data.num_outputs == 10 and data.num_heads == 3
    perms = [spec.permutation for spec in data.pool]
    assert all(p is not None and not np.array_equal(p, np.arange(64)) for p in perms)
    assert not np.array_equal(perms[0], perms[1]) and not np.array_equal(perms[1], perms[2])
    for client in range(2):
        for stage in range(3):
            task = data.task(client, stage)
            rows = data.train_rows(client, stage)
            original = data.train.x[rows].reshape(len(rows), -1)
            flat = task.train.x.reshape(len(rows), -1)
            assert np.array_equal(task.train.y, data.train.y[rows])  # labels unchanged
            assert np.array_equal(np.sort(flat, axis=1), np.sort(original, axis=1))
            assert not np.array_equal(flat, original)
            assert np.array_equal(flat[:, np.argsort(task.spec.permutation)], original)
            assert np.array_equal(task.test.y, data.test.y) and task.test.x.shape == data.test.x.shape
    # every client gets its own half of the training pool for each task
    assert len(data.train_rows(0, 0)) + len(data.train_rows(1, 0)) == len(data.train)


def test_caps_are_respected_and_test_subset_is_shared() -> None:
    data = load(num_tasks=5, max_train_per_task=20, max_test_per_task=15)
    for client in range(5):
        for stage in range(5):
            task = data.task(client, stage)
            assert len(task.train) == data.train_size(client, stage) == 20
            assert len(task.test) == 15
    by_pool = {}
    for client in range(5):
        for stage in range(5):
            test = data.task(client, stage).test
            first = by_pool.setdefault(data.streams[client][stage], test)
            assert np.array_equal(first.x, test.x) and np.array_equal(first.y, test.y)
    uncapped = load(num_tasks=5)
    assert uncapped.train_size(0, 0) > 20 and len(uncapped.task(0, 0).test) > 15


def test_same_seed_reproduces_other_seed_differs() -> None:
    tasks = TasksConfig(kind="permuted", num_tasks=3, max_train_per_task=30).model_dump_json()
    a = load_continual_data("digits", None, tasks, 4, 0.2, 3)
    load_continual_data.cache_clear()
    b = load_continual_data("digits", None, tasks, 4, 0.2, 3)
    assert a is not b and a.streams == b.streams
    ta, tb = a.task(2, 1), b.task(2, 1)
    assert np.array_equal(ta.train.x, tb.train.x) and np.array_equal(ta.test.y, tb.test.y)
    c = load_continual_data("digits", None, tasks, 4, 0.2, 4)
    assert c.streams != a.streams
    assert not np.array_equal(c.pool[0].permutation, a.pool[0].permutation)


def test_problems_name_the_field() -> None:
    assert TasksConfig().problems(10) == []
    assert TasksConfig(classes_per_task=11).problems(10) == [
        "data.tasks.classes_per_task: must be <= 10 (classes in the dataset)"
    ]
    assert TasksConfig(num_tasks=6).problems(10) == [
        "data.tasks.num_tasks: 6 tasks of 2 classes need 12 classes; the dataset has 10"
    ]
    (line,) = TasksConfig(num_tasks=3, pool_size=6).problems(10)
    assert line.startswith("data.tasks.pool_size: 6 tasks of 2 classes need 12")
    (line,) = TasksConfig(num_tasks=5, pool_size=3, classes_per_task=1).problems(10)
    assert line.startswith("data.tasks.pool_size: 3 is fewer than num_tasks")
    assert TasksConfig(kind="permuted", num_tasks=20).problems(10) == []
    with pytest.raises(ValueError, match=r"data\.tasks\.num_tasks"):
        load(num_tasks=6)
    with pytest.raises(ValidationError):
        TasksConfig(rounds=3)  # type: ignore[call-arg]


def test_stage_boundaries() -> None:
    data = load(num_tasks=5, rounds_per_task=10)
    assert data.config.total_rounds == 50
    assert [data.stage_of_round(r) for r in (1, 10, 11, 20, 21, 50, 51, 99)] == [0, 0, 1, 1, 2, 4, 4, 4]
    assert [r for r in range(1, 60) if data.is_last_round_of_stage(r)] == [10, 20, 30, 40, 50]


def test_a_tasks_validation_set_is_held_out_of_the_clients_share() -> None:
    data = load(num_tasks=3, max_train_per_task=50, val_fraction=0.2)
    again = load(num_tasks=3, max_train_per_task=50, val_fraction=0.2)
    for client in range(5):
        for stage in range(3):
            train, val = data.train_rows(client, stage), data.val_rows(client, stage)
            assert len(val) == 10 and len(train) == 40 and not set(train) & set(val)
            assert np.array_equal(val, again.val_rows(client, stage))
            task = data.task(client, stage)
            assert len(task.val) == 10 and set(np.unique(task.val.y)) <= {0, 1}
    assert len(load(num_tasks=3, max_train_per_task=50).task(0, 0).val) == 0
