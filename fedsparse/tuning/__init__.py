"""``fedsparse tune``: every strategy tuned with the same budget, selected by validation.

The modules, one job each: :mod:`~fedsparse.tuning.space` (what may be tuned, declared
beside each parameter), :mod:`~fedsparse.tuning.plan` (what to run),
:mod:`~fedsparse.tuning.study` (Optuna studies, run and resumed) and
:mod:`~fedsparse.tuning.report` (the files). This module imports none of them until
:func:`tune` is called: the config schema imports :mod:`~fedsparse.tuning.space` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedsparse.tuning.plan import TunePlan
    from fedsparse.tuning.study import TrialResult


def tune(
    plan: TunePlan,
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] = print,
    jobs: int = 1,
) -> tuple[list[Path], str, dict[str, TrialResult | None]]:
    """Run (or continue) every study of ``plan``, then write its files; return (paths
    written, the markdown page, each strategy's best trial or None). Raises
    :class:`fedsparse.comparison.CompareError` for studies or run folders made under
    another plan (unless ``overwrite``)."""
    from fedsparse.tuning.report import write_tune
    from fedsparse.tuning.study import best_trial, finished_trials, open_studies, run_waves

    studies = open_studies(plan, overwrite)
    report(
        f"tuning {len(plan.strategies)} strategies × {plan.trials} trials × {len(plan.seeds)} seeds on "
        f"{plan.config} in {plan.out}"
    )
    run_waves(plan, studies, progress=progress, report=report, jobs=jobs)
    trials = finished_trials(plan, studies)
    paths, text = write_tune(plan, studies, trials)
    return paths, text, {name: best_trial(trials[name]) for name in plan.strategies}
