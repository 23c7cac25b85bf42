"""The run directory: resolved config, one JSON line per round, a summary, plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fedsparse.checkpoint import checkpoint_path

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CLIENT_STATE_DIR = "client-state"  # simulated nodes' own state, per client (every learner that keeps any)
BYTES_PER_MB = 1e6  # MB are decimal megabytes: 1 MB = 10^6 bytes


class RunWriter:
    def __init__(self, run_dir: Path, resolved_config: str) -> None:
        """A new run: the config written, the metrics file empty, nothing of an earlier
        run in the folder left to resume from."""
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint_path(run_dir).unlink(missing_ok=True)
        shutil.rmtree(run_dir / CLIENT_STATE_DIR, ignore_errors=True)
        (run_dir / CONFIG_FILE).write_text(resolved_config)
        self._metrics = run_dir / METRICS_FILE
        self._metrics.write_text("")

    @classmethod
    def resuming(cls, run_dir: Path, after_round: int) -> RunWriter:
        """An interrupted run continued after ``after_round``: later rows (written before
        the crash but not checkpointed) are dropped, as is any summary."""
        writer = cls.__new__(cls)
        writer.run_dir = run_dir
        writer._metrics = run_dir / METRICS_FILE
        kept = [row for row in read_metrics(run_dir) if row["round"] <= after_round]
        writer._metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))
        (run_dir / SUMMARY_FILE).unlink(missing_ok=True)
        return writer

    def append_round(self, row: dict[str, Any]) -> None:
        """One line per round, flushed at once so a crash loses at most the current round."""
        with self._metrics.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

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
