"""The comparison's statistics on fixed numbers: against scipy / statsmodels and the
textbook, the metrics of a run's rows, and the table's ranks, labels and columns."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from fedsparse.comparison import (
    STATISTICS,
    SeedResult,
    accuracy_auc,
    best_by_validation,
    csv_rows,
    holm,
    markdown,
    mean_std,
    paired_test,
    plan_comparison,
    summarize,
)
from fedsparse.comparison.stats import welch_p

from ..conftest import REPO

# five seeds' final accuracies: B is A minus a small, steady margin, while the seeds
# themselves differ by far more than that margin
A = [0.80, 0.86, 0.91, 0.75, 0.95]
B = [0.79, 0.848, 0.901, 0.739, 0.94]


def _by_seed(values: list[float]) -> dict[int, float | None]:
    return dict(enumerate(values))


def test_welch_p_matches_the_textbook_statistic() -> None:
    a, b = [0.91, 0.93, 0.92, 0.95, 0.90], [0.85, 0.88, 0.86, 0.90, 0.84]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert welch_p(a, b) == pytest.approx(2 * scipy_stats.t.sf(abs(t), dof))
    assert welch_p(a, b) < 0.01 < welch_p(a, [0.90, 0.95, 0.89, 0.94, 0.93])  # type: ignore[operator]


def test_too_few_or_constant_values_give_no_p() -> None:
    assert welch_p([0.9], [0.8, 0.7]) is None
    assert welch_p([0.5, 0.5], [0.5, 0.5]) is None


def test_confidence_interval_is_student_t_over_n_minus_1_degrees_of_freedom() -> None:
    stat = mean_std(A)
    expected = scipy_stats.ttest_1samp(A, 0.0).confidence_interval(0.95)
    assert stat.ci() == pytest.approx((expected.low, expected.high))
    half = scipy_stats.t.ppf(0.975, 4) * statistics.stdev(A) / math.sqrt(5)  # the textbook formula
    assert stat.ci() == pytest.approx((statistics.fmean(A) - half, statistics.fmean(A) + half))
    assert stat.ci_text(100) == f"{statistics.fmean(A) * 100:.2f} ± {half * 100:.2f}"
    assert mean_std([0.5]).ci() is None and mean_std([0.5]).ci_text(100) == "50.00"
    assert mean_std([0.5, 0.5]).ci() == (0.5, 0.5)


def test_paired_test_equals_scipy_ttest_rel_and_wilcoxon() -> None:
    paired = paired_test(_by_seed(B), _by_seed(A))
    t = scipy_stats.ttest_rel(B, A)
    assert paired.n == 5
    assert paired.diff == pytest.approx(statistics.fmean(b - a for a, b in zip(A, B, strict=True)))
    assert paired.p_paired == pytest.approx(t.pvalue)
    assert paired.diff_ci == pytest.approx(tuple(t.confidence_interval(0.95)))
    assert paired.p_wilcoxon == pytest.approx(scipy_stats.wilcoxon(B, A).pvalue)
    assert paired.p_holm is None  # set across a whole table only


def test_a_paired_difference_is_significant_where_welch_is_not() -> None:
    paired = paired_test(_by_seed(B), _by_seed(A))
    assert paired.p_paired is not None and paired.p_paired < 0.01
    assert paired.diff_ci is not None and paired.diff_ci[1] < 0  # B is below A in every seed
    assert welch_p(B, A) > 0.5  # type: ignore[operator]  # unpaired, the seeds' spread hides it


def test_pairs_are_the_seeds_both_have_and_small_or_flat_samples_have_no_test() -> None:
    ours = {0: 0.5, 1: 0.6, 2: None, 3: 0.7}
    theirs = {0: 0.4, 1: 0.55, 2: 0.5, 3: 0.62, 4: 0.9}
    paired = paired_test(ours, theirs)
    assert paired.n == 3
    assert paired.p_paired == pytest.approx(scipy_stats.ttest_rel([0.5, 0.6, 0.7], [0.4, 0.55, 0.62]).pvalue)
    assert paired.p_wilcoxon is None  # below 5 pairs
    one = paired_test({0: 0.5}, {0: 0.4})
    assert (one.n, one.diff, one.diff_ci, one.p_paired) == (1, pytest.approx(0.1), None, None)
    same = paired_test(_by_seed([2.0] * 5), _by_seed([1.0] * 5))  # the same difference in every pair
    assert same.diff_ci == (1.0, 1.0) and same.p_paired is None
    assert same.p_wilcoxon == pytest.approx(scipy_stats.wilcoxon([1.0] * 5).pvalue)
    zero = paired_test(_by_seed(A), _by_seed(A))
    assert zero.p_paired is None and zero.p_wilcoxon is None


def test_holm_equals_statsmodels_and_the_step_down_rule() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    # by hand: sorted 0.005, 0.01, 0.03, 0.04, 0.2 times 5, 4, 3, 2, 1, running maximum
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])
    assert holm([]) == []


def _row(round_: int, **values: float) -> dict[str, Any]:
    return {
        "round": round_,
        "bytes_up": 1_000_000,
        "bytes_down": 1_000_000,
        "sim_seconds_total": float(round_),
        **values,
    }


def test_best_round_by_validation_takes_the_test_accuracy_of_that_round() -> None:
    rows = [
        _row(1, accuracy=0.50, val_accuracy=0.55),
        _row(2),  # not evaluated
        _row(3, accuracy=0.70, val_accuracy=0.80),
        _row(4, accuracy=0.90, val_accuracy=0.75),  # the best test accuracy is not the one chosen
        _row(5, accuracy=0.60, val_accuracy=0.80),  # ties: the earliest round
    ]
    best = best_by_validation(rows)
    assert best is not None and (best.round, best.val_accuracy, best.accuracy) == (3, 0.80, 0.70)
    assert best_by_validation([_row(1, accuracy=0.5)]) is None  # no validation set


def test_accuracy_auc_is_the_trapezoid_over_evaluated_rounds_divided_by_their_span() -> None:
    rows = [_row(1), _row(2, accuracy=0.2), _row(3), _row(4, accuracy=0.6), _row(6, accuracy=0.8)]
    # (0.2 + 0.6) / 2 × 2 + (0.6 + 0.8) / 2 × 2 = 2.2 over rounds 2 … 6
    assert accuracy_auc(rows) == pytest.approx(2.2 / 4)
    assert accuracy_auc([_row(3, accuracy=0.4)]) == 0.4
    assert accuracy_auc([_row(1)]) is None


def _results(curves: dict[str, list[list[float]]]) -> list[SeedResult]:
    """Per strategy, per seed: test accuracies at rounds 1, 2, …; 1 MB up + down a round."""
    results = []
    for strategy, seeds in curves.items():
        for seed, accuracies in enumerate(seeds):
            rows = [_row(r, accuracy=a) for r, a in enumerate(accuracies, start=1)]
            summary = {
                "final_accuracy": accuracies[-1],
                "bytes_up_total": 1_000_000 * len(rows),
                "bytes_down_total": 1_000_000 * len(rows),
                "sim_seconds_total": float(len(rows)),
            }
            results.append(SeedResult(strategy, seed, Path("."), summary, rows))
    return results


# fedavg reaches 0.8 in every seed, fedprox in two of three (later), fedpaq never
CURVES = {
    "fedavg": [[0.5, 0.8, 0.85], [0.6, 0.82, 0.86], [0.55, 0.81, 0.84]],
    "fedpaq": [[0.3, 0.4, 0.45], [0.3, 0.41, 0.47], [0.31, 0.42, 0.44]],
    "fedprox": [[0.4, 0.6, 0.81], [0.4, 0.5, 0.7], [0.5, 0.7, 0.8]],
}


def test_a_strategy_that_never_reaches_the_target_is_labelled_and_ranked_last() -> None:
    comparison = summarize(_results(CURVES), target=0.8)
    rows = {row.strategy: row for row in comparison.rows}
    assert comparison.reference == "fedavg"  # the first strategy by default
    assert {name: row.reached for name, row in rows.items()} == {"fedavg": 3, "fedpaq": 0, "fedprox": 2}
    for key in ("rounds_to_target", "mb_to_target", "sim_seconds_to_target"):
        # more seeds reaching ranks first, never reaching last, though "fedprox" is slower
        assert {name: row.metrics[key].rank for name, row in rows.items()} == {"fedavg": 1, "fedprox": 2, "fedpaq": 3}
    assert rows["fedpaq"].metrics["mb_to_target"].stat.n == 0
    assert rows["fedprox"].metrics["rounds_to_target"].paired.n == 2  # type: ignore[union-attr]  # both reached
    assert [rows[n].metrics["final_accuracy"].rank for n in ("fedavg", "fedpaq", "fedprox")] == [1, 3, 2]

    plan = plan_comparison(REPO / "configs" / "quickstart.yaml", strategies=list(CURVES), seeds=3)
    page = markdown(plan, comparison, None)
    never = next(line for line in page.splitlines() if line.startswith("| fedpaq |"))
    assert never.count("not reached (0/3)") == 3
    slow = next(line for line in page.splitlines() if line.startswith("| fedprox |"))
    assert slow.count("(reached 2/3 seeds)") == 3


def test_holm_runs_over_every_paired_t_test_of_the_table() -> None:
    comparison = summarize(_results(CURVES), target=0.8, reference="fedprox")
    assert comparison.reference == "fedprox"
    tested = [
        m.paired for row in comparison.rows for m in row.metrics.values() if m.paired and m.paired.p_paired is not None
    ]
    # final accuracy and mean accuracy over rounds of the other two; every other metric
    # differs by the same amount in every pair (bytes, rounds to the target): untestable
    assert len(tested) == comparison.tests == 4
    assert [t.p_holm for t in tested] == pytest.approx(
        list(multipletests([t.p_paired for t in tested], method="holm")[1])
    )
    reference = next(row for row in comparison.rows if row.strategy == "fedprox")
    assert all(m.paired is None for m in reference.metrics.values())


def test_csv_has_one_column_per_statistic_of_every_metric() -> None:
    comparison = summarize(_results(CURVES), target=0.8)
    header, rows = csv_rows(comparison)
    metrics = (
        "final_accuracy",
        "accuracy_at_best_val",
        "best_val_round",
        "accuracy_auc",
        "mb_up",
        "mb_down",
        "mb_total",
        "rounds_to_target",
        "mb_to_target",
        "sim_seconds_to_target",
        "sim_seconds",
    )
    assert header == [
        "strategy",
        "reference",
        "n_seeds",
        "seeds",
        "target_accuracy",
        "seeds_reached_target",
        *(f"{metric}_{name}" for metric in metrics for name in STATISTICS),
    ]
    cells = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    never, fast = cells["fedpaq"], cells["fedavg"]
    assert never["reference"] == "fedavg" and never["seeds"] == "0 1 2" and never["seeds_reached_target"] == "0"
    assert never["mb_to_target_mean"] == never["mb_to_target_diff"] == ""
    assert never["mb_to_target_n_pairs"] == "0" and never["mb_to_target_rank"] == "3"
    low, high = mean_std([0.85, 0.86, 0.84]).ci()  # type: ignore[misc]
    assert (float(fast["final_accuracy_ci_low"]), float(fast["final_accuracy_ci_high"])) == pytest.approx((low, high))
    assert fast["final_accuracy_diff"] == fast["final_accuracy_p_holm"] == ""  # the reference
    assert float(never["final_accuracy_p_paired"]) == pytest.approx(
        scipy_stats.ttest_rel([0.45, 0.47, 0.44], [0.85, 0.86, 0.84]).pvalue, abs=1e-6
    )
    assert never["accuracy_at_best_val_mean"] == ""  # no validation set


def test_learning_curves_plot_accuracy_against_simulated_seconds_where_rows_have_a_clock() -> None:
    from fedsparse.comparison import learning_curves

    results = _results({"fedavg": CURVES["fedavg"]})
    for result, scale in zip(results, (1.0, 2.0, 3.0), strict=True):
        for row in result.rows:
            row["sim_seconds_total"] *= scale  # seed s's clock runs s + 1 times as slow
    band = learning_curves(results)["fedavg"]["test_vs_sim_seconds"]
    assert band.x == [2.0, 4.0, 6.0]  # the seeds' mean seconds at rounds 1, 2, 3
    assert band.mean == learning_curves(results)["fedavg"]["test_vs_round"].mean
    for result in results:
        for row in result.rows:
            del row["sim_seconds_total"]  # rows of a run without a simulation clock
    assert set(learning_curves(results)["fedavg"]) == {"test_vs_round", "test_vs_mb"}
