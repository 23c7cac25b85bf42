"""Writing a comparison: ``comparison.csv``, ``comparison.md`` and ``comparison.png``.

The CSV is machine readable: one row per strategy, one column per statistic of each
metric (``<metric>_<statistic>``, :data:`STATISTICS`), accuracies as fractions, MB = 10^6
bytes, empty cells where there is no value. The Markdown page states the setup
(command, federation, seeds, validation, tuning, target), then a table of mean ± 95 %
CI half-width over seeds, a table of the accuracy metrics and MB total paired against the
reference strategy, and how to read both. The PNG holds the learning curves with their
95 % CI bands (:func:`fedsparse.plots.plot_comparison`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedsparse.comparison.execute import SeedResult
from fedsparse.comparison.plan import ComparePlan
from fedsparse.comparison.stats import (
    DEFAULT_TARGET_FRACTION,
    MIN_WILCOXON_PAIRS,
    TO_TARGET,
    Comparison,
    MetricSummary,
    Stat,
    StrategyRow,
    default_target,
    learning_curves,
    summarize,
)
from fedsparse.config import ExperimentConfig

COMPARISON_MD, COMPARISON_CSV, COMPARISON_PNG = "comparison.md", "comparison.csv", "comparison.png"
STATISTICS = (
    "mean",
    "std",
    "n",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "n_pairs",
    "p_paired",
    "p_wilcoxon",
    "p_holm",
    "rank",
)
# the page's name of each fixed metric; accuracy_<b>bit are named by their bitwidth
LABELS = {
    "final_accuracy": "final acc",
    "forgetting": "forgetting",
    "accuracy_at_best_val": "acc @best val",
    "best_val_round": "best val round",
    "accuracy_auc": "mean acc over rounds",
    "mb_up": "MB up",
    "mb_down": "MB down",
    "mb_total": "MB total",
    "rounds_to_target": "rounds to",
    "mb_to_target": "MB to",
    "sim_seconds_to_target": "sim s to",
    "sim_seconds": "sim s, all rounds",
}
# in percent (forgetting: points) on the page, as are the per-bitwidth accuracies
ACCURACIES = ("final_accuracy", "forgetting", "accuracy_at_best_val", "accuracy_auc")
PAIRED_ON_PAGE = (*ACCURACIES, "mb_total")  # the rest of the paired tests are in the CSV


def _statistics(summary: MetricSummary) -> dict[str, float | int | None]:
    """One metric's :data:`STATISTICS` (None where there is no value)."""
    stat, paired = summary.stat, summary.paired
    low, high = stat.ci() or (None, None)
    diff_low, diff_high = (paired.diff_ci if paired else None) or (None, None)
    return {
        "mean": stat.mean,
        "std": stat.std,
        "n": stat.n,
        "ci_low": low,
        "ci_high": high,
        "diff": paired.diff if paired else None,
        "diff_ci_low": diff_low,
        "diff_ci_high": diff_high,
        "n_pairs": paired.n if paired else None,
        "p_paired": paired.p_paired if paired else None,
        "p_wilcoxon": paired.p_wilcoxon if paired else None,
        "p_holm": paired.p_holm if paired else None,
        "rank": summary.rank,
    }


def table_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One dict per strategy with the CSV's columns: ``strategy``, ``reference``,
    ``n_seeds``, ``seeds`` (a list), ``target_accuracy``, ``seeds_reached_target``, then
    ``<metric>_<statistic>`` for every metric and :data:`STATISTICS` entry."""
    rows = []
    for row in comparison.rows:
        cells: dict[str, Any] = {
            "strategy": row.strategy,
            "reference": comparison.reference,
            "n_seeds": len(row.seeds),
            "seeds": row.seeds,
            "target_accuracy": comparison.target,
            "seeds_reached_target": row.reached,
        }
        for key, summary in row.metrics.items():
            cells.update({f"{key}_{name}": value for name, value in _statistics(summary).items()})
        rows.append(cells)
    return rows


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, str | int):
        return str(value)
    return repr(round(float(value), 6))


def csv_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The header and one row of cells per strategy of :func:`table_rows`: a list
    space-separated, floats to 6 decimals, None empty."""
    rows = table_rows(comparison)
    header = list(rows[0])
    return header, [[_csv_cell(row[name]) for name in header] for row in rows]


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


def _validation_note(plan: ComparePlan) -> str:
    share = plan.base.data.validation
    if not share:
        return "none (`data.validation: 0`): no best-round selection"
    source = "`fedsparse compare`'s default, the config sets none" if plan.validation_defaulted else "`data.validation`"
    return f"{_percent(share)} of the training data held out on the server, stratified ({source})"


def _is_bitwidth(key: str) -> bool:
    return key.startswith("accuracy_") and key.endswith("bit")


def _scale(key: str) -> float:
    """Accuracies (and forgetting) are shown in percent / points."""
    return 100.0 if _is_bitwidth(key) or key in ACCURACIES else 1.0


def _label(key: str, goal: str) -> str:
    if _is_bitwidth(key):
        return f"acc @{key[len('accuracy_') : -len('bit')]}-bit"
    return f"{LABELS[key]} {goal}" if key in TO_TARGET else LABELS[key]


def _header(key: str, goal: str) -> str:
    unit = " (pts)" if key == "forgetting" else " (%)" if _scale(key) == 100 else ""
    return _label(key, goal) + unit


def _page_keys(comparison: Comparison) -> list[str]:
    """The metrics the page shows: those some strategy has a value for, and always
    the ones to the target (a strategy that never reaches it is shown so)."""
    return [
        key
        for key in comparison.metric_keys()
        if key in TO_TARGET or any(row.metrics[key].stat.mean is not None for row in comparison.rows)
    ]


def _digits(comparison: Comparison, key: str) -> int:
    if _scale(key) == 100:
        return 2
    return 1 if key == "best_val_round" else _decimals([row.metrics[key].stat for row in comparison.rows])


def _cell(row: StrategyRow, key: str, digits: int, several: bool) -> str:
    """Mean ± CI half-width; to a target, how many seeds reached it when not all did;
    bold when ranked first and ``several`` ranks differ in the column."""
    summary, seeds = row.metrics[key], len(row.seeds)
    if key in TO_TARGET and row.reached == 0:
        return f"not reached (0/{seeds})"
    text = summary.stat.ci_text(_scale(key), digits)
    if key in TO_TARGET and row.reached < seeds:
        text += f" (reached {row.reached}/{seeds} seeds)"
    return f"**{text}**" if several and summary.rank == 1 and summary.stat.mean is not None else text


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def _main_table(comparison: Comparison, keys: Sequence[str], goal: str) -> list[str]:
    digits = {key: _digits(comparison, key) for key in keys}
    several = {key: len({row.metrics[key].rank for row in comparison.rows}) > 1 for key in keys}
    rows = [[row.strategy, *(_cell(row, k, digits[k], several[k]) for k in keys)] for row in comparison.rows]
    return _table(["strategy", *(_header(k, goal) for k in keys)], rows)


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}" if value >= 0.001 else "< 0.001"


def _difference(summary: MetricSummary, scale: float, digits: int) -> str:
    """``+d [+low, +high]``: the mean paired difference and its CI, times ``scale``."""
    paired = summary.paired
    if paired is None or paired.diff is None:
        return "n/a"
    text = f"{paired.diff * scale:+.{digits}f}"
    if paired.diff_ci is not None:
        low, high = paired.diff_ci
        text += f" [{low * scale:+.{digits}f}, {high * scale:+.{digits}f}]"
    return text


def _paired_table(comparison: Comparison, keys: Sequence[str], goal: str) -> list[str]:
    """Per other strategy and accuracy metric (and MB total): the paired difference with
    its CI and the three p-values."""
    shown = [k for k in keys if _is_bitwidth(k) or k in PAIRED_ON_PAGE]
    rows = []
    for row in comparison.rows:
        for key in shown:
            summary = row.metrics[key]
            if summary.paired is None:
                continue
            paired, scale = summary.paired, _scale(key)
            rows.append(
                [
                    row.strategy,
                    _label(key, goal) + (" (pts)" if scale == 100 else ""),
                    str(paired.n),
                    _difference(summary, scale, _digits(comparison, key)),
                    *map(_p, (paired.p_paired, paired.p_wilcoxon, paired.p_holm)),
                ]
            )
    head = ["strategy", "metric", "pairs", "difference [95 % CI]", "p paired t", "p Wilcoxon", "p Holm"]
    return _table(head, rows)


def _how_to_read(comparison: Comparison) -> list[str]:
    return [
        "## How to read this",
        "",
        "- Each cell: the mean over seeds ± the half-width of its 95 % confidence interval (Student t, n − 1 "
        "degrees of freedom, `scipy.stats.t`); one seed: the mean alone. `comparison.csv` adds the sample std, "
        "n and the interval's ends. **Bold**: the best of a column whose strategies rank differently.",
        "- *acc @best val*: per seed, the test accuracy at the evaluated round with the highest validation "
        "accuracy (the earliest of equals), that round in *best val round*. *mean acc over rounds*: the area "
        "under test accuracy against round (trapezoid rule over the evaluated rounds) over the span of those rounds.",
        "- *to* the target: at the first evaluation at or above it, over the seeds that reach it; "
        '"not reached (0/n)" ranks last, and more seeds reaching ranks before a better mean.',
        f"- Paired by seed against **{comparison.reference}** (a seed gives every strategy the same federation): "
        "the difference is strategy − reference over the seeds both have (to a target: both reached), with "
        "its 95 % t interval; *p paired t*: `scipy.stats.ttest_rel`; *p Wilcoxon*: signed-rank "
        f"(`scipy.stats.wilcoxon`), from {MIN_WILCOXON_PAIRS} pairs not all equal; *p Holm*: Holm–Bonferroni "
        f"(`statsmodels`) over all {comparison.tests} paired t-tests in `comparison.csv` (every metric × "
        "strategy). All two-sided; n/a: too few pairs, or the same difference in every pair.",
    ]


def markdown(plan: ComparePlan, comparison: Comparison, figure: str | None) -> str:
    """The comparison page: the setup, the table of every strategy, the figure when
    ``figure`` is given, the table paired against the reference, how to read them."""
    goal = _percent(comparison.target)
    keys = _page_keys(comparison)
    continual = "forgetting" in keys
    lines = [
        f"# Strategy comparison: `{Path(plan.config).name}`",
        "",
        f"Produced by `{plan.command()}`.",
        "",
        f"- **Federation**: {describe_federation(plan.base)}. Every strategy runs on the same "
        "partitions, device profiles and sampled clients for a given seed.",
        f"- **Seeds**: {_seeds_text(plan.seeds)} ({len(plan.seeds)}).",
        f"- **Validation**: {_validation_note(plan)}.",
        *([f"- **Tuning**: {plan.tuning_note}"] if plan.tuning_note else []),
        f"- **Target accuracy**: {_target_note(plan, comparison.target)}. *sim s*: the simulation clock "
        "(counted FLOPs over device speed, bytes over bandwidth).",
        "- "
        + (
            "Accuracy is the final average task accuracy (continual runs). "
            if continual
            else "Accuracy is the final server-side test accuracy"
            + (", the mean over the device bitwidths present. " if any(map(_is_bitwidth, keys)) else ". ")
        )
        + "MB = 10^6 bytes, as counted by the byte ledger, all clients and rounds.",
        "",
        *_main_table(comparison, keys, goal),
    ]
    if figure:
        lines += ["", f"![learning curves, mean over seeds with 95 % CI bands]({figure})"]
    if len(comparison.rows) > 1:
        lines += ["", f"### Paired against {comparison.reference}", "", *_paired_table(comparison, keys, goal)]
    lines += ["", *_how_to_read(comparison)]
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, comparison: Comparison) -> None:
    header, rows = csv_rows(comparison)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_comparison(plan: ComparePlan, results: Sequence[SeedResult]) -> tuple[list[Path], str, Comparison]:
    """Write comparison.csv, .md and .png into ``plan.out``; return (paths, markdown, the
    :class:`~fedsparse.comparison.stats.Comparison`). The target is ``plan.target``, else
    :func:`~fedsparse.comparison.stats.default_target`; the reference ``plan.reference``."""
    from fedsparse.plots import plot_comparison

    target = plan.target if plan.target is not None else default_target(results)
    comparison = summarize(results, target, plan.reference)
    plan.out.mkdir(parents=True, exist_ok=True)
    _write_csv(plan.out / COMPARISON_CSV, comparison)
    figure = plan.out / COMPARISON_PNG
    plot_comparison(
        learning_curves(results),
        figure,
        target=target,
        title=f"{Path(plan.config).stem}: mean over {len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}",
    )
    text = markdown(plan, comparison, COMPARISON_PNG)
    (plan.out / COMPARISON_MD).write_text(text)
    return [plan.out / COMPARISON_MD, plan.out / COMPARISON_CSV, figure], text, comparison


def replot(folder: Path) -> list[Path]:
    """Redraw a ``fedsparse compare`` folder from its runs' files alone: every run's plots
    (``<strategy>/seed<s>/``, finished or not) and ``comparison.png`` from the finished
    ones (without the target line, which the plan set). The paths written; [] where the
    folder holds no run."""
    from fedsparse.plots import plot_comparison, plot_run
    from fedsparse.results import METRICS_FILE, SUMMARY_FILE, read_metrics, read_summary

    runs = sorted(path.parent for path in folder.glob(f"*/seed*/{METRICS_FILE}") if path.parent.name[4:].isdigit())
    written = [path for run in runs for path in plot_run(run)]
    finished = [
        SeedResult(run.parent.name, int(run.name[4:]), run, read_summary(run), read_metrics(run))
        for run in runs
        if (run / SUMMARY_FILE).is_file()
    ]
    if finished:
        seeds = len({result.seed for result in finished})
        title = f"{folder.name}: mean over {seeds} seed{'s' if seeds > 1 else ''}"
        written.append(plot_comparison(learning_curves(finished), folder / COMPARISON_PNG, title=title))
    return written
