"""fedsparse from Python: :func:`run`, :func:`compare` and :func:`tune`, what the CLI's
``run``, ``compare`` and ``tune`` do, returning results instead of printing them.

A config is a YAML path, a mapping shaped like the YAML, or an
:class:`~fedsparse.config.ExperimentConfig`; ``overrides`` are ``--set``-style
``"a.b=value"`` strings. Bad input raises :class:`~fedsparse.config.ConfigError` (one
``path: message`` line per fault in ``.problems``); a run that cannot start or finish
raises :class:`~fedsparse.runner.RunFailed`. Nothing here changes process-wide state that
outlives the call (logging handlers, matplotlib's backend).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig

ConfigSource: TypeAlias = "str | Path | Mapping[str, Any] | ExperimentConfig"


@dataclass(frozen=True)
class RunResult:
    """A finished run: its summary, its per-round metrics rows and its folder."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    run_dir: Path


@dataclass(frozen=True)
class CompareResult:
    """A finished comparison: its table (one dict per strategy, as in comparison.csv),
    its Markdown page and the files written."""

    table: list[dict[str, Any]]
    markdown: str
    paths: list[Path]


def load(config: ConfigSource, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """A validated config from any :data:`ConfigSource`, ``overrides`` applied."""
    from fedsparse.config import ExperimentConfig, apply_overrides, load_config, validate_config

    if isinstance(config, str | Path):
        return load_config(config, list(overrides))
    raw = config.model_dump(mode="json") if isinstance(config, ExperimentConfig) else copy.deepcopy(dict(config))
    if isinstance(config, ExperimentConfig) and config.compare is not None:
        raw["compare"] = config.compare.model_dump(mode="json")
    return validate_config(apply_overrides(raw, list(overrides)))


def run(
    config: ConfigSource,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    log_level: int | str = "INFO",
) -> RunResult:
    """Run one federation into ``out`` (default: a new folder in ``output.dir``).

    ``progress``: one line per round on stdout (a live display on a terminal).
    """
    from fedsparse.results import read_metrics
    from fedsparse.runlog import quiet_flower
    from fedsparse.runner import new_run_dir, prepare_run_dir, run_experiment

    cfg = load(config, overrides)
    cfg.output.progress = progress
    run_dir = Path(out) if out is not None else new_run_dir(cfg, _stem(config))
    prepare_run_dir(run_dir, overwrite)
    with quiet_flower(verbose=False):
        summary = run_experiment(cfg, run_dir, log_level=log_level)
    return RunResult(summary, read_metrics(run_dir), run_dir)


def compare(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    strategies: Sequence[str] | None = None,
    seeds: int | None = None,
    target: float | None = None,
    reference: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> CompareResult:
    """Run several strategies on the same federation (as ``fedsparse compare``); resumes
    an interrupted comparison in ``out``."""
    from fedsparse.comparison import plan_comparison, run_comparison, table_rows, write_comparison
    from fedsparse.runlog import quiet_flower

    plan = plan_comparison(
        config, list(overrides), strategies=strategies, seeds=seeds, target=target, out=out, reference=reference
    )
    with quiet_flower(verbose=False):
        results = run_comparison(plan, overwrite=overwrite, progress=progress, report=lambda line: None)
    paths, markdown, comparison = write_comparison(plan, results)
    return CompareResult(table_rows(comparison), markdown, paths)


@dataclass(frozen=True)
class TuneResult:
    """A finished tune: per strategy its best trial's values (dotted config path → value;
    empty: every trial failed) and validation score (None: every trial failed), its
    Markdown page, the files written
    (``tuned/<strategy>.yaml``, ``tuned/<config>.yaml``, ``trials.csv``, ``tune.md``, ``tune.png``)."""

    best: dict[str, dict[str, Any]]
    scores: dict[str, float | None]
    markdown: str
    paths: list[Path]


def tune(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    strategies: Sequence[str] | None = None,
    trials: int | None = None,
    seeds: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    jobs: int = 1,
) -> TuneResult:
    """Tune several strategies with the same budget, by validation accuracy on tuning
    seeds (as ``fedsparse tune``); resumes an interrupted tune in ``out``."""
    from fedsparse.runlog import quiet_flower
    from fedsparse.tuning import tune as run_tune
    from fedsparse.tuning.plan import plan_tune

    plan = plan_tune(config, list(overrides), strategies=strategies, trials=trials, seeds=seeds, out=out)
    with quiet_flower(verbose=False):
        paths, markdown, best = run_tune(plan, overwrite=overwrite, report=lambda line: None, jobs=jobs)
    values = {name: {} if trial is None else dict(trial.params) for name, trial in best.items()}
    scores = {name: None if trial is None else trial.score for name, trial in best.items()}
    return TuneResult(values, scores, markdown, paths)


def _stem(config: ConfigSource) -> str:
    return Path(config).stem if isinstance(config, str | Path) else "run"
