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

The results, each mean ± sample std over seeds, go to ``comparison.csv`` (machine
readable, accuracies as fractions, MB = 10^6 bytes), ``comparison.md`` and
``comparison.png`` (accuracy against cumulative MB moved).

The modules, one job each: :mod:`~fedsparse.comparison.plan` (what to run),
:mod:`~fedsparse.comparison.execute` (running and resuming it),
:mod:`~fedsparse.comparison.stats` (the numbers) and :mod:`~fedsparse.comparison.report`
(the files). This package re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fedsparse.comparison.execute import IGNORED_SECTIONS, SeedResult, resumable_round, run_comparison, run_state
from fedsparse.comparison.plan import CompareError, ComparePlan, PlannedRun, plan_comparison
from fedsparse.comparison.report import (
    COMPARISON_CSV,
    COMPARISON_MD,
    COMPARISON_PNG,
    csv_rows,
    describe_federation,
    markdown,
    write_comparison,
)
from fedsparse.comparison.stats import (
    DEFAULT_TARGET_FRACTION,
    Reached,
    Stat,
    default_target,
    first_reaching,
    mean_curves,
    mean_std,
    summarize,
)

__all__ = [
    "COMPARISON_CSV",
    "COMPARISON_MD",
    "COMPARISON_PNG",
    "DEFAULT_TARGET_FRACTION",
    "IGNORED_SECTIONS",
    "CompareError",
    "ComparePlan",
    "PlannedRun",
    "Reached",
    "SeedResult",
    "Stat",
    "compare",
    "csv_rows",
    "default_target",
    "describe_federation",
    "first_reaching",
    "markdown",
    "mean_curves",
    "mean_std",
    "plan_comparison",
    "resumable_round",
    "run_comparison",
    "run_state",
    "summarize",
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
