"""The comparison's statistics: pure functions of summaries and metrics rows.

Per strategy and metric, over seeds: a :class:`Stat` (mean, sample std, n) with its 95 %
Student-t confidence interval (``scipy.stats.t``). Against a reference strategy, paired
by seed (every strategy runs seed ``s`` on the same federation): a :class:`Paired` with
the mean difference, its 95 % t interval and the paired t-test (``scipy.stats.ttest_rel``),
the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, at least
:data:`MIN_WILCOXON_PAIRS` pairs not all equal) and the Holm–Bonferroni adjusted paired-t
p-value (``statsmodels``' ``multipletests``) over every test of the :class:`Comparison`.
Nothing here reads or writes files or draws.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fedsparse import protocol
from fedsparse.results import megabytes, total_megabytes

if TYPE_CHECKING:
    from fedsparse.comparison.execute import SeedResult

DEFAULT_TARGET_FRACTION = 0.9  # of the weakest strategy's mean final accuracy
CONFIDENCE = 0.95
MIN_WILCOXON_PAIRS = 5

TO_TARGET = ("rounds_to_target", "mb_to_target", "sim_seconds_to_target")
# smaller is better for these; larger for every other ranked metric (the accuracies)
LOWER_IS_BETTER = frozenset({"forgetting", "mb_up", "mb_down", "mb_total", "sim_seconds", *TO_TARGET})
DESCRIPTIVE = frozenset({"best_val_round"})  # reported only: neither ranked nor tested


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n-1; None below 2 values) of ``n`` values."""

    mean: float | None
    std: float | None
    n: int

    def ci(self, level: float = CONFIDENCE) -> tuple[float, float] | None:
        """The Student-t confidence interval of the mean (n-1 degrees of freedom); None
        below 2 values; the mean itself when the values are all equal."""
        if self.mean is None or self.std is None:
            return None
        if self.std == 0:
            return self.mean, self.mean
        from scipy.stats import t

        low, high = t.interval(level, self.n - 1, loc=self.mean, scale=self.std / math.sqrt(self.n))
        return float(low), float(high)

    def text(self, scale: float = 1.0, digits: int = 2, *, single_std: float | None = None) -> str:
        """``mean ± std``, both times ``scale`` with ``digits`` decimals; ``n/a`` without
        values. For a single value (no std) the mean alone, or ``mean ± single_std``
        when ``single_std`` is given (written as given, not scaled)."""
        if self.mean is None:
            return "n/a"
        std = single_std if self.std is None else self.std * scale
        if std is None:
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {std:.{digits}f}"

    def ci_text(self, scale: float = 1.0, digits: int = 2) -> str:
        """``mean ± h``, h the half-width of :meth:`ci`, times ``scale`` with ``digits``
        decimals; the mean alone for a single value, ``n/a`` without values."""
        interval = self.ci()
        if self.mean is None or interval is None:
            return self.text(scale, digits)
        return f"{self.mean * scale:.{digits}f} ± {(interval[1] - self.mean) * scale:.{digits}f}"


def mean_std(values: Sequence[float | None]) -> Stat:
    """The :class:`Stat` of ``values``, None values left out."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Stat(statistics.fmean(present), std, len(present))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have the same mean (no
    equal-variance assumption); None with fewer than two values on a side, or when both
    sides are constant."""
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2 or (statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0):
        return None
    return float(ttest_ind(list(a), list(b), equal_var=False).pvalue)


@dataclass(frozen=True)
class Paired:
    """A strategy against the reference over the ``n`` seeds both have a value for:
    the mean of (strategy − reference) and its t interval, and the two-sided p-values
    (None: n/a). ``p_paired`` is n/a below 2 pairs or when every pair differs by the same
    amount (no variance to test); ``p_wilcoxon`` below :data:`MIN_WILCOXON_PAIRS` pairs
    or when every difference is zero; ``p_holm`` until :func:`holm` sets it."""

    n: int
    diff: float | None
    diff_ci: tuple[float, float] | None
    p_paired: float | None
    p_wilcoxon: float | None
    p_holm: float | None = None


def _constant(values: Sequence[float]) -> bool:
    """All equal, up to floating-point rounding of the subtraction that made them."""
    return max(values) - min(values) <= 1e-12 * max(1.0, *map(abs, values))


def paired_test(values: Mapping[int, float | None], reference: Mapping[int, float | None]) -> Paired:
    """``values`` against ``reference`` (both by seed), paired over the seeds where both
    have a value: see :class:`Paired`."""
    from scipy.stats import ttest_rel, wilcoxon

    pairs = [(a, reference[s]) for s, a in values.items() if a is not None and reference.get(s) is not None]
    ours, theirs = [float(a) for a, _ in pairs], [float(b) for _, b in pairs]  # type: ignore[arg-type]
    differences = [a - b for a, b in zip(ours, theirs, strict=True)]
    difference = mean_std(differences)
    p_paired, interval = None, difference.ci()
    if len(pairs) >= 2 and not _constant(differences):
        result = ttest_rel(ours, theirs)
        p_paired, (low, high) = float(result.pvalue), result.confidence_interval(CONFIDENCE)
        interval = float(low), float(high)
    p_wilcoxon = None
    if len(pairs) >= MIN_WILCOXON_PAIRS and any(differences):
        p_wilcoxon = float(wilcoxon(ours, theirs).pvalue)
    return Paired(len(pairs), difference.mean, interval, p_paired, p_wilcoxon)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (``statsmodels``' ``multipletests``), in order."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


@dataclass(frozen=True)
class Reached:
    """Where a run first reached the target accuracy."""

    round: int
    megabytes: float  # cumulative up + down through that round
    sim_seconds: float | None


def first_reaching(rows: Sequence[dict[str, Any]], target: float) -> Reached | None:
    """The first evaluated round whose accuracy is at least ``target`` (None: never);
    bytes of rounds without an evaluation count towards the cumulative MB."""
    cumulative = 0
    for row in rows:
        cumulative += row["bytes_up"] + row["bytes_down"]
        accuracy = row.get("accuracy")
        if accuracy is not None and accuracy >= target:
            return Reached(int(row["round"]), megabytes(cumulative), row.get("sim_seconds_total"))
    return None


@dataclass(frozen=True)
class BestRound:
    """The evaluated round with the highest validation accuracy, and its test accuracy."""

    round: int
    val_accuracy: float
    accuracy: float | None  # None: the round has no test evaluation


def best_by_validation(rows: Sequence[dict[str, Any]]) -> BestRound | None:
    """The round whose ``val_accuracy`` is highest (the earliest of equals) with that
    round's test ``accuracy``; None when no row has a validation accuracy."""
    best = None
    for row in rows:
        value = row.get(protocol.VAL_ACCURACY)
        if value is not None and (best is None or value > best[protocol.VAL_ACCURACY]):
            best = row
    if best is None:
        return None
    return BestRound(int(best["round"]), best[protocol.VAL_ACCURACY], best.get("accuracy"))


def accuracy_auc(rows: Sequence[dict[str, Any]]) -> float | None:
    """The area under test accuracy against round (trapezoid rule over the evaluated
    rounds) divided by the span from the first to the last evaluated round: the mean
    accuracy over training. One evaluation: its accuracy; none: None."""
    from scipy.integrate import trapezoid

    points = [(row["round"], row["accuracy"]) for row in rows if row.get("accuracy") is not None]
    if len(points) < 2:
        return points[0][1] if points else None
    rounds, accuracies = zip(*points, strict=True)
    return float(trapezoid(accuracies, rounds)) / (rounds[-1] - rounds[0])


def _by_strategy(results: Sequence[SeedResult]) -> dict[str, list[SeedResult]]:
    grouped: dict[str, list[SeedResult]] = {}
    for result in results:
        grouped.setdefault(result.strategy, []).append(result)
    return grouped


def default_target(results: Sequence[SeedResult]) -> float:
    """90 % of the weakest strategy's mean final accuracy, floored to a whole percent:
    an accuracy every strategy reaches on average, so MB-to-target compares them all."""
    means = [mean_std([r.summary.get("final_accuracy") for r in runs]).mean for runs in _by_strategy(results).values()]
    weakest = min((m for m in means if m is not None), default=1.0)
    return max(math.floor(DEFAULT_TARGET_FRACTION * weakest * 100) / 100, 0.01)


def _bitwidths(results: Sequence[SeedResult]) -> list[str]:
    """Device bitwidths with their own accuracy, when there is more than one."""
    found = {b for r in results for b in (r.summary.get("final_accuracy_by_bitwidth") or {})}
    return sorted(found, key=int) if len(found) > 1 else []


def seed_values(
    result: SeedResult, target: float, bitwidths: Sequence[str] = (), continual: bool = False
) -> dict[str, float | None]:
    """Every metric of one run by CSV stem (None: the run has no value for it): final
    accuracy, per-bitwidth accuracies (``bitwidths``), forgetting (``continual``), the
    test accuracy at the best validation round and that round, :func:`accuracy_auc`,
    MB moved, rounds / MB / simulated seconds to ``target`` and simulated seconds."""
    summary = result.summary
    values: dict[str, float | None] = {"final_accuracy": summary.get("final_accuracy")}
    for bits in bitwidths:
        values[f"accuracy_{bits}bit"] = (summary.get("final_accuracy_by_bitwidth") or {}).get(bits)
    if continual:
        values["forgetting"] = summary.get("final_forgetting")
    best = best_by_validation(result.rows)
    values["accuracy_at_best_val"] = None if best is None else best.accuracy
    values["best_val_round"] = None if best is None else best.round
    values["accuracy_auc"] = accuracy_auc(result.rows)
    values["mb_up"] = megabytes(summary["bytes_up_total"])
    values["mb_down"] = megabytes(summary["bytes_down_total"])
    values["mb_total"] = total_megabytes(summary)
    hit = first_reaching(result.rows, target)
    values["rounds_to_target"] = None if hit is None else hit.round
    values["mb_to_target"] = None if hit is None else hit.megabytes
    values["sim_seconds_to_target"] = None if hit is None else hit.sim_seconds
    values["sim_seconds"] = summary.get("sim_seconds_total")
    return values


@dataclass(frozen=True)
class MetricSummary:
    """One strategy's metric over seeds: its :class:`Stat`, its :class:`Paired` test
    against the reference (None for the reference itself and :data:`DESCRIPTIVE`
    metrics) and its rank among the strategies (1 = best; None when not ranked)."""

    stat: Stat
    paired: Paired | None = None
    rank: int | None = None


@dataclass(frozen=True)
class StrategyRow:
    """One strategy of a comparison: its seeds, how many reached the target, and every
    metric of :func:`seed_values` by CSV stem."""

    strategy: str
    seeds: list[int]
    reached: int
    metrics: dict[str, MetricSummary]


@dataclass(frozen=True)
class Comparison:
    """Every strategy's :class:`StrategyRow` (in run order), against ``reference``;
    ``tests`` paired-t p-values make up the Holm family."""

    reference: str
    target: float
    rows: list[StrategyRow]
    tests: int

    def metric_keys(self) -> list[str]:
        """The metrics' CSV stems, in table order (every row has the same)."""
        return list(self.rows[0].metrics)


def _rank_key(key: str, summary: MetricSummary) -> tuple[bool, int, float]:
    """Sorts best first: a value before none; to a target, more seeds reaching first;
    then the mean in the metric's better direction."""
    stat = summary.stat
    reached = -stat.n if key in TO_TARGET else 0
    mean = stat.mean if stat.mean is not None else 0.0
    return stat.mean is None, reached, mean if key in LOWER_IS_BETTER else -mean


def _ranked(rows: list[StrategyRow], key: str) -> dict[str, int]:
    """Competition ranks (1, 2, 2, 4) of the strategies by :func:`_rank_key`."""
    keys = {row.strategy: _rank_key(key, row.metrics[key]) for row in rows}
    ordered = sorted(keys.values())
    return {strategy: ordered.index(value) + 1 for strategy, value in keys.items()}


def _with_ranks(rows: list[StrategyRow]) -> list[StrategyRow]:
    ranks = {key: _ranked(rows, key) for key in rows[0].metrics if key not in DESCRIPTIVE}
    return [
        replace(
            row,
            metrics={k: replace(m, rank=ranks[k][row.strategy]) if k in ranks else m for k, m in row.metrics.items()},
        )
        for row in rows
    ]


def _with_holm(rows: list[StrategyRow]) -> tuple[list[StrategyRow], int]:
    """``rows`` with every paired-t p-value's Holm adjustment over all of them; their number."""
    family = [
        (index, key, summary.paired)
        for index, row in enumerate(rows)
        for key, summary in row.metrics.items()
        if summary.paired is not None and summary.paired.p_paired is not None
    ]
    adjusted = holm([paired.p_paired for _, _, paired in family if paired.p_paired is not None])
    metrics = [dict(row.metrics) for row in rows]
    for (index, key, paired), p in zip(family, adjusted, strict=True):
        metrics[index][key] = replace(metrics[index][key], paired=replace(paired, p_holm=p))
    return [replace(row, metrics=m) for row, m in zip(rows, metrics, strict=True)], len(family)


def _strategy_values(results: Sequence[SeedResult], target: float) -> dict[str, dict[int, dict[str, float | None]]]:
    """Per strategy, per seed, :func:`seed_values`; simulated seconds of a strategy
    whose runs do not all have a clock are left out (no mean of a subset)."""
    bitwidths = _bitwidths(results)
    continual = any("final_forgetting" in r.summary for r in results)
    values = {
        strategy: {r.seed: seed_values(r, target, bitwidths, continual) for r in runs}
        for strategy, runs in _by_strategy(results).items()
    }
    for by_seed in values.values():
        if any(v["sim_seconds"] is None for v in by_seed.values()):
            for v in by_seed.values():
                v["sim_seconds"] = None
    return values


def summarize(results: Sequence[SeedResult], target: float, reference: str | None = None) -> Comparison:
    """The :class:`Comparison` of ``results`` against ``reference`` (None: the first
    strategy), the target-based metrics at ``target``."""
    values = _strategy_values(results, target)
    reference = reference if reference is not None else next(iter(values))
    baseline = values[reference]
    rows = []
    for strategy, by_seed in values.items():
        metrics = {}
        for key in next(iter(by_seed.values())):
            column = {seed: v[key] for seed, v in by_seed.items()}
            tested = strategy != reference and key not in DESCRIPTIVE
            paired = paired_test(column, {s: v[key] for s, v in baseline.items()}) if tested else None
            metrics[key] = MetricSummary(mean_std(list(column.values())), paired)
        reached = sum(v["rounds_to_target"] is not None for v in by_seed.values())
        rows.append(StrategyRow(strategy, list(by_seed), reached, metrics))
    rows, tests = _with_holm(_with_ranks(rows))
    return Comparison(reference, target, rows, tests)


@dataclass(frozen=True)
class Band:
    """A learning curve over seeds: at each ``x``, the mean and its 95 % t interval
    (``low`` = ``high`` = mean for a single seed)."""

    x: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


CURVES = ("test_vs_round", "val_vs_round", "test_vs_mb", "test_vs_sim_seconds")
SIM_CLOCK = "sim_seconds_total"  # a row's simulated seconds through its round (the device clock)


def _points(rows: Sequence[dict[str, Any]], key: str) -> dict[int, tuple[float, float, float | None]]:
    """Round → (cumulative MB through it, ``key``'s value, simulated seconds through it or
    ``None`` where the row has no simulation clock) for every row with a value."""
    cumulative, points = 0, {}
    for row in rows:
        cumulative += row["bytes_up"] + row["bytes_down"]
        if row.get(key) is not None:
            points[row["round"]] = (megabytes(cumulative), row[key], row.get(SIM_CLOCK))
    return points


def _band(per_seed: list[dict[int, tuple[float, float, float | None]]], against: str = "round") -> Band | None:
    """The band at the rounds every seed has (seeds aligned by round); its x: the round,
    or (``against`` "mb", "sim_seconds") the seeds' mean cumulative MB or simulated
    seconds at that round. None when there is no such round, or against simulated seconds
    when a seed's rows carry no simulation clock or it never ticked."""
    rounds = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
    clocks = [p[r][2] for p in per_seed for r in rounds]
    if not rounds or (against == "sim_seconds" and (None in clocks or not any(clocks))):
        return None
    band = Band([], [], [], [])
    for r in rounds:
        values = [p[r][1] for p in per_seed]
        mean = statistics.fmean(values)
        low, high = mean_std(values).ci() or (mean, mean)
        column = {"mb": 0, "sim_seconds": 2}.get(against)
        band.x.append(float(r) if column is None else statistics.fmean(float(p[r][column] or 0) for p in per_seed))
        band.mean.append(mean)
        band.low.append(low)
        band.high.append(high)
    return band


def learning_curves(results: Sequence[SeedResult]) -> dict[str, dict[str, Band]]:
    """Per strategy, its :data:`CURVES` that have points: test accuracy against round,
    validation accuracy against round, test accuracy against cumulative MB moved and
    against simulated seconds (only where the rows carry a simulation clock that ticked)."""
    curves = {}
    for strategy, runs in _by_strategy(results).items():
        test = [_points(r.rows, "accuracy") for r in runs]
        bands = {
            "test_vs_round": _band(test),
            "val_vs_round": _band([_points(r.rows, protocol.VAL_ACCURACY) for r in runs]),
            "test_vs_mb": _band(test, against="mb"),
            "test_vs_sim_seconds": _band(test, against="sim_seconds"),
        }
        curves[strategy] = {name: band for name, band in bands.items() if band is not None}
    return curves
