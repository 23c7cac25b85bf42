"""Running a planned comparison: every (strategy, seed) is one ordinary run.

Each run goes through :func:`fedsparse.runner.run_experiment` into its own folder, so
``fedsparse plot`` works on each. Before the first run starts, every run folder is
classified (:func:`run_state`) and the data of every seed still to run is checked. A
finished run whose resolved config matches (the ``output`` section aside) is reused, an
interrupted one continues from its checkpoint (:func:`resumable_round`), and a folder of
another config, or one that is not a run, is an error unless ``overwrite``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedsparse.comparison.plan import CompareError, ComparePlan, PlannedRun
from fedsparse.config import ExperimentConfig
from fedsparse.results import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, read_metrics, read_summary, total_megabytes

IGNORED_SECTIONS = ("output",)  # where a run is written and how it is shown: not what it computes


def _differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs), key=str):
            if not path and key in IGNORED_SECTIONS:
                continue
            found += _differences(ours.get(key), theirs.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if ours == theirs else [f"{path or '(config)'}: {theirs!r} there, {ours!r} here"]


def _clash(run: PlannedRun, differences: list[str]) -> str:
    if not (run.run_dir / CONFIG_FILE).is_file():
        return f"{run.run_dir} holds files that are not a run"
    more = f"; {len(differences) - 3} more" if len(differences) > 3 else ""
    return f"{run.run_dir} holds a run of another config ({'; '.join(differences[:3])}{more})"


def run_state(run: PlannedRun) -> tuple[str, list[str]]:
    """``new``, ``done`` (finished, same config), ``incomplete`` (same config, no summary:
    interrupted) or ``different`` (another config, or not a run; the differences as lines)."""
    config_file = run.run_dir / CONFIG_FILE
    if not config_file.is_file():
        if run.run_dir.is_dir() and any(run.run_dir.iterdir()):
            return "different", []
        return "new", []
    try:
        theirs = yaml.safe_load(config_file.read_text())
    except yaml.YAMLError:
        theirs = None
    differences = _differences(run.cfg.model_dump(mode="json"), theirs if isinstance(theirs, dict) else {})
    if differences:
        return "different", differences
    finished = (run.run_dir / SUMMARY_FILE).is_file() and (run.run_dir / METRICS_FILE).is_file()
    return ("done" if finished else "incomplete"), []


def resumable_round(run: PlannedRun) -> int | None:
    """The round an interrupted run's checkpoint completed (None: start it afresh)."""
    from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
    from fedsparse.runner import client_state_root

    try:
        checkpoint = load_checkpoint(checkpoint_path(run.run_dir))
    except CheckpointError:
        return None
    if run.cfg.data.tasks is not None:  # task-stream clients must have kept their own state too
        state = client_state_root(run.cfg, run.run_dir)
        if state is None or not state.is_dir():
            return None
    return checkpoint.round


@dataclass(frozen=True)
class SeedResult:
    """One finished (strategy, seed): its summary and its per-round metrics rows."""

    strategy: str
    seed: int
    run_dir: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    reused: bool = False
    failure: str | None = None  # why the run failed (only with keep_going; summary is then empty)


def _check_before_running(
    runs: Sequence[PlannedRun], states: dict[Path, tuple[str, list[str]]], overwrite: bool
) -> list[PlannedRun]:
    """The runs still to do; raises :class:`CompareError` for folders of other configs
    (unless ``overwrite``) and ``RunFailed`` for a seed whose data cannot be had."""
    from fedsparse.runner import RunFailed, check_data

    clashes = [_clash(run, states[run.run_dir][1]) for run in runs if states[run.run_dir][0] == "different"]
    if clashes and not overwrite:
        raise CompareError([*clashes, "pass --overwrite to replace them, or choose another --out"])
    pending = [run for run in runs if states[run.run_dir][0] != "done"]
    checked: set[int] = set()
    for run in pending:  # data depend on the seed only: one check per seed
        if run.seed not in checked:
            try:
                check_data(run.cfg)
            except RunFailed as error:
                raise RunFailed(f"seed {run.seed}: {error}") from None
            checked.add(run.seed)
    return pending


def _prepare(run: PlannedRun, state: str, progress: bool) -> tuple[ExperimentConfig, int | None]:
    """The config to run and, for an interrupted run of this very config, the round its
    checkpoint completed (it continues from there)."""
    resume_after = resumable_round(run) if state == "incomplete" else None
    cfg = run.cfg.model_copy(deep=True)
    cfg.output.progress = progress
    (run.run_dir / SUMMARY_FILE).unlink(missing_ok=True)  # a failed rerun must not look finished
    return cfg, resume_after


def _how(seconds: float, resume_after: int | None) -> str:
    return f"{seconds:.1f} s" + ("" if resume_after is None else f" (resumed after round {resume_after})")


Outcome = tuple[dict[str, Any] | None, str]  # a run's summary (None: it failed) and how it went


def _failed(run: PlannedRun, error: Exception, keep_going: bool) -> Outcome:
    """A failed run's outcome with ``keep_going``; else its error, naming the run."""
    from fedsparse.runner import RunFailed

    if not keep_going:
        raise RunFailed(f"{run.strategy} seed {run.seed}: {error}") from None
    return None, f"failed: {error}"


def _run_one(
    run: PlannedRun, state: str, progress: bool, report: Callable[[str], None], label: str, keep_going: bool
) -> Outcome:
    """Run (or continue) one planned run; return its summary and how it went, for the log."""
    from fedsparse.runner import RunFailed, run_experiment

    started = time.perf_counter()
    cfg, resume_after = _prepare(run, state, progress)
    if progress:
        report(f"{label}: running" + ("" if resume_after is None else f" (resumed after round {resume_after})"))
    try:
        summary = run_experiment(cfg, run.run_dir, resume=resume_after is not None)
    except RunFailed as error:
        return _failed(run, error, keep_going)
    return summary, _how(time.perf_counter() - started, resume_after)


def run_in_worker(resolved_config: str, run_dir: str, resume: bool) -> tuple[dict[str, Any], float]:
    """One run in a worker process (``--jobs``), from its resolved YAML (which names the
    plugins to import); its summary and seconds."""
    from fedsparse.config import validate_config
    from fedsparse.runlog import quiet_flower
    from fedsparse.runner import run_experiment

    started = time.perf_counter()
    with quiet_flower(verbose=False):  # as the parent process runs: Flower's records reach run.log only
        summary = run_experiment(validate_config(yaml.safe_load(resolved_config)), Path(run_dir), resume=resume)
    return summary, time.perf_counter() - started


def _run_parallel(
    runs: list[PlannedRun],
    states: dict[Path, tuple[str, list[str]]],
    jobs: int,
    report: Callable[[str], None],
    keep_going: bool,
) -> dict[Path, Outcome]:
    """Run ``runs`` in ``jobs`` worker processes (each run exactly as it runs alone);
    their summaries and how they went, by run folder."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from fedsparse.config import dump_config
    from fedsparse.runner import RunFailed

    report(f"running {len(runs)} runs, {jobs} at a time")
    address = runs[0].cfg.engine.ray_address
    if address is not None:
        return _run_on_cluster(address, runs, states, jobs)
    outcomes: dict[Path, Outcome] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for run in runs:
            cfg, resume_after = _prepare(run, states[run.run_dir][0], progress=False)
            future = pool.submit(run_in_worker, dump_config(cfg), str(run.run_dir), resume_after is not None)
            futures[future] = run, resume_after
        for future in as_completed(futures):
            run, resume_after = futures[future]
            try:
                summary, seconds = future.result()
            except RunFailed as error:
                if not keep_going:
                    pool.shutdown(cancel_futures=True)
                outcomes[run.run_dir] = _failed(run, error, keep_going)
                report(f"[{len(outcomes)}/{len(runs)} finished] {run.strategy} seed {run.seed}: failed")
                continue
            outcomes[run.run_dir] = summary, _how(seconds, resume_after)
            report(f"[{len(outcomes)}/{len(runs)} finished] {run.strategy} seed {run.seed}: {_scores(summary)}")
    return outcomes


def _run_on_cluster(
    address: str, runs: list[PlannedRun], states: dict[Path, tuple[str, list[str]]], jobs: int
) -> dict[Path, Outcome]:
    """:func:`_run_parallel` on the Ray cluster at ``address``, one task per run (a
    failed run stops them all, ``keep_going`` or not)."""
    from fedsparse.comparison.cluster import ClusterRun, run_on_cluster

    prepared = [_prepare(run, states[run.run_dir][0], progress=False) for run in runs]
    outcomes: dict[Path, Outcome] = {}

    def done(index: int, summary: dict[str, Any], seconds: float) -> None:
        outcomes[runs[index].run_dir] = summary, _how(seconds, prepared[index][1])

    tasks = [
        ClusterRun(cfg, run.run_dir, after is not None, f"{run.strategy} seed {run.seed}")
        for run, (cfg, after) in zip(runs, prepared, strict=True)
    ]
    run_on_cluster(address, tasks, jobs, done)
    return outcomes


def execute_runs(
    runs: Sequence[PlannedRun],
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] = print,
    jobs: int = 1,
    keep_going: bool = False,
) -> list[SeedResult]:
    """Run (or reuse) every one of ``runs``, ``jobs`` at a time (more than one: in worker
    processes, without live progress), in their order; raises :class:`CompareError` for
    run folders of other configs and :class:`fedsparse.runner.RunFailed` for data
    problems (both before any run starts) or a failed run; with ``keep_going`` a failed
    run is a result with its ``failure`` and the others go on."""
    states = {run.run_dir: run_state(run) for run in runs}
    pending = _check_before_running(runs, states, overwrite)
    parallel = jobs > 1 and len(pending) > 1
    outcomes = _run_parallel(pending, states, jobs, report, keep_going) if parallel else {}
    results = []
    for index, run in enumerate(runs, start=1):
        label = f"[{index}/{len(runs)}] {run.strategy} seed {run.seed}"
        state = states[run.run_dir][0]
        reused = state == "done"
        summary: dict[str, Any] | None
        if reused:
            summary, how = read_summary(run.run_dir), "reused"
        elif run.run_dir in outcomes:
            summary, how = outcomes[run.run_dir]
        else:
            summary, how = _run_one(run, state, progress, report, label, keep_going)
        if summary is None:
            report(f"{label}: {how} · {run.run_dir}")
            results.append(SeedResult(run.strategy, run.seed, run.run_dir, {}, [], failure=how))
            continue
        report(f"{label}: {_scores(summary)} · {total_megabytes(summary):.2f} MB · {how} · {run.run_dir}")
        results.append(SeedResult(run.strategy, run.seed, run.run_dir, summary, read_metrics(run.run_dir), reused))
    return results


def _scores(summary: dict[str, Any]) -> str:
    """``acc 0.9012 · val 0.8950``: the final test and validation accuracies a run has."""
    scores = [
        f"{label} {summary[key]:.4f}"
        for key, label in (("final_accuracy", "acc"), ("final_val_accuracy", "val"))
        if summary.get(key) is not None
    ]
    return " · ".join(scores) or "acc n/a"


def run_comparison(
    plan: ComparePlan,
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] = print,
    jobs: int = 1,
) -> list[SeedResult]:
    """Run (or reuse) every planned run (:func:`execute_runs`), after a line saying what
    is compared and how much of it is already done."""
    done = sum(run_state(run)[0] == "done" for run in plan.runs)
    report(
        f"comparing {len(plan.strategies)} strategies × {len(plan.seeds)} seeds on {plan.config} "
        f"in {plan.out} ({done} of {len(plan.runs)} runs already done)"
    )
    return execute_runs(plan.runs, overwrite=overwrite, progress=progress, report=report, jobs=jobs)
