"""Plots of a run, drawn from ``metrics.jsonl`` alone so they can be redrawn any time.

Figures are drawn with matplotlib's object API and written with its Agg canvas, so
plotting never selects or changes the process's matplotlib backend (a notebook's
inline backend stays as it is)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedsparse.results import megabytes, read_metrics

if TYPE_CHECKING:
    from fedsparse.comparison.stats import Band

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


# fedsparse compare's panels: curve name → (x label, y label)
COMPARISON_PANELS = {
    "test_vs_round": ("round", "test accuracy"),
    "val_vs_round": ("round", "validation accuracy"),
    "test_vs_mb": ("cumulative MB moved (up + down)", "test accuracy"),
    "test_vs_sim_seconds": ("simulated seconds (device clock)", "test accuracy"),
}


def comparison_figure(curves: dict[str, dict[str, Band]], target: float | None = None, title: str = "") -> Figure:
    """``fedsparse compare``'s figure: one panel per :data:`COMPARISON_PANELS` curve some
    strategy has, one seed-mean line per strategy with its 95 % CI band, the target
    accuracy dashed on the test panels. The MB axis is logarithmic when the strategies'
    traffic spans more than 20×."""
    panels = [name for name in COMPARISON_PANELS if any(name in bands for bands in curves.values())]
    fig = Figure(figsize=(4.6 * len(panels), 4.0), dpi=110)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, name in zip(axes, panels, strict=True):
        for index, (label, bands) in enumerate(curves.items()):
            band = bands.get(name)
            if band is not None:
                color = f"C{index}"
                ax.plot(band.x, band.mean, color=color, marker="o", markersize=3, linewidth=1.5, label=label)
                ax.fill_between(band.x, band.low, band.high, color=color, alpha=0.15, linewidth=0)
        xs = [x for bands in curves.values() if name in bands for x in bands[name].x if x > 0]
        if name == "test_vs_mb" and xs and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        if name.endswith("round"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if target is not None and name.startswith("test"):
            ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target * 100:.4g} %")
        xlabel, ylabel = COMPARISON_PANELS[name]
        ax.set_xlabel(xlabel + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title + " (bands: 95 % CI)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_comparison(
    curves: dict[str, dict[str, Band]], path: Path, target: float | None = None, title: str = ""
) -> Path:
    """Write :func:`comparison_figure` to ``path``; return it."""
    comparison_figure(curves, target, title).savefig(path)
    return path
