"""Running a tune: one Optuna study per strategy, in SQLite inside the tune folder.

Trials run in *waves*: each wave is the next trial of every strategy still short of its
budget, all their runs (one per tuning seed) handed to the comparison's executor
(:func:`fedsparse.comparison.execute.execute_runs`: ``jobs`` local processes, or Ray
tasks on the cluster at ``engine.ray_address``). Within a study trials stay sequential,
so what a trial tries depends on the earlier trials only, never on ``jobs``.

Reproducible by construction: trial ``k`` of a study is asked with a TPE sampler seeded
by (``sampler_seed``, ``k``), from the study's finished trials alone, so the same seed
gives the same trials, interrupted or not. Trial 0 is the config's own setting
(:meth:`~fedsparse.tuning.plan.TunePlan.baseline`). An interrupted tune resumes: a
finished trial is never repeated, the trial that was running is re-run with its own
parameters, and its runs continue from their checkpoints. A run that fails fails its
trial (Optuna's ``FAIL``), which still counts against the budget.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedsparse import protocol
from fedsparse.comparison.execute import SeedResult, execute_runs
from fedsparse.comparison.plan import CompareError
from fedsparse.tuning.plan import TunePlan

if TYPE_CHECKING:
    import optuna

STUDY_DB = "study.db"
PLAN_ATTR = "fedsparse_plan"  # a study's user attribute: the fingerprint it was made under


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / STUDY_DB).resolve()}"


def validation_score(rows: Sequence[dict[str, Any]], last_rounds: int) -> float | None:
    """The mean ``val_accuracy`` of the last ``last_rounds`` evaluated rounds (None: none)."""
    values = [row[protocol.VAL_ACCURACY] for row in rows if row.get(protocol.VAL_ACCURACY) is not None]
    return statistics.fmean(values[-last_rounds:]) if values else None


def trial_score(results: Sequence[SeedResult], last_rounds: int) -> float | None:
    """A trial's objective: the mean over its tuning seeds of :func:`validation_score`;
    None when a run failed or has no validation accuracy."""
    scores = [None if r.failure else validation_score(r.rows, last_rounds) for r in results]
    present = [s for s in scores if s is not None]
    return statistics.fmean(present) if present and len(present) == len(scores) else None


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)


def open_studies(plan: TunePlan, overwrite: bool) -> dict[str, optuna.Study]:
    """Each strategy's study: continued where it was made under this plan's fingerprint,
    else new with the baseline enqueued; a study made under another fingerprint is an
    error unless ``overwrite`` (which deletes it)."""
    import optuna

    _quiet_optuna()
    plan.out.mkdir(parents=True, exist_ok=True)
    url = storage_url(plan.out)
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(url)}
    studies, clashes = {}, []
    for name in plan.strategies:
        if name in existing:
            study = optuna.load_study(study_name=name, storage=url)
            if study.user_attrs.get(PLAN_ATTR) == plan.fingerprint(name):
                studies[name] = study
                continue
            if not overwrite:
                clashes.append(f"{plan.out / STUDY_DB}: study {name!r} was made with another config, seeds or space")
                continue
            optuna.delete_study(study_name=name, storage=url)
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        study.set_user_attr(PLAN_ATTR, plan.fingerprint(name))
        baseline = plan.baseline(name)
        if baseline:
            study.enqueue_trial(baseline)
        studies[name] = study
    if clashes:
        raise CompareError([*clashes, "pass --overwrite to start them again, or choose another --out"])
    return studies


def next_trial(plan: TunePlan, strategy: str, study: optuna.Study) -> tuple[int, dict[str, Any]] | None:
    """The trial to run next for ``strategy`` (number, params): the one left running by
    an interrupted tune, else a new one while the budget lasts; None when spent."""
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running:
        return running[0].number, dict(running[0].params)
    finished = [t for t in trials if t.state.is_finished()]
    if len(finished) >= plan.trials:
        return None
    study.sampler = TPESampler(seed=plan.sampler_seed * 100_003 + len(trials))
    trial = study.ask({knob.path: knob.distribution() for knob in plan.spaces[strategy]})
    return trial.number, dict(trial.params)


@dataclass(frozen=True)
class TrialResult:
    """One finished trial: its number, parameters, score (None: failed) and runs."""

    strategy: str
    number: int
    params: dict[str, Any]
    score: float | None
    runs: list[SeedResult]


def run_waves(
    plan: TunePlan,
    studies: dict[str, optuna.Study],
    *,
    progress: bool,
    report: Callable[[str], None],
    jobs: int,
) -> None:
    """Run wave after wave until every study has its ``plan.trials`` finished trials."""
    from optuna.trial import TrialState

    wave_number = 0
    while True:
        wave = {name: found for name in plan.strategies if (found := next_trial(plan, name, studies[name]))}
        if not wave:
            return
        wave_number += 1
        report(f"wave {wave_number}: " + ", ".join(f"{name} trial {number}" for name, (number, _) in wave.items()))
        runs = [run for name, (number, params) in wave.items() for run in plan.trial_runs(name, number, params)]
        results = execute_runs(runs, progress=progress, report=report, jobs=jobs, keep_going=True)
        for name, (number, _) in wave.items():
            score = trial_score([r for r in results if r.strategy == name], plan.last_rounds)
            if score is None:
                studies[name].tell(number, state=TrialState.FAIL)
                report(f"{name} trial {number}: failed")
            else:
                studies[name].tell(number, score)
                report(f"{name} trial {number}: validation score {score:.4f}")


def finished_trials(plan: TunePlan, studies: dict[str, optuna.Study]) -> dict[str, list[TrialResult]]:
    """Every finished trial of every study, with its runs read back from their folders."""
    from fedsparse.comparison.execute import run_state
    from fedsparse.results import read_metrics, read_summary

    found: dict[str, list[TrialResult]] = {}
    for name, study in studies.items():
        found[name] = []
        for trial in study.get_trials(deepcopy=False):
            if not trial.state.is_finished():
                continue
            runs = []
            for run in plan.trial_runs(name, trial.number, trial.params):
                done = run_state(run)[0] == "done"
                summary = read_summary(run.run_dir) if done else {}
                rows = read_metrics(run.run_dir) if done else []
                runs.append(SeedResult(name, run.seed, run.run_dir, summary, rows, True, None if done else "failed"))
            found[name].append(TrialResult(name, trial.number, dict(trial.params), trial.value, runs))
    return found


def best_trial(trials: Sequence[TrialResult]) -> TrialResult | None:
    """The trial with the highest score (the earliest on ties); None if all failed."""
    scored = [t for t in trials if t.score is not None]
    return max(scored, key=lambda t: (t.score, -t.number)) if scored else None
