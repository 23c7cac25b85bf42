"""A node's state on its own disk: saved per round, the newest two kept, restored only
into an empty state and only from before the round asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, RecordDict

from fedsparse.node_state import restore_node_state, save_node_state, state_dir_of
from fedsparse.protocol import RUN_STATE_DIR, STATE_DIR


def _context(state_dir: Path | None = None, run_id: int = 1, key: str = RUN_STATE_DIR) -> Context:
    node_config: dict[str, bool | float | int | str] = {"partition-id": 0, "num-partitions": 1}
    if state_dir is not None:
        node_config[key] = str(state_dir)
    return Context(run_id=run_id, node_id=5, node_config=node_config, state=RecordDict(), run_config={})


def _remember(context: Context, value: float) -> None:
    context.state["model"] = ArrayRecord({"w": Array(np.full(3, value, dtype=np.float32))})
    context.state["structure"] = ConfigRecord({"tasks": [0, 1], "value": value})


def _remembered(context: Context) -> float:
    return float(context.state.array_records["model"]["w"].numpy()[0])


def test_saved_per_round_and_restored_from_before_the_round_asked(tmp_path: Path) -> None:
    node = _context(tmp_path)
    assert state_dir_of(node) == tmp_path and state_dir_of(_context()) is None
    for server_round in (1, 3, 4):
        _remember(node, float(server_round))
        save_node_state(node, tmp_path, server_round)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round-000003.safetensors", "round-000004.safetensors"]

    restarted = _context(tmp_path)
    restore_node_state(restarted, tmp_path, server_round=4)  # the server resumes at round 4
    assert _remembered(restarted) == 3.0
    assert dict(restarted.state.config_records["structure"]) == {"tasks": [0, 1], "value": 3.0}

    fresh = _context(tmp_path)
    restore_node_state(fresh, tmp_path, server_round=5)
    assert _remembered(fresh) == 4.0


def test_a_state_held_in_memory_is_never_overwritten(tmp_path: Path) -> None:
    node = _context(tmp_path)
    _remember(node, 1.0)
    save_node_state(node, tmp_path, 1)
    _remember(node, 2.0)
    restore_node_state(node, tmp_path, server_round=2)
    assert _remembered(node) == 2.0


def test_a_damaged_state_file_is_logged_and_the_node_starts_empty(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "round-000001.safetensors").write_bytes(b"not safetensors")
    node = _context(tmp_path)
    restore_node_state(node, tmp_path, server_round=2)
    assert not node.state.array_records and "node state not restored" in caplog.text


def test_a_client_that_missed_rounds_resumes_with_the_state_of_its_last_round(tmp_path: Path) -> None:
    node = _context(tmp_path)
    _remember(node, 1.0)
    save_node_state(node, tmp_path, 1)  # trained round 1, then not sampled in rounds 2-6
    restarted = _context(tmp_path)
    assert restore_node_state(restarted, tmp_path, server_round=7) == tmp_path / "round-000001.safetensors"
    assert _remembered(restarted) == 1.0


def test_a_node_ahead_of_the_server_goes_back_to_the_round_the_server_resumes(tmp_path: Path) -> None:
    node = _context(tmp_path)
    for server_round in (1, 3):
        _remember(node, float(server_round))
        save_node_state(node, tmp_path, server_round)
    restore_node_state(node, tmp_path, server_round=3)  # the server restarted before completing round 3
    assert _remembered(node) == 1.0
    restore_node_state(node, tmp_path, server_round=1)  # ... or before completing round 1: nothing kept
    assert not node.state.array_records and not node.state.config_records


def test_an_empty_state_writes_nothing(tmp_path: Path) -> None:
    save_node_state(_context(tmp_path), tmp_path / "node", 1)
    assert not (tmp_path / "node").exists()


def test_a_deployed_node_keeps_each_run_in_a_folder_of_its_own(tmp_path: Path) -> None:
    """Runs one after another on one SuperNode: the later one, at lower rounds, neither
    restores nor prunes the earlier one's files."""
    first, second = _context(tmp_path, run_id=7, key=STATE_DIR), _context(tmp_path, run_id=8, key=STATE_DIR)
    assert state_dir_of(first) == tmp_path / "run-7" != state_dir_of(second)
    for server_round in (5, 6):
        _remember(first, float(server_round))
        save_node_state(first, state_dir_of(first), server_round)  # type: ignore[arg-type]
    _remember(second, 1.0)
    save_node_state(second, state_dir_of(second), 1)  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "run-7").iterdir()) == [
        "round-000005.safetensors",
        "round-000006.safetensors",
    ]
    later = _context(tmp_path, run_id=8, key=STATE_DIR)
    restore_node_state(later, state_dir_of(later), server_round=2)  # type: ignore[arg-type]
    assert _remembered(later) == 1.0
