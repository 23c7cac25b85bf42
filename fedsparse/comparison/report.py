"""Writing a comparison: ``comparison.csv``, ``comparison.md`` and ``comparison.png``.

The CSV is machine readable: one row per strategy, a ``<metric>_mean`` and
``<metric>_std`` column per :class:`~fedsparse.comparison.stats.Stat`, accuracies as
fractions, MB = 10^6 bytes, empty cells where there is no value. The Markdown page states
the setup (command, federation, seeds, target) above a table of mean ± sample std over
seeds; the PNG is accuracy against cumulative MB moved (:func:`fedsparse.plots.plot_comparison`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedsparse.comparison.execute import SeedResult
from fedsparse.comparison.plan import ComparePlan
from fedsparse.comparison.stats import DEFAULT_TARGET_FRACTION, Stat, default_target, mean_curves, summarize
from fedsparse.config import ExperimentConfig

COMPARISON_MD, COMPARISON_CSV, COMPARISON_PNG = "comparison.md", "comparison.csv", "comparison.png"


def _csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else repr(round(float(value), 6))


def csv_rows(table: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The header and one row of cells per strategy of :func:`~fedsparse.comparison.stats.summarize`'s
    table: a Stat as two columns, a list space-separated, floats to 6 decimals."""
    header: list[str] = []
    for row in table:
        for key, value in row.items():
            names = [f"{key}_mean", f"{key}_std"] if isinstance(value, Stat) else [key]
            header += [n for n in names if n not in header]
    lines = []
    for row in table:
        cells: dict[str, str] = {}
        for key, value in row.items():
            if isinstance(value, Stat):
                cells[f"{key}_mean"], cells[f"{key}_std"] = _csv_number(value.mean), _csv_number(value.std)
            elif isinstance(value, list):
                cells[key] = " ".join(map(str, value))
            else:
                cells[key] = value if isinstance(value, str) else _csv_number(value)
        lines.append([cells.get(name, "") for name in header])
    return header, lines


def _decimals(stats: Sequence[Stat]) -> int:
    """Decimals that show the column's smallest mean to 3 significant digits (0 to 4)."""
    means = [abs(s.mean) for s in stats if s.mean]
    if not means:
        return 2
    return min(4, max(0, 2 - math.floor(math.log10(min(means)))))


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"


def describe_federation(cfg: ExperimentConfig) -> str:
    """One sentence: data, partition, clients, rounds, model and, when they differ, devices."""
    data, fed, part = cfg.data, cfg.federation, cfg.data.partition
    split = {
        "iid": "IID",
        "dirichlet": f"Dirichlet α={part.alpha:g}",
        "pathological": f"{part.classes_per_client} classes each",
        "shard": f"{part.shards_per_client} shards each",
    }[part.method]
    if data.tasks is not None:
        split = f"task streams ({data.tasks.kind}, {data.tasks.num_tasks} tasks)"
    if part.max_samples_per_client and data.tasks is None:
        split += f", ≤{part.max_samples_per_client} samples each"
    options = ", ".join(f"{k}={v}" for k, v in cfg.model.options.items())
    text = (
        f"{data.dataset}, {fed.num_clients} clients ({split}), {fed.clients_per_round} per round, "
        f"{fed.rounds} rounds × {fed.local_epochs} local epoch{'s' if fed.local_epochs > 1 else ''}, "
        f"{cfg.model.name}{f' ({options})' if options else ''}"
    )
    if len(fed.profiles) > 1 or fed.profiles[0].bitwidth != 32 or fed.profiles[0].bandwidth_mbps:
        devices = []
        for p in fed.profiles:
            traits = [f"{p.bitwidth}-bit" if p.bitwidth != 32 else "float32", f"speed {p.speed:g}"]
            if p.bandwidth_mbps:
                traits.append(f"{p.bandwidth_mbps:g} Mbit/s")
            devices.append(f"{p.name} {_percent(p.share)} ({', '.join(traits)})")
        text += f"; devices: {'; '.join(devices)} at {fed.reference_gflops:g} GFLOP/s for speed 1"
    return text


def _target_note(plan: ComparePlan, target: float) -> str:
    if plan.target_source == "default":
        return (
            f"{_percent(target)} (default: {_percent(DEFAULT_TARGET_FRACTION)} of the weakest strategy's "
            "mean final accuracy, floored to a whole percent; `--target` sets it)"
        )
    return f"{_percent(target)} (from `{plan.target_source}`)"


def _seeds_text(seeds: Sequence[int]) -> str:
    return f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"


def markdown(plan: ComparePlan, table: Sequence[dict[str, Any]], target: float, figure: str | None) -> str:
    """The comparison page: the setup, then one row per strategy of ``table``, the
    figure linked below it when ``figure`` is given."""
    goal = _percent(target)
    head = ["strategy", "final acc (%)"]
    bit_keys = [k for k in table[0] if k.startswith("accuracy_") and k.endswith("bit")]
    head += [f"acc @{k[len('accuracy_') : -len('bit')]}-bit (%)" for k in bit_keys]
    continual = "forgetting" in table[0]
    if continual:
        head.append("forgetting (pts)")
    head += ["MB up", "MB down", f"MB to {goal}", f"sim s to {goal}", "sim s, all rounds"]
    lines = [
        f"# Strategy comparison: `{Path(plan.config).name}`",
        "",
        f"Produced by `{plan.command()}`.",
        "",
        f"- **Federation**: {describe_federation(plan.base)}. Every strategy runs on the same "
        "partitions, device profiles and sampled clients for a given seed.",
        f"- **Seeds**: {_seeds_text(plan.seeds)} ({len(plan.seeds)}); each cell is the mean ± sample std over seeds.",
        f"- **Target accuracy**: {_target_note(plan, target)}. *MB to target*: cumulative MB up + down at the "
        "first evaluation at or above it, over the seeds that reach it (how many, when not all); "
        "*sim s*: the simulation clock (counted FLOPs over device speed, bytes over bandwidth).",
        "- "
        + (
            "Accuracy is the final average task accuracy (continual runs). "
            if continual
            else "Accuracy is the final server-side test accuracy"
            + (", the mean over the device bitwidths present. " if bit_keys else ". ")
        )
        + "MB = 10^6 bytes, as counted by the byte ledger, all clients and rounds.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    digits = {
        key: _decimals([row[key] for row in table])
        for key in ("mb_up", "mb_down", "mb_to_target", "sim_seconds_to_target", "sim_seconds")
    }
    for row in table:
        cells = [row["strategy"], row["final_accuracy"].text(100)]
        cells += [row[k].text(100) for k in bit_keys]
        if continual:
            cells.append(row["forgetting"].text(100))
        cells += [row[key].text(digits=digits[key]) for key in ("mb_up", "mb_down")]
        reached, total = row["seeds_reached_target"], row["n_seeds"]
        if reached == 0:
            cells += [f"not reached (0/{total})"] * 2
        else:
            note = "" if reached == total else f" ({reached}/{total} reached)"
            cells += [row[key].text(digits=digits[key]) + note for key in ("mb_to_target", "sim_seconds_to_target")]
        cells.append(row["sim_seconds"].text(digits=digits["sim_seconds"]))
        lines.append("| " + " | ".join(cells) + " |")
    if figure:
        lines += ["", f"![accuracy against cumulative MB, mean over seeds]({figure})"]
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, table: Sequence[dict[str, Any]]) -> None:
    header, rows = csv_rows(table)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_comparison(plan: ComparePlan, results: Sequence[SeedResult]) -> tuple[list[Path], str, float]:
    """Write comparison.csv, .md and .png into ``plan.out``; return (paths, markdown, target).
    The target is ``plan.target``, else :func:`~fedsparse.comparison.stats.default_target`."""
    from fedsparse.plots import plot_comparison

    target = plan.target if plan.target is not None else default_target(results)
    table = summarize(results, target)
    plan.out.mkdir(parents=True, exist_ok=True)
    _write_csv(plan.out / COMPARISON_CSV, table)
    figure = plan.out / COMPARISON_PNG
    plot_comparison(
        mean_curves(results),
        figure,
        target=target,
        title=f"{Path(plan.config).stem}: mean over {len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}",
    )
    text = markdown(plan, table, target, COMPARISON_PNG)
    (plan.out / COMPARISON_MD).write_text(text)
    return [plan.out / COMPARISON_MD, plan.out / COMPARISON_CSV, figure], text, target
