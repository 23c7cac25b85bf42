"""The run directory: resolved config, one JSON line per round, a summary, plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fedsparse.checkpoint import Checkpoint, checkpoint_path, save_checkpoint

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CLIENT_STATE_DIR = "client-state"  # simulated nodes' own state, per client (every learner that keeps any)
CHECKPOINT_ROW = "metrics_row"  # a checkpoint's copy of its round's metrics row
BYTES_PER_MB = 1e6  # MB are decimal megabytes: 1 MB = 10^6 bytes


class RunWriter:
    """Writes a run's folder. A round's metrics row is staged (:meth:`append_round`), then
    committed (:meth:`commit_round`): its checkpoint first, holding the row, then the
    line, both with Ctrl-C held off, so ``metrics.jsonl`` is never ahead of the
    checkpoint and a resumed run gets back a line lost between the two writes."""

    def __init__(self, run_dir: Path, resolved_config: str) -> None:
        """A new run: the config written, the metrics file empty, nothing of an earlier
        run in the folder left to resume from."""
        self.run_dir = run_dir
        self._pending: dict[str, Any] | None = None
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint_path(run_dir).unlink(missing_ok=True)
        shutil.rmtree(run_dir / CLIENT_STATE_DIR, ignore_errors=True)
        (run_dir / CONFIG_FILE).write_text(resolved_config)
        self._metrics = run_dir / METRICS_FILE
        self._metrics.write_text("")

    @classmethod
    def resuming(cls, run_dir: Path, checkpoint: Checkpoint, resolved_config: str | None = None) -> RunWriter:
        """A run continued after ``checkpoint``'s round: rows past it are dropped, the
        checkpointed row is put back if its line was lost, any summary is removed.
        ``resolved_config``: the config it continues with (an extended run's new round
        count), written over the old one."""
        writer = cls.__new__(cls)
        writer.run_dir = run_dir
        writer._pending = None
        writer._metrics = run_dir / METRICS_FILE
        kept = [row for row in read_metrics(run_dir) if row["round"] <= checkpoint.round]
        last = checkpoint.values.get(CHECKPOINT_ROW)
        if last is not None and (not kept or kept[-1]["round"] < checkpoint.round):
            kept.append(last)
        writer._metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))
        (run_dir / SUMMARY_FILE).unlink(missing_ok=True)
        if resolved_config is not None:
            (run_dir / CONFIG_FILE).write_text(resolved_config)
        return writer

    def append_round(self, row: dict[str, Any]) -> None:
        """Stage the round's row; :meth:`commit_round` writes it."""
        self._pending = row

    def commit_round(self, checkpoint: Checkpoint | None = None) -> None:
        """Write ``checkpoint`` (with the staged row in it), then the staged row as one
        flushed line; either may be absent. Ctrl-C and SIGTERM wait until both are
        written. ``OSError`` (naming the file) if a write fails: the line is not written
        when its checkpoint could not be."""
        from fedsparse.interrupts import uninterrupted

        with uninterrupted():
            if checkpoint is not None:
                checkpoint.values[CHECKPOINT_ROW] = self._pending
                save_checkpoint(checkpoint_path(self.run_dir), checkpoint)
            if self._pending is not None:
                with self._metrics.open("a") as handle:
                    handle.write(json.dumps(self._pending) + "\n")
                self._pending = None

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_summary(self.run_dir, summary)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / SUMMARY_FILE).read_text())


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")


def megabytes(n_bytes: float) -> float:
    """``n_bytes`` in MB (10^6 bytes)."""
    return n_bytes / BYTES_PER_MB


def total_megabytes(summary: dict[str, Any]) -> float:
    """The MB a run moved, up and down, all clients and rounds: its summary's
    ``bytes_up_total + bytes_down_total`` over 10^6."""
    return megabytes(summary["bytes_up_total"] + summary["bytes_down_total"])
