"""``fedsparse compare``: several strategies on one federation, side by side.

Every (strategy, seed) is one ordinary run (:func:`fedsparse.runner.run_experiment`) in
``OUT/<strategy>/seed<s>/``, so ``fedsparse plot`` works on each. Seed ``s`` is the
config's ``seed`` plus 0, 1, … N-1, the same for every strategy, and partitions, device
profiles and client sampling depend only on the seed: for a given seed all strategies
run on the identical federation, and differ only in ``strategy.name``.

Everything is checked before the first run starts: every strategy against the config
(a strategy that cannot run on it is named in the error), the data of every seed, and
the run folders already in ``OUT``. A finished run whose resolved config matches (the
``output`` section aside) is reused and an interrupted one continues from its
checkpoint, so an interrupted comparison resumes; a run of a different config is an
error unless ``overwrite``.

The results go to ``comparison.csv`` (machine readable: per metric its mean, sample std,
n and 95 % t interval over seeds, and its paired tests against the reference strategy
with Holm-adjusted p-values; accuracies as fractions, MB = 10^6 bytes), ``comparison.md``
(mean ± CI tables, the paired table, how to read them) and ``comparison.png`` (learning
curves against round and MB with 95 % CI bands).

The modules, one job each: :mod:`~fedsparse.comparison.plan` (what to run),
:mod:`~fedsparse.comparison.execute` (running and resuming it),
:mod:`~fedsparse.comparison.stats` (the numbers) and :mod:`~fedsparse.comparison.report`
(the files). This package re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fedsparse.comparison.execute import IGNORED_SECTIONS, SeedResult, resumable_round, run_comparison, run_state
from fedsparse.comparison.plan import DEFAULT_VALIDATION, CompareError, ComparePlan, PlannedRun, plan_comparison
from fedsparse.comparison.report import (
    COMPARISON_CSV,
    COMPARISON_MD,
    COMPARISON_PNG,
    STATISTICS,
    csv_rows,
    describe_federation,
    markdown,
    table_rows,
    write_comparison,
)
from fedsparse.comparison.stats import (
    DEFAULT_TARGET_FRACTION,
    Band,
    BestRound,
    Comparison,
    MetricSummary,
    Paired,
    Reached,
    Stat,
    StrategyRow,
    accuracy_auc,
    best_by_validation,
    default_target,
    first_reaching,
    holm,
    learning_curves,
    mean_std,
    paired_test,
    seed_values,
    summarize,
)

__all__ = [
    "COMPARISON_CSV",
    "COMPARISON_MD",
    "COMPARISON_PNG",
    "DEFAULT_TARGET_FRACTION",
    "DEFAULT_VALIDATION",
    "IGNORED_SECTIONS",
    "STATISTICS",
    "Band",
    "BestRound",
    "CompareError",
    "ComparePlan",
    "Comparison",
    "MetricSummary",
    "Paired",
    "PlannedRun",
    "Reached",
    "SeedResult",
    "Stat",
    "StrategyRow",
    "accuracy_auc",
    "best_by_validation",
    "compare",
    "csv_rows",
    "default_target",
    "describe_federation",
    "first_reaching",
    "holm",
    "learning_curves",
    "markdown",
    "mean_std",
    "paired_test",
    "plan_comparison",
    "resumable_round",
    "run_comparison",
    "run_state",
    "seed_values",
    "summarize",
    "table_rows",
    "write_comparison",
]


def compare(
    plan: ComparePlan,
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] = print,
    jobs: int = 1,
) -> tuple[list[Path], str]:
    """Run the plan (``jobs`` runs at a time), then write its comparison; return (paths
    written, the markdown)."""
    results = run_comparison(plan, overwrite=overwrite, progress=progress, report=report, jobs=jobs)
    paths, text, _ = write_comparison(plan, results)
    return paths, text
