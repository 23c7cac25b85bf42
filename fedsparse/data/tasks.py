"""Task streams for federated continual learning (docs/methods.md §3, FedWeIT).

Each client learns a private sequence of tasks, one stage after another, and the
clients' sequences differ and may overlap. The setting is *task-incremental* and
*multi-head*: the task id is known at training and at test time, every task has its own
classifier head, and a task's labels are remapped to ``0 … k-1`` in the head's order.

Tasks are drawn from a *pool* of ``data.tasks.pool_size`` distinct tasks; every client
learns ``num_tasks`` of them. With ``pool_size`` = ``num_tasks`` (the default) every
client learns every task, each in its own order; a larger pool means less overlap
between the clients' streams. Two kinds of task:

- ``class_split``: a seeded permutation of the classes cut into groups of
  ``classes_per_task`` (split MNIST / the FedWeIT class stages);
- ``permuted``: all classes, with a fixed seeded permutation of the flattened pixels per
  pool task (permuted MNIST).

A pool task's training samples are split *disjointly* among the clients that learn it:
clients hold private data in federated learning, so two clients training "the same"
task must still see different samples, or transfer between them would be a copy of the
data rather than of knowledge. Its test samples are the same for every client (one
seeded subset per task), so per-task accuracies are comparable across clients.

Everything is precomputed once per process as row indices (cached, like
:func:`fedsparse.data.federated.load_federated_data`); images are copied only when a
client asks for one task, and only that task's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.data.sources import DATASETS, ArrayDataset, DatasetInfo

# seeds of the independent random streams, so adding one never shifts another
_CLASS_ORDER, _PIXELS, _STREAM, _SHARE, _TRAIN_CAP, _TEST_CAP = 0xC1A, 0x91C, 0x57E, 0x5AE, 0xCA7, 0x7E5
_VALIDATION = 0x7A1


class TasksConfig(BaseModel):
    """The YAML block ``data.tasks``: which tasks exist and who learns them when."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["class_split", "permuted"] = Field(
        "class_split",
        description="class_split: each task is a group of classes; permuted: each task is "
        "all classes with a fixed seeded pixel permutation (permuted MNIST)",
    )
    classes_per_task: int | None = Field(
        2,
        ge=1,
        description="class_split: classes per task (the head size); ignored by permuted, "
        "whose tasks always use every class",
    )
    num_tasks: int = Field(5, ge=1, description="tasks each client learns, one after another")
    pool_size: int | None = Field(
        None,
        ge=1,
        description="distinct tasks that exist; each client learns num_tasks of them. This "
        "sets the overlap between clients: null (= num_tasks) means every client learns "
        "every task (each in its own order); a larger pool means less overlap",
    )
    order: Literal["per_client_shuffle", "fixed"] = Field(
        "per_client_shuffle",
        description="per_client_shuffle: each client learns its tasks in its own seeded "
        "order; fixed: every client learns its tasks in pool order",
    )
    rounds_per_task: int = Field(10, ge=1, description="server rounds spent on each task")
    max_train_per_task: int | None = Field(
        None, ge=1, description="cap on a client's training samples per task (seeded subset)"
    )
    max_test_per_task: int | None = Field(
        None,
        ge=1,
        description="cap on each task's test samples (one seeded subset per task, the same for every client)",
    )
    val_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of a client's (capped) training samples of each task held out as that task's "
        "validation set, e.g. for federation.lr_plateau",
    )

    @property
    def pool(self) -> int:
        """How many distinct tasks exist."""
        return self.pool_size if self.pool_size is not None else self.num_tasks

    @property
    def total_rounds(self) -> int:
        return self.num_tasks * self.rounds_per_task

    def num_outputs(self, num_classes: int) -> int:
        """Head size: classes per task (class_split) or every class (permuted)."""
        if self.kind == "permuted":
            return num_classes
        return int(self.classes_per_task)  # type: ignore[arg-type]

    def problems(self, num_classes: int) -> list[str]:
        """Cross-field checks against the dataset; one line per problem, empty if fine."""
        out: list[str] = []
        if self.pool_size is not None and self.pool_size < self.num_tasks:
            out.append(
                f"data.tasks.pool_size: {self.pool_size} is fewer than num_tasks "
                f"({self.num_tasks}); each client learns num_tasks distinct pool tasks"
            )
        if self.kind != "class_split":
            return out  # permuted: every task has all classes, classes_per_task unused
        k = self.classes_per_task
        if k is None:
            out.append("data.tasks.classes_per_task: class_split needs a number of classes per task")
        elif k > num_classes:
            out.append(f"data.tasks.classes_per_task: must be <= {num_classes} (classes in the dataset)")
        elif self.pool * k > num_classes:
            field = "pool_size" if self.pool_size is not None else "num_tasks"
            out.append(
                f"data.tasks.{field}: {self.pool} tasks of {k} classes need "
                f"{self.pool * k} classes; the dataset has {num_classes}"
            )
        return out


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """One pool task. Label ``classes[i]`` is head output ``i``."""

    pool_id: int
    classes: tuple[int, ...]
    permutation: np.ndarray | None  # of the flattened C·H·W pixels; None for class_split


def task_pool(cfg: TasksConfig, num_classes: int, input_size: int, seed: int) -> list[TaskSpec]:
    """The ``cfg.pool`` distinct tasks, reproducible from ``seed``."""
    problems = cfg.problems(num_classes)
    if problems:
        raise ValueError("; ".join(problems))
    if cfg.kind == "permuted":
        every = tuple(range(num_classes))
        return [
            TaskSpec(t, every, np.random.default_rng([seed, _PIXELS, t]).permutation(input_size))
            for t in range(cfg.pool)
        ]
    k = int(cfg.classes_per_task)  # type: ignore[arg-type]
    order = np.random.default_rng([seed, _CLASS_ORDER]).permutation(num_classes)
    return [TaskSpec(t, tuple(int(c) for c in np.sort(order[t * k : (t + 1) * k])), None) for t in range(cfg.pool)]


def task_streams(cfg: TasksConfig, num_clients: int, seed: int) -> list[list[int]]:
    """Per client, the pool ids it learns in order (``num_tasks`` distinct ones)."""
    if cfg.pool < cfg.num_tasks:
        raise ValueError(f"data.tasks.pool_size: {cfg.pool} is fewer than num_tasks ({cfg.num_tasks})")
    streams = []
    for client in range(num_clients):
        rng = np.random.default_rng([seed, _STREAM, client])
        ids = [int(t) for t in rng.choice(cfg.pool, size=cfg.num_tasks, replace=False)]
        streams.append(sorted(ids) if cfg.order == "fixed" else ids)
    return streams


@dataclass(frozen=True, eq=False)
class TaskData:
    """A client's task at one stage: transformed images, labels ``0 … k-1`` (int64)."""

    stage: int  # position in the client's stream, 0-based
    spec: TaskSpec
    train: ArrayDataset
    val: ArrayDataset  # held out of the client's share (``val_fraction``); empty when 0
    test: ArrayDataset


def _capped(rows: np.ndarray, cap: int | None, rng_key: list[int]) -> np.ndarray:
    if cap is None or len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng(rng_key).choice(rows, size=cap, replace=False))


@dataclass(frozen=True, eq=False)
class ContinualData:
    info: DatasetInfo
    config: TasksConfig
    pool: tuple[TaskSpec, ...]
    streams: tuple[tuple[int, ...], ...]  # per client, the pool ids in learning order
    train: ArrayDataset  # the training pool the shares index into
    test: ArrayDataset
    shares: dict[tuple[int, int], np.ndarray]  # (client, pool id) -> training rows, capped
    test_rows: tuple[np.ndarray, ...]  # per pool task, capped; the same for every client
    seed: int

    @classmethod
    def build(
        cls,
        info: DatasetInfo,
        cfg: TasksConfig,
        train: ArrayDataset,
        test: ArrayDataset,
        num_clients: int,
        seed: int,
    ) -> ContinualData:
        problems = cfg.problems(info.num_classes)
        if problems:
            raise ValueError("; ".join(problems))
        pool = task_pool(cfg, info.num_classes, int(np.prod(info.input_shape)), seed)
        streams = task_streams(cfg, num_clients, seed)
        shares: dict[tuple[int, int], np.ndarray] = {}
        test_rows = []
        for spec in pool:
            rows = np.flatnonzero(np.isin(train.y, spec.classes))
            holders = [c for c, stream in enumerate(streams) if spec.pool_id in stream]
            if holders and len(rows) < len(holders):
                raise ValueError(
                    f"data.tasks: pool task {spec.pool_id} has {len(rows)} training samples "
                    f"for {len(holders)} clients; some client would get none"
                )
            shuffled = rows[np.random.default_rng([seed, _SHARE, spec.pool_id]).permutation(len(rows))]
            for client, share in zip(holders, np.array_split(shuffled, max(len(holders), 1)), strict=False):
                key = [seed, _TRAIN_CAP, client, spec.pool_id]
                shares[(client, spec.pool_id)] = _capped(np.sort(share), cfg.max_train_per_task, key)
            test_rows.append(
                _capped(
                    np.flatnonzero(np.isin(test.y, spec.classes)),
                    cfg.max_test_per_task,
                    [seed, _TEST_CAP, spec.pool_id],
                )
            )
        return cls(
            info=info,
            config=cfg,
            pool=tuple(pool),
            streams=tuple(tuple(s) for s in streams),
            train=train,
            test=test,
            shares=shares,
            test_rows=tuple(test_rows),
            seed=seed,
        )

    @property
    def num_clients(self) -> int:
        return len(self.streams)

    @property
    def num_outputs(self) -> int:
        """Head size: classes per task (class_split) or every class (permuted)."""
        return self.config.num_outputs(self.info.num_classes)

    @property
    def num_heads(self) -> int:
        """One head per pool task (index a head by ``TaskSpec.pool_id``)."""
        return len(self.pool)

    def spec(self, client: int, stage: int) -> TaskSpec:
        return self.pool[self.streams[client][stage]]

    def train_rows(self, client: int, stage: int) -> np.ndarray:
        """Rows of :attr:`train` client ``client`` trains on at ``stage``."""
        return self._split(client, stage)[0]

    def val_rows(self, client: int, stage: int) -> np.ndarray:
        """Rows of :attr:`train` held out as client ``client``'s validation set at ``stage``."""
        return self._split(client, stage)[1]

    def _split(self, client: int, stage: int) -> tuple[np.ndarray, np.ndarray]:
        """The client's share of the task, cut into (train, validation) by a seeded draw:
        ``val_fraction`` of it, at least one sample when the fraction is positive."""
        pool_id = self.streams[client][stage]
        share = self.shares[(client, pool_id)]
        fraction = self.config.val_fraction
        n_val = min(max(round(len(share) * fraction), 1), len(share) - 1) if fraction > 0 else 0
        if n_val == 0:
            return share, share[:0]
        held = np.random.default_rng([self.seed, _VALIDATION, client, pool_id]).choice(len(share), n_val, replace=False)
        keep = np.ones(len(share), dtype=bool)
        keep[held] = False
        return share[keep], np.sort(share[held])

    def train_size(self, client: int, stage: int) -> int:
        return len(self.train_rows(client, stage))

    def task(self, client: int, stage: int) -> TaskData:
        """Client ``client``'s ``stage``-th task, images transformed, labels remapped."""
        spec = self.spec(client, stage)
        return TaskData(
            stage=stage,
            spec=spec,
            train=self._materialise(self.train, self.train_rows(client, stage), spec),
            val=self._materialise(self.train, self.val_rows(client, stage), spec),
            test=self._materialise(self.test, self.test_rows[spec.pool_id], spec),
        )

    def _materialise(self, data: ArrayDataset, rows: np.ndarray, spec: TaskSpec) -> ArrayDataset:
        if spec.permutation is None:
            x = data.x[rows]
        else:  # one copy: only the task's rows, pixels gathered in permuted order
            flat = data.x.reshape(len(data.x), -1)
            x = flat[np.ix_(rows, spec.permutation)].reshape((len(rows), *data.x.shape[1:]))
        lookup = np.full(self.info.num_classes, -1, dtype=np.int64)
        lookup[list(spec.classes)] = np.arange(len(spec.classes))
        return ArrayDataset(x, lookup[data.y[rows]])

    def stage_of_round(self, server_round: int) -> int:
        """The stage every client is on in ``server_round`` (1-based), clamped."""
        stage = (server_round - 1) // self.config.rounds_per_task
        return min(max(stage, 0), self.config.num_tasks - 1)

    def is_last_round_of_stage(self, server_round: int) -> bool:
        """True in the round that ends a stage (a task boundary follows it)."""
        return server_round == (self.stage_of_round(server_round) + 1) * self.config.rounds_per_task


@lru_cache(maxsize=4)
def load_continual_data(
    dataset: str,
    path: str | None,
    tasks_json: str,
    num_clients: int,
    test_fraction: float,
    seed: int,
) -> ContinualData:
    """Load and cut into task streams once per process; arguments hashable for the cache."""
    cfg = TasksConfig.model_validate_json(tasks_json)
    source = DATASETS.get(dataset)
    problems = cfg.problems(source.info.num_classes)
    if problems:  # before the (possibly slow) load
        raise ValueError("; ".join(problems))
    splits = source.load(Path(path) if path else None, seed, test_fraction)
    return ContinualData.build(source.info, cfg, splits.train, splits.test, num_clients, seed)
