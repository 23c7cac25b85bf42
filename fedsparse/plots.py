"""Plots of a run, drawn from ``metrics.jsonl`` alone so they can be redrawn any time.

Figures are drawn with matplotlib's object API and written with its Agg canvas, so
plotting never selects or changes the process's matplotlib backend (a notebook's
inline backend stays as it is)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from fedsparse.results import megabytes, read_metrics

PLOT_FILES = ("accuracy_vs_round.png", "accuracy_vs_mb.png", "accuracy_vs_sim_seconds.png")


def _series(rows: list[dict]) -> tuple[list[int], dict[str, list[float]], list[float], list[float]]:
    """Rounds with an evaluation, their accuracy curves, and cumulative MB and simulated
    seconds (the device clock) at each.

    One curve (``accuracy``) for a float32 federation; with several device bitwidths,
    one per bitwidth plus their mean.
    """
    rounds, moved, sim_seconds = [], [], []
    curves: dict[str, list[float]] = {}
    cumulative = 0
    for row in rows:
        cumulative += row["bytes_up"] + row["bytes_down"]
        if row.get("accuracy") is None:
            continue
        rounds.append(row["round"])
        moved.append(megabytes(cumulative))
        sim_seconds.append(row["sim_seconds_total"])
        by_bitwidth = row.get("accuracy_by_bitwidth") or {}
        labels = {f"{b}-bit": v for b, v in by_bitwidth.items()} if len(by_bitwidth) > 1 else {}
        for label, value in {**labels, ("mean" if labels else "accuracy"): row["accuracy"]}.items():
            curves.setdefault(label, []).append(value)
    return rounds, curves, moved, sim_seconds


def plot_run(run_dir: Path) -> list[Path]:
    """Write accuracy against round, cumulative MB and simulated seconds; return the paths."""
    rows = read_metrics(run_dir)
    rounds, curves, moved, sim_seconds = _series(rows)
    title = run_dir.name
    outputs = []
    for filename, xs, xlabel in (
        (PLOT_FILES[0], rounds, "round"),
        (PLOT_FILES[1], moved, "cumulative MB moved (up + down)"),
        (PLOT_FILES[2], sim_seconds, "simulated seconds (device clock)"),
    ):
        fig = Figure(figsize=(5.5, 3.8), dpi=110)
        ax = fig.subplots()
        for label, accuracy in curves.items():
            ax.plot(xs, accuracy, marker="o", markersize=3, label=label, linewidth=2 if label == "mean" else 1)
        if len(curves) > 1:
            ax.legend(fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / filename)
        outputs.append(run_dir / filename)
    return outputs


def plot_comparison(
    curves: dict[str, dict[str, list[float]]], path: Path, target: float | None = None, title: str = ""
) -> Path:
    """``fedsparse compare``'s figure: accuracy against cumulative MB moved (up + down),
    one seed-mean curve per strategy with a ±1 std band, the target accuracy dashed.
    The MB axis is logarithmic when the strategies' traffic spans more than 20×."""
    fig = Figure(figsize=(6.4, 4.2), dpi=110)
    ax = fig.subplots()
    xs = [x for curve in curves.values() for x in curve["megabytes"] if x > 0]
    for label, curve in curves.items():
        (line,) = ax.plot(curve["megabytes"], curve["accuracy"], marker="o", markersize=3, linewidth=1.5, label=label)
        low = [a - s for a, s in zip(curve["accuracy"], curve["accuracy_std"], strict=True)]
        high = [a + s for a, s in zip(curve["accuracy"], curve["accuracy_std"], strict=True)]
        if any(curve["accuracy_std"]):
            ax.fill_between(curve["megabytes"], low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    if target is not None:
        ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target * 100:.4g} %")
    if xs and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("cumulative MB moved (up + down)" + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path
