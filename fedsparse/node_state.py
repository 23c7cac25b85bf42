"""A node's ``Context.state`` kept on its own disk, round by round.

A continual learner's knowledge lives in its node state (its decomposed net, its past
tasks' weights), which Flower keeps only in memory: a restarted SuperNode, or a resumed
simulation, would start over from nothing while the server carries on. A node whose node
config sets ``state-dir`` saves its state after every round it trains and, when it comes
up empty, restores the newest state saved before the round it is asked for. The two
newest files are kept, because a crash can leave a round saved that the server never
completed: the server resumes from an earlier round, and the node must go back to it.
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
    path = context.node_config.get(protocol.STATE_DIR)
    return Path(str(path)) if path else None


def _saved_rounds(state_dir: Path) -> list[int]:
    if not state_dir.is_dir():
        return []
    matches = (_NAME.fullmatch(path.name) for path in state_dir.iterdir())
    return sorted(int(m.group(1)) for m in matches if m)


def _file(state_dir: Path, server_round: int) -> Path:
    return state_dir / f"round-{server_round:06d}.safetensors"


def save_node_state(context: Context, state_dir: Path, server_round: int) -> None:
    """The node's state after training ``server_round``; older files beyond the newest two go."""
    state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(
        round=server_round,
        records=dict(records_of(context.state, ArrayRecord)),
        values={name: dict(record) for name, record in records_of(context.state, ConfigRecord).items()},
    )
    save_checkpoint(_file(state_dir, server_round), checkpoint)
    for old in _saved_rounds(state_dir)[:-_KEEP]:
        _file(state_dir, old).unlink(missing_ok=True)


def restore_node_state(context: Context, state_dir: Path, server_round: int) -> None:
    """Fill an empty node state from the newest file saved before ``server_round``."""
    if any(isinstance(record, (ArrayRecord, ConfigRecord)) for record in context.state.values()):
        return  # the node kept its state in memory
    earlier = [r for r in _saved_rounds(state_dir) if r < server_round]
    if not earlier:
        return
    path = _file(state_dir, earlier[-1])
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        log.error("node state not restored: %s", error)
        return
    for name, record in checkpoint.records.items():
        context.state[name] = record
    for name, values in checkpoint.values.items():
        context.state[name] = ConfigRecord(values)
    log.info("node state restored from %s", path)
