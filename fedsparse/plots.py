"""Plots of a run, drawn from ``metrics.jsonl`` alone so they can be redrawn any time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedsparse.results import read_metrics  # noqa: E402

PLOT_FILES = ("accuracy_vs_round.png", "accuracy_vs_mb.png")


def _series(rows: list[dict]) -> tuple[list[int], list[float], list[float]]:  # type: ignore[type-arg]
    rounds, accuracy, megabytes = [], [], []
    cumulative = 0
    for row in rows:
        cumulative += row["bytes_up"] + row["bytes_down"]
        if row.get("accuracy") is not None:
            rounds.append(row["round"])
            accuracy.append(row["accuracy"])
            megabytes.append(cumulative / 1e6)
    return rounds, accuracy, megabytes


def plot_run(run_dir: Path) -> list[Path]:
    """Write accuracy-vs-round and accuracy-vs-cumulative-MB PNGs; return their paths."""
    rows = read_metrics(run_dir)
    rounds, accuracy, megabytes = _series(rows)
    title = run_dir.name
    outputs = []
    for filename, xs, xlabel in (
        (PLOT_FILES[0], rounds, "round"),
        (PLOT_FILES[1], megabytes, "cumulative MB moved (up + down)"),
    ):
        fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
        ax.plot(xs, accuracy, marker="o", markersize=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / filename)
        plt.close(fig)
        outputs.append(run_dir / filename)
    return outputs
