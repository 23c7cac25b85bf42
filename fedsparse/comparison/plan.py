"""Planning a comparison: which strategies, which seeds, which target, where.

:func:`plan_comparison` reads the config and its ``compare`` section, lets the arguments
override that section, and validates one resolved config per (strategy, seed) before
anything runs. Every fault is collected and raised at once as
:class:`fedsparse.config.ConfigError`: a fault of the config itself once, a fault only
one strategy has naming that strategy. Planning reads the config file and nothing else.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsparse.config import (
    CompareConfig,
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    format_validation_error,
    import_config_plugins,
    read_yaml,
    validate_config,
    with_plugins,
)

DEFAULT_VALIDATION = 0.1  # share of the training data held out for validation when the config sets none


class CompareError(RuntimeError):
    """The comparison cannot proceed; ``problems`` holds one line per fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PlannedRun:
    """One (strategy, seed): its validated config and the folder it runs in."""

    strategy: str
    seed: int
    cfg: ExperimentConfig
    run_dir: Path


@dataclass
class ComparePlan:
    """A validated comparison: ``runs`` holds every (strategy, seed), seed-major."""

    config: str
    overrides: list[str]
    plugins: list[str]
    strategies: list[str]
    seeds: list[int]
    target: float | None  # None: chosen from the results (see stats.default_target)
    target_source: str  # "--target", "compare.target" or "default"
    out: Path
    reference: str  # the strategy the paired tests compare against, one of ``strategies``
    out_given: bool = False
    strategies_given: bool = False
    seeds_given: bool = False
    reference_given: bool = False
    validation_defaulted: bool = False  # data.validation is DEFAULT_VALIDATION as the config set none
    tuning_note: str | None = None  # how the configs were tuned (budget, seeds, space, values), for the page
    runs: list[PlannedRun] = field(default_factory=list)

    @property
    def base(self) -> ExperimentConfig:
        return self.runs[0].cfg

    def command(self) -> str:
        """The command that reproduces this comparison: the config, and the choices
        made on the command line rather than in its ``compare`` section."""
        parts = ["fedsparse", "compare", self.config]
        if self.strategies_given:
            parts += ["--strategies", ",".join(self.strategies)]
        if self.seeds_given:
            parts += ["--seeds", str(len(self.seeds))]
        if self.target_source == "--target":
            parts += ["--target", f"{self.target:g}"]
        if self.reference_given:
            parts += ["--reference", self.reference]
        for item in self.overrides:
            parts += ["--set", item]
        for module in self.plugins:
            parts += ["--plugin", module]
        if self.out_given:
            parts += ["--out", str(self.out)]
        return shlex.join(parts)


def _compare_section(raw: Any) -> CompareConfig:
    from pydantic import ValidationError

    try:
        return CompareConfig.model_validate(raw or {})
    except ValidationError as error:
        raise ConfigError([f"compare.{line}" for line in format_validation_error(error)]) from None


def _merge_problems(by_strategy: dict[str, list[str]], shared: list[str]) -> list[str]:
    """One line per fault: faults of the config itself (``shared``: those it has with
    plain FedAvg, which runs on any federation) once, the others naming their strategy."""
    lines = [problem for problem in shared if any(problem in found for found in by_strategy.values())]
    for name, problems in by_strategy.items():
        lines += [f"strategy {name!r} cannot run on this config: {p}" for p in problems if p not in shared]
    return lines


def _problems(raw: dict[str, Any], *overrides: str) -> list[str]:
    try:
        validate_config(apply_overrides(copy.deepcopy(raw), list(overrides)))
    except ConfigError as error:
        return error.problems
    return []


def _unknown(names: Sequence[str]) -> list[str]:
    from fedsparse.catalog import STRATEGIES

    return [n for n in names if n not in STRATEGIES]


def strategy_name_problems(names: Sequence[str]) -> list[str]:
    """What is wrong with a list of strategy names itself (empty, unknown, repeated)."""
    from fedsparse.catalog import STRATEGIES

    problems: list[str] = []
    if not names:
        problems.append("no strategies; pass --strategies a,b,... or list them in compare.strategies")
    unknown = _unknown(names)
    if unknown:
        problems.append(f"unknown strategy {', '.join(map(repr, unknown))}; known: {', '.join(STRATEGIES.names())}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"--strategies: listed more than once: {', '.join(repeated)}")
    return problems


def _read(config: str | Path, overrides: Sequence[str], plugins: Sequence[str]) -> dict[str, Any]:
    """The YAML with ``overrides`` and ``plugins``, its plugins imported."""
    raw = with_plugins(apply_overrides(read_yaml(Path(config)), list(overrides)), list(plugins))
    import_config_plugins(raw)
    return raw


def default_validation(raw: dict[str, Any]) -> bool:
    """Set ``data.validation`` to :data:`DEFAULT_VALIDATION` in ``raw`` when it has none
    and no task streams; whether it did."""
    data = raw.setdefault("data", {})
    if not isinstance(data, dict) or "validation" in data or data.get("tasks") is not None:
        return False
    data["validation"] = DEFAULT_VALIDATION
    return True


def _settings_items(strategy: str, values: dict[str, Any]) -> list[str]:
    """``compare.settings.<strategy>`` (dotted config path → value) as ``--set`` items."""
    return [f"{path}={value!r}" for path, value in values.items()]


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tuning_note(tuning: dict[str, Any]) -> str:
    """One paragraph from ``compare.tuning`` (as ``fedsparse tune`` writes it): the
    budget, objective, sampler, space and each strategy's chosen values."""
    spaces = "; ".join(
        f"{name}: " + ", ".join(f"{path} {range_}" for path, range_ in space.items())
        for name, space in (tuning.get("space") or {}).items()
    )
    chosen = []
    for name, pick in (tuning.get("chosen") or {}).items():
        if pick is None:
            chosen.append(f"{name}: every trial failed, the config's own values")
            continue
        values = ", ".join(f"{path}={_value_text(value)}" for path, value in pick["values"].items())
        chosen.append(f"{name}: {values} (trial {pick['trial']}, validation score {pick['score'] * 100:.2f} %)")
    seeds = ", ".join(map(str, tuning.get("tuning_seeds", [])))
    return (
        f"every strategy tuned with the same budget by `{tuning.get('command', 'fedsparse tune')}`: "
        f"{tuning.get('trials_per_strategy')} trials each on tuning seeds {seeds} (disjoint from the seeds below); "
        f"objective: {tuning.get('objective')}; {tuning.get('sampler')}. Spaces: {spaces}. Chosen: {'; '.join(chosen)}."
    )


def _strategy_configs(
    raw: dict[str, Any], names: Sequence[str], settings: dict[str, list[str]]
) -> tuple[dict[str, ExperimentConfig], list[str]]:
    """Each strategy's validated config (with its ``compare.settings``) and one line per
    fault of those that do not validate (:func:`_merge_problems`)."""
    by_strategy: dict[str, list[str]] = {}
    cfgs: dict[str, ExperimentConfig] = {}
    for name in dict.fromkeys(names):
        try:
            items = [f"strategy.name={name}", *settings.get(name, [])]
            cfgs[name] = validate_config(apply_overrides(copy.deepcopy(raw), items))
        except ConfigError as error:
            by_strategy[name] = error.problems
    problems = _merge_problems(by_strategy, _problems(raw, "strategy.name=fedavg")) if by_strategy else []
    return cfgs, problems


def _choice_problems(
    names: Sequence[str],
    reference: tuple[str, str | None],
    n_seeds: int,
    target: float | None,
    settings: dict[str, list[str]],
) -> list[str]:
    """What is wrong with the reference (where it came from, its name), the seed count,
    the target and the strategies ``compare.settings`` names."""
    problems = []
    source, name = reference
    if name is not None and names and name not in names:
        problems.append(f"{source}: {name!r} is not one of the strategies compared ({', '.join(names)})")
    if n_seeds < 1:
        problems.append("--seeds: must be >= 1")
    if target is not None and not 0.0 < target <= 1.0:
        problems.append(f"--target: must be an accuracy in (0, 1] (got {target:g})")
    problems += [
        f"compare.settings: {other!r} is not one of the strategies compared ({', '.join(names)})"
        for other in settings
        if other not in names
    ]
    return problems


def plan_comparison(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    strategies: Sequence[str] | None = None,
    seeds: int | None = None,
    target: float | None = None,
    out: str | Path | None = None,
    plugins: Sequence[str] = (),
    reference: str | None = None,
) -> ComparePlan:
    """Resolve strategies, seeds, target and reference strategy (arguments over the YAML
    ``compare`` section; the reference defaults to the first strategy) and validate one
    config per (strategy, seed); raises :class:`ConfigError` listing every fault, each
    strategy-specific one naming its strategy. ``plugins`` (``--plugin``) are added to the
    config's ``plugins`` and imported first. A config that leaves ``data.validation``
    unset gets :data:`DEFAULT_VALIDATION` (task streams excepted: they validate on the
    clients)."""
    raw = _read(config, overrides, plugins)
    section = _compare_section(raw.pop("compare", None))
    validation_defaulted = default_validation(raw)
    names = list(strategies) if strategies is not None else list(section.strategies)
    reference_source = "--reference" if reference is not None else "compare.reference"
    reference = reference if reference is not None else section.reference
    n_seeds = section.seeds if seeds is None else seeds
    source = "--target" if target is not None else "compare.target" if section.target is not None else "default"
    target = target if target is not None else section.target
    settings = {name: _settings_items(name, values) for name, values in section.settings.items()}
    problems = strategy_name_problems(names) + _choice_problems(
        names, (reference_source, reference), n_seeds, target, settings
    )
    unknown = _unknown(names)
    cfgs, strategy_problems = _strategy_configs(raw, [n for n in names if n not in unknown], settings)
    problems += strategy_problems
    if problems:
        raise ConfigError(problems)

    base_seed = cfgs[names[0]].seed
    out_dir = Path(out) if out is not None else Path(cfgs[names[0]].output.dir) / f"{Path(config).stem}-compare"
    plan = ComparePlan(
        config=str(config),
        overrides=list(overrides),
        plugins=list(plugins),
        strategies=names,
        seeds=[base_seed + k for k in range(n_seeds)],
        target=target,
        target_source=source,
        out=out_dir,
        reference=reference if reference is not None else names[0],
        out_given=out is not None,
        strategies_given=strategies is not None,
        seeds_given=seeds is not None,
        reference_given=reference_source == "--reference",
        validation_defaulted=validation_defaulted,
        tuning_note=None if section.tuning is None else tuning_note(section.tuning),
    )
    plan.runs = _planned_runs(raw, plan, settings)
    return plan


def _planned_runs(raw: dict[str, Any], plan: ComparePlan, settings: dict[str, list[str]]) -> list[PlannedRun]:
    """One validated run per (seed, strategy), seed-major: an interrupted comparison has
    whole seeds done."""
    runs = []
    for seed in plan.seeds:
        for name in plan.strategies:
            items = [f"strategy.name={name}", *settings.get(name, []), f"seed={seed}"]
            cfg = validate_config(apply_overrides(copy.deepcopy(raw), items))
            runs.append(PlannedRun(name, seed, cfg, plan.out / name / f"seed{seed}"))
    return runs
