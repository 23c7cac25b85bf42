"""Checkpoints: all the server needs to continue a run after its last completed round
(and the same format for a node's own state, :mod:`fedsparse.node_state`).

One safetensors file. Every array of every record is stored as the raw
bytes that travel (uint8), so bit-packed and sparse payloads come back byte for byte;
everything else (round, ledger, strategy values, RNG states) is JSON in the file's
metadata. Neither format can carry code, so loading a checkpoint someone else wrote is as
safe as reading a YAML file. The file is written under a temporary name and renamed, so
a crash or kill while writing leaves the previous round's checkpoint intact. There is no
fsync: it would survive a power cut too, at several times the cost of the write.
"""

from __future__ import annotations

import errno
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = 1
_METADATA_KEY = "fedsparse"
_RNG_RECORD = "rng"


class CheckpointError(ValueError):
    """No usable checkpoint; the message says what is wrong with it."""


@dataclass
class Checkpoint:
    """Round ``round`` completed: records (models, strategy state) and JSON-able values."""

    round: int
    records: dict[str, ArrayRecord] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_FILE


def save_checkpoint(target: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to the file ``target`` atomically (temporary file, then rename).
    A write that fails (no permission, a full disk) raises ``OSError`` naming the file it
    could not write, and leaves ``target`` as it was and no temporary file behind."""
    tensors: dict[str, np.ndarray] = {}
    manifest: dict[str, list[list[Any]]] = {}
    for record_name, record in checkpoint.records.items():
        entries = manifest.setdefault(record_name, [])
        for array_name, array in record.items():
            key = f"t{len(tensors)}"
            tensors[key] = np.frombuffer(array.data, dtype=np.uint8)
            entries.append([array_name, array.dtype, list(array.shape), array.stype, key])
    header = {"format": FORMAT, "round": checkpoint.round, "manifest": manifest, "values": checkpoint.values}
    partial = target.with_name(target.name + ".partial")
    try:
        save_file(tensors, str(partial), metadata={_METADATA_KEY: json.dumps(header)})
        os.replace(partial, target)
    except (SafetensorError, OSError) as error:
        if partial.is_file():
            partial.unlink()
        if isinstance(error, OSError):
            raise
        raise OSError(errno.EIO, _io_reason(str(error)), str(partial)) from None


def _io_reason(message: str) -> str:
    """safetensors' ``Error while serializing: I/O error: No space left on device (os
    error 28)`` → ``No space left on device``."""
    reason = message.rpartition("I/O error: ")[2] or message
    return reason.split(" (os error")[0].strip()


def load_checkpoint(path: Path) -> Checkpoint:
    """Read the checkpoint file ``path``; :class:`CheckpointError` if absent or malformed."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
        header = json.loads(metadata[_METADATA_KEY])
        tensors = load_file(str(path))
        if header.get("format") != FORMAT:
            raise CheckpointError(f"{path}: format {header.get('format')!r}, this version reads {FORMAT}")
        records = {
            record_name: ArrayRecord(
                {
                    name: Array(
                        dtype=dtype, shape=tuple(int(n) for n in shape), stype=stype, data=tensors[key].tobytes()
                    )
                    for name, dtype, shape, stype, key in entries
                }
            )
            for record_name, entries in header["manifest"].items()
        }
        return Checkpoint(round=int(header["round"]), records=records, values=dict(header["values"]))
    except CheckpointError:
        raise
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({error})") from None


def _capture_rng() -> tuple[ArrayRecord, dict[str, Any]]:
    """The process-wide RNG states (torch, NumPy's legacy global, Python's ``random``).

    fedsparse seeds its own generators per round, but server-side code (model builders,
    third-party layers) may draw from the global ones; restoring them keeps a resumed
    run on the same stream as an uninterrupted one.
    """
    numpy_state = np.random.get_state(legacy=False)
    record = ArrayRecord(
        {
            "torch": Array(torch.get_rng_state().numpy()),
            "numpy_key": Array(np.asarray(numpy_state["state"]["key"], dtype=np.uint32)),
        }
    )
    version, python_state, gauss = random.getstate()
    values = {
        "numpy": {
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": [version, list(python_state), gauss],
    }
    return record, values


def _restore_rng(record: ArrayRecord, values: dict[str, Any]) -> None:
    torch.set_rng_state(torch.from_numpy(record["torch"].numpy().copy()))
    numpy_values = values["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": record["numpy_key"].numpy(), "pos": numpy_values["pos"]},
            "has_gauss": numpy_values["has_gauss"],
            "gauss": numpy_values["gauss"],
        }
    )
    version, python_state, gauss = values["python"]
    random.setstate((version, tuple(python_state), gauss))


def with_rng(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` plus the current RNG states."""
    record, values = _capture_rng()
    checkpoint.records[_RNG_RECORD] = record
    checkpoint.values[_RNG_RECORD] = values
    return checkpoint


def restore_rng_of(checkpoint: Checkpoint) -> None:
    _restore_rng(checkpoint.records[_RNG_RECORD], checkpoint.values[_RNG_RECORD])
