"""A node's ``Context.state`` kept on disk, round by round, for every learner.

Whatever a learner leaves in ``Context.state`` (SCAFFOLD's control variate, Ditto's
personal model, a task stream's heads) is the node's own knowledge, which Flower keeps
only in memory: a restarted SuperNode, or a resumed simulation, would start over from
nothing while the server carries on. So after every round a node trains, its state is
saved to ``<state dir>/round-<r>.safetensors`` (the checkpoint format: safetensors and
JSON, no pickle); a node whose state is empty writes nothing, and a node never sampled
costs nothing. Who saves: a deployed SuperNode itself (``state-dir`` in its node config,
one folder per run beneath it,
:func:`fedsparse.clients.app.train_job`); in simulation the engine, which holds every
node's Context (:class:`fedsparse.inline.InlineGrid`).

Restoring answers "the state the node had when round ``r`` began": the newest file saved
before ``r``. A client that misses rounds keeps the state of the last round it trained,
unchanged however many rounds it missed. The two newest files are kept, because a crash
can leave one round saved that the server never completed (its checkpoint is one round
behind): the server resumes from that earlier round, and the node goes back to it. A
state in memory is kept unless a file of round ``r`` or later exists, which means the
memory is ahead of the server (the server restarted, the node did not).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context

from fedsparse import protocol
from fedsparse.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from fedsparse.compat import records_of

log = logging.getLogger(__name__)

_KEEP = 2
_NAME = re.compile(r"round-(\d+)\.safetensors")


def state_dir_of(context: Context) -> Path | None:
    """Where this node keeps this run's state: the folder a simulation engine names
    (``run-state-dir``, as is: a resumed simulation is a new Flower run of the same
    experiment), else ``<state-dir>/run-<run id>`` on a deployed node, so runs it serves
    one after another never read or prune each other's files; None: nowhere."""
    exact = context.node_config.get(protocol.RUN_STATE_DIR)
    if exact:
        return Path(str(exact))
    root = context.node_config.get(protocol.STATE_DIR)
    return Path(str(root)) / f"run-{context.run_id}" if root else None


def holds_state(context: Context) -> bool:
    """Whether the node's learner left anything in its state (array or config records)."""
    return any(isinstance(record, (ArrayRecord, ConfigRecord)) for record in context.state.values())


def _saved_rounds(state_dir: Path) -> list[int]:
    if not state_dir.is_dir():
        return []
    matches = (_NAME.fullmatch(path.name) for path in state_dir.iterdir())
    return sorted(int(m.group(1)) for m in matches if m)


def _file(state_dir: Path, server_round: int) -> Path:
    return state_dir / f"round-{server_round:06d}.safetensors"


def save_node_state(context: Context, state_dir: Path, server_round: int) -> None:
    """The node's state after training ``server_round`` (nothing when it is empty); older
    files beyond the newest two go."""
    if not holds_state(context):
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(
        round=server_round,
        records=dict(records_of(context.state, ArrayRecord)),
        values={name: dict(record) for name, record in records_of(context.state, ConfigRecord).items()},
    )
    save_checkpoint(_file(state_dir, server_round), checkpoint)
    for old in _saved_rounds(state_dir)[:-_KEEP]:
        _file(state_dir, old).unlink(missing_ok=True)


def restore_node_state(context: Context, state_dir: Path, server_round: int) -> Path | None:
    """Give the node the state it had when ``server_round`` began: its memory if that is
    not ahead of the round, else the newest file saved before the round (an empty state
    if there is none). The file read, if one was."""
    saved = _saved_rounds(state_dir)
    ahead = bool(saved) and saved[-1] >= server_round
    if holds_state(context) and not ahead:
        return None  # the node kept its state in memory
    for name in [name for name, record in context.state.items() if isinstance(record, (ArrayRecord, ConfigRecord))]:
        del context.state[name]
    earlier = [r for r in saved if r < server_round]
    if not earlier:
        return None
    path = _file(state_dir, earlier[-1])
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        log.error("node state not restored: %s", error)
        return None
    for name, record in checkpoint.records.items():
        context.state[name] = record
    for name, values in checkpoint.values.items():
        context.state[name] = ConfigRecord(values)
    return path


def state_bytes(root: Path) -> dict[str, int]:
    """What the nodes under ``root`` (one folder each) keep on disk: ``stateful_clients``
    (folders holding a state file), ``client_state_bytes`` (all their files) and
    ``client_state_bytes_per_client``."""
    sizes = [
        sum(_file(folder, r).stat().st_size for r in _saved_rounds(folder))
        for folder in (sorted(root.iterdir()) if root.is_dir() else [])
    ]
    held = [size for size in sizes if size > 0]
    total = sum(held)
    return {
        "stateful_clients": len(held),
        "client_state_bytes": total,
        "client_state_bytes_per_client": total // len(held) if held else 0,
    }
