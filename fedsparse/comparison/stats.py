"""The comparison's statistics: pure functions of summaries and metrics rows.

Every statistic is a :class:`Stat`: the mean and the sample standard deviation (n-1)
of the values present, over seeds. Nothing here reads or writes files or draws.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedsparse.results import megabytes, total_megabytes

if TYPE_CHECKING:
    from fedsparse.comparison.execute import SeedResult

DEFAULT_TARGET_FRACTION = 0.9  # of the weakest strategy's mean final accuracy


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n-1; None below 2 values) of ``n`` values."""

    mean: float | None
    std: float | None
    n: int

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


def summarize(results: Sequence[SeedResult], target: float) -> list[dict[str, Any]]:
    """One row per strategy (in run order): every metric's :class:`Stat` by CSV stem."""
    bitwidths = _bitwidths(results)
    continual = any("final_forgetting" in r.summary for r in results)
    rows = []
    for strategy, runs in _by_strategy(results).items():
        summaries = [r.summary for r in runs]
        reached = [first_reaching(r.rows, target) for r in runs]
        hits = [h for h in reached if h is not None]
        stats: dict[str, Any] = {"strategy": strategy, "n_seeds": len(runs), "seeds": [r.seed for r in runs]}
        stats["final_accuracy"] = mean_std([s.get("final_accuracy") for s in summaries])
        for bits in bitwidths:
            stats[f"accuracy_{bits}bit"] = mean_std(
                [(s.get("final_accuracy_by_bitwidth") or {}).get(bits) for s in summaries]
            )
        if continual:
            stats["forgetting"] = mean_std([s.get("final_forgetting") for s in summaries])
        stats["mb_up"] = mean_std([megabytes(s["bytes_up_total"]) for s in summaries])
        stats["mb_down"] = mean_std([megabytes(s["bytes_down_total"]) for s in summaries])
        stats["mb_total"] = mean_std([total_megabytes(s) for s in summaries])
        stats["target_accuracy"] = target
        stats["seeds_reached_target"] = len(hits)
        stats["mb_to_target"] = mean_std([h.megabytes for h in hits])
        stats["rounds_to_target"] = mean_std([h.round for h in hits])
        stats["sim_seconds_to_target"] = mean_std([h.sim_seconds for h in hits])
        stats["sim_seconds"] = mean_std([s.get("sim_seconds_total") for s in summaries])
        if stats["sim_seconds"].n < len(runs):  # not every run has a clock: no mean of a subset
            stats["sim_seconds"] = Stat(None, None, 0)
        rows.append(stats)
    return rows


def mean_curves(results: Sequence[SeedResult]) -> dict[str, dict[str, list[float]]]:
    """Per strategy, at each round every seed evaluated: mean cumulative MB, mean and
    std of accuracy over seeds (seeds are aligned by round, not by MB)."""
    curves = {}
    for strategy, runs in _by_strategy(results).items():
        per_seed = []
        for run in runs:
            cumulative, points = 0, {}
            for row in run.rows:
                cumulative += row["bytes_up"] + row["bytes_down"]
                if row.get("accuracy") is not None:
                    points[row["round"]] = (megabytes(cumulative), row["accuracy"])
            per_seed.append(points)
        rounds = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
        mb = [statistics.fmean(p[r][0] for p in per_seed) for r in rounds]
        accuracy = [mean_std([p[r][1] for p in per_seed]) for r in rounds]
        curves[strategy] = {
            "megabytes": mb,
            "accuracy": [a.mean for a in accuracy],
            "accuracy_std": [a.std or 0.0 for a in accuracy],
        }
    return curves  # type: ignore[return-value]
