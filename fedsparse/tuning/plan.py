"""Planning a tune: which strategies, how many trials, which seeds, which space, where.

:func:`plan_tune` reads the config and its ``tune`` section (the arguments override it)
and checks everything before any trial runs: every strategy against the config, every
knob of every strategy's space against the config's schema. Every fault is collected
and raised at once as :class:`fedsparse.config.ConfigError`.

The fairness rules hold by construction: every strategy gets ``trials`` trials over its
own declared space; a trial's score is the mean over the *tuning seeds* (the config's
seed + 1000, + 1001, …; ``fedsparse compare`` evaluates on seed + 0, 1, …) of the mean
validation accuracy of its last ``last_rounds`` evaluated rounds; and trial runs are
evaluated on the validation split only (``federation.evaluate_test: false``), so the
test split is never read while tuning.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsparse.comparison.plan import PlannedRun, default_validation, strategy_name_problems
from fedsparse.config import (
    ConfigError,
    ExperimentConfig,
    TuneConfig,
    absolute_data_path,
    apply_overrides,
    format_validation_error,
    import_config_plugins,
    read_yaml,
    validate_config,
    with_plugins,
)
from fedsparse.tuning.space import Knob, space_for, value_at

TUNING_SEED_OFFSET = 1000  # tuning seeds start here above the config's seed; compare's start at it


@dataclass
class TunePlan:
    """A validated tune: the base config (``raw``, YAML-shaped, without its ``compare``
    and ``tune`` sections) and, per strategy, its search space."""

    config: str
    overrides: list[str]
    plugins: list[str]
    raw: dict[str, Any]
    compare_section: dict[str, Any]
    strategies: list[str]
    trials: int
    seeds: list[int]
    last_rounds: int
    sampler_seed: int
    spaces: dict[str, list[Knob]]
    out: Path
    given: dict[str, Any] = field(default_factory=dict)  # the choices made on the command line

    def command(self) -> str:
        """The command that reproduces this tune."""
        parts = ["fedsparse", "tune", self.config]
        for flag, value in self.given.items():
            parts += [flag, str(value)]
        for item in self.overrides:
            parts += ["--set", item]
        for module in self.plugins:
            parts += ["--plugin", module]
        return shlex.join(parts)

    def settings(self, strategy: str, params: Mapping[str, Any]) -> list[str]:
        """``--set`` items giving ``strategy`` a trial's ``params`` (dotted path → value)."""
        return [f"strategy.name={strategy}", *(f"{path}={value!r}" for path, value in params.items())]

    def trial_config(self, strategy: str, params: Mapping[str, Any], seed: int) -> ExperimentConfig:
        """The resolved config of one trial's run on tuning seed ``seed``: validation only."""
        items = [*self.settings(strategy, params), f"seed={seed}", "federation.evaluate_test=false"]
        items += ["output.plots=false", "output.progress=false"]
        return validate_config(apply_overrides(copy.deepcopy(self.raw), items))

    def trial_runs(self, strategy: str, number: int, params: Mapping[str, Any]) -> list[PlannedRun]:
        """One planned run per tuning seed of ``strategy``'s trial ``number``."""
        return [
            PlannedRun(
                strategy,
                seed,
                self.trial_config(strategy, params, seed),
                self.out / "runs" / strategy / f"trial{number}" / f"seed{seed}",
            )
            for seed in self.seeds
        ]

    def baseline(self, strategy: str) -> dict[str, Any]:
        """The config's own values of ``strategy``'s knobs, where each lies in its space:
        trial 0 of every strategy, so a tuned setting never scores below the hand-picked
        one on validation."""
        cfg = validate_config(apply_overrides(copy.deepcopy(self.raw), [f"strategy.name={strategy}"]))
        resolved = cfg.model_dump(mode="json")
        values = {knob.path: value_at(resolved, knob.path) for knob in self.spaces[strategy]}
        return {path: value for path, value in values.items() if self._knob(strategy, path).contains(value)}

    def _knob(self, strategy: str, path: str) -> Knob:
        return next(knob for knob in self.spaces[strategy] if knob.path == path)

    def fingerprint(self, strategy: str) -> dict[str, Any]:
        """What a study's trials depend on: a study made under another fingerprint is
        not continued."""
        return {
            "config": self.raw,
            "seeds": self.seeds,
            "last_rounds": self.last_rounds,
            "sampler_seed": self.sampler_seed,
            "space": {knob.path: knob.describe() for knob in self.spaces[strategy]},
        }


def _tune_section(raw: Any) -> TuneConfig:
    from pydantic import ValidationError

    try:
        return TuneConfig.model_validate(raw or {})
    except ValidationError as error:
        raise ConfigError([f"tune.{line}" for line in format_validation_error(error)]) from None


def _read(config: str | Path, overrides: Sequence[str], plugins: Sequence[str]) -> dict[str, Any]:
    raw = read_yaml(Path(config))
    absolute_data_path(raw, Path(config).parent)
    raw = with_plugins(apply_overrides(raw, list(overrides)), list(plugins))
    absolute_data_path(raw, Path.cwd())
    import_config_plugins(raw)
    return raw


def _base_problems(raw: dict[str, Any]) -> list[str]:
    data = raw.get("data")
    if not isinstance(data, dict):
        return []
    if data.get("tasks") is not None:
        return [
            "fedsparse tune: task streams have no server-side validation split to select by yet; tune a config "
            "without data.tasks"
        ]
    if data.get("validation") == 0:
        return ["data.validation: tuning selects by validation accuracy; set it above 0 (or leave it unset: 0.1)"]
    return []


def _strategy_problems(raw: dict[str, Any], name: str, knobs: list[Knob]) -> list[str]:
    """Whether ``name`` runs on the config, and every knob of its space is a config value."""
    try:
        validate_config(apply_overrides(copy.deepcopy(raw), [f"strategy.name={name}"]))
    except ConfigError as error:
        return [f"strategy {name!r} cannot run on this config: {p}" for p in error.problems]
    problems = []
    for knob in knobs:
        spec = knob.spec
        probe = spec.choices[0] if spec.choices is not None else spec.low
        try:
            validate_config(apply_overrides(copy.deepcopy(raw), [f"strategy.name={name}", f"{knob.path}={probe!r}"]))
        except ConfigError as error:
            problems.append(f"tune.space: {knob.path} ({name}) at {probe!r}: {'; '.join(error.problems)}")
    return problems


def plan_tune(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    strategies: Sequence[str] | None = None,
    trials: int | None = None,
    seeds: int | None = None,
    out: str | Path | None = None,
    plugins: Sequence[str] = (),
) -> TunePlan:
    """Resolve strategies (else ``tune.strategies``, else ``compare.strategies``),
    trials, seeds and spaces, and check them; raises :class:`ConfigError` listing every
    fault."""
    raw = _read(config, overrides, plugins)
    section = _tune_section(raw.pop("tune", None))
    compare_section = raw.pop("compare", None) or {}
    listed = compare_section.get("strategies", []) if isinstance(compare_section, dict) else []
    names = list(strategies) if strategies is not None else list(section.strategies or listed)
    problems = strategy_name_problems(names) + _base_problems(raw)
    if (trials if trials is not None else section.trials) < 1:
        problems.append("--trials: must be >= 1")
    if (seeds if seeds is not None else section.seeds) < 1:
        problems.append("--seeds: must be >= 1")
    if problems:
        raise ConfigError(problems)
    default_validation(raw)
    spaces = {name: space_for(name, section.space) for name in names}
    for name in names:
        problems += _strategy_problems(raw, name, spaces[name])
    if problems:
        raise ConfigError(problems)
    base = validate_config(apply_overrides(copy.deepcopy(raw), [f"strategy.name={names[0]}"]))
    n_seeds = seeds if seeds is not None else section.seeds
    given: dict[str, Any] = {"--strategies": ",".join(names)} if strategies is not None else {}
    given |= {"--trials": trials} if trials is not None else {}
    given |= {"--seeds": seeds} if seeds is not None else {}
    given |= {"--out": out} if out is not None else {}
    return TunePlan(
        config=str(config),
        overrides=list(overrides),
        plugins=list(plugins),
        raw=raw,
        compare_section=compare_section if isinstance(compare_section, dict) else {},
        strategies=names,
        trials=trials if trials is not None else section.trials,
        seeds=[base.seed + TUNING_SEED_OFFSET + k for k in range(n_seeds)],
        last_rounds=section.last_rounds,
        sampler_seed=section.sampler_seed,
        spaces=spaces,
        out=Path(out) if out is not None else Path(base.output.dir) / f"{Path(config).stem}-tune",
        given=given,
    )
