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
"""

from __future__ import annotations

import copy
import csv
import math
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedsparse.config import (
    CompareConfig,
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    format_validation_error,
    read_yaml,
    validate_config,
)
from fedsparse.results import (
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    megabytes,
    read_metrics,
    read_summary,
    total_megabytes,
)

COMPARISON_MD, COMPARISON_CSV, COMPARISON_PNG = "comparison.md", "comparison.csv", "comparison.png"
DEFAULT_TARGET_FRACTION = 0.9  # of the weakest strategy's mean final accuracy
IGNORED_SECTIONS = ("output",)  # where a run is written and how it is shown: not what it computes


class CompareError(RuntimeError):
    """The comparison cannot proceed; ``problems`` holds one line per fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedRun:
    strategy: str
    seed: int
    cfg: ExperimentConfig
    run_dir: Path


@dataclass
class ComparePlan:
    config: str
    overrides: list[str]
    strategies: list[str]
    seeds: list[int]
    target: float | None  # None: chosen from the results (see default_target)
    target_source: str  # "--target", "compare.target" or "default"
    out: Path
    out_given: bool = False
    strategies_given: bool = False
    seeds_given: bool = False
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
        for item in self.overrides:
            parts += ["--set", item]
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


def plan_comparison(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    strategies: Sequence[str] | None = None,
    seeds: int | None = None,
    target: float | None = None,
    out: str | Path | None = None,
) -> ComparePlan:
    """Resolve strategies, seeds and target (arguments over the YAML ``compare`` section)
    and validate one config per (strategy, seed); raises :class:`ConfigError` listing
    every fault, each strategy-specific one naming its strategy."""
    from fedsparse.strategies import STRATEGIES

    raw = apply_overrides(read_yaml(Path(config)), list(overrides))
    section = _compare_section(raw.pop("compare", None))
    names = list(strategies) if strategies is not None else list(section.strategies)
    problems: list[str] = []
    if not names:
        problems.append("compare: no strategies; pass --strategies a,b,... or list them in compare.strategies")
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        problems.append(f"unknown strategy {', '.join(map(repr, unknown))}; known: {', '.join(STRATEGIES.names())}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"--strategies: listed more than once: {', '.join(repeated)}")
    n_seeds = section.seeds if seeds is None else seeds
    if n_seeds < 1:
        problems.append("--seeds: must be >= 1")
    source = "--target" if target is not None else "compare.target" if section.target is not None else "default"
    target = target if target is not None else section.target
    if target is not None and not 0.0 < target <= 1.0:
        problems.append(f"--target: must be an accuracy in (0, 1] (got {target:g})")
    by_strategy: dict[str, list[str]] = {}
    cfgs: dict[str, ExperimentConfig] = {}
    for name in names:
        if name in unknown or name in cfgs:
            continue
        try:
            cfgs[name] = validate_config(apply_overrides(copy.deepcopy(raw), [f"strategy.name={name}"]))
        except ConfigError as error:
            by_strategy[name] = error.problems
    if by_strategy:
        problems += _merge_problems(by_strategy, _problems(raw, "strategy.name=fedavg"))
    if problems:
        raise ConfigError(problems)

    base_seed = cfgs[names[0]].seed
    out_dir = Path(out) if out is not None else Path(cfgs[names[0]].output.dir) / f"{Path(config).stem}-compare"
    plan = ComparePlan(
        config=str(config), overrides=list(overrides), strategies=names,
        seeds=[base_seed + k for k in range(n_seeds)], target=target, target_source=source,
        out=out_dir, out_given=out is not None, strategies_given=strategies is not None, seeds_given=seeds is not None,
    )
    for seed in plan.seeds:  # seed-major: an interrupted comparison has whole seeds done
        for name in names:
            cfg = validate_config(apply_overrides(copy.deepcopy(raw), [f"strategy.name={name}", f"seed={seed}"]))
            plan.runs.append(PlannedRun(name, seed, cfg, out_dir / name / f"seed{seed}"))
    return plan


# --------------------------------------------------------------------------- running


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
    strategy: str
    seed: int
    run_dir: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    reused: bool = False


def run_comparison(
    plan: ComparePlan,
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] = print,
) -> list[SeedResult]:
    """Run (or reuse) every planned run; raises :class:`CompareError` for run folders of
    other configs and :class:`fedsparse.runner.RunFailed` for data problems (both before
    any run starts) or a failed run."""
    from fedsparse.runner import RunFailed, check_data, run_experiment

    states = {run.run_dir: run_state(run) for run in plan.runs}
    clashes = [_clash(run, states[run.run_dir][1]) for run in plan.runs if states[run.run_dir][0] == "different"]
    if clashes and not overwrite:
        raise CompareError([*clashes, "pass --overwrite to replace them, or choose another --out"])
    pending = [run for run in plan.runs if states[run.run_dir][0] != "done"]
    checked: set[int] = set()
    for run in pending:  # data depend on the seed only: one check per seed
        if run.seed not in checked:
            try:
                check_data(run.cfg)
            except RunFailed as error:
                raise RunFailed(f"seed {run.seed}: {error}") from None
            checked.add(run.seed)

    report(
        f"comparing {len(plan.strategies)} strategies × {len(plan.seeds)} seeds on {plan.config} "
        f"in {plan.out} ({len(plan.runs) - len(pending)} of {len(plan.runs)} runs already done)"
    )
    results = []
    for index, run in enumerate(plan.runs, start=1):
        label = f"[{index}/{len(plan.runs)}] {run.strategy} seed {run.seed}"
        state = states[run.run_dir][0]
        reused = state == "done"
        started = time.perf_counter()
        if reused:
            summary = read_summary(run.run_dir)
            how = "reused"
        else:
            # an interrupted run of this very config continues from its checkpoint
            resume_after = resumable_round(run) if state == "incomplete" else None
            how = "" if resume_after is None else f" (resumed after round {resume_after})"
            if progress:
                report(f"{label}: running{how}")
            cfg = run.cfg.model_copy(deep=True)
            cfg.output.progress = progress
            (run.run_dir / SUMMARY_FILE).unlink(missing_ok=True)  # a failed rerun must not look finished
            try:
                summary = run_experiment(cfg, run.run_dir, resume=resume_after is not None)
            except RunFailed as error:
                raise RunFailed(f"{run.strategy} seed {run.seed}: {error}") from None
            how = f"{time.perf_counter() - started:.1f} s{how}"
        accuracy = summary.get("final_accuracy")
        report(
            f"{label}: acc {'n/a' if accuracy is None else f'{accuracy:.4f}'} · {total_megabytes(summary):.2f} MB · {how} · {run.run_dir}"
        )
        results.append(SeedResult(run.strategy, run.seed, run.run_dir, summary, read_metrics(run.run_dir), reused))
    return results


# --------------------------------------------------------------------------- aggregating


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n-1; None below 2 values) of ``n`` values."""

    mean: float | None
    std: float | None
    n: int


def mean_std(values: Sequence[float | None]) -> Stat:
    present = [float(v) for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Stat(statistics.fmean(present), std, len(present))


@dataclass(frozen=True)
class Reached:
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


# --------------------------------------------------------------------------- writing


def _csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else repr(round(float(value), 6))


def csv_rows(table: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    for row in table:
        for key, value in row.items():
            names = [f"{key}_mean", f"{key}_std"] if isinstance(value, Stat) else [key]
            header += [n for n in names if n not in header]
    lines = []
    for row in table:
        cells: dict[str, str] = {}
        for key, value in row.items():
            if isinstance(value, Stat):
                cells[f"{key}_mean"], cells[f"{key}_std"] = _csv_number(value.mean), _csv_number(value.std)
            elif isinstance(value, list):
                cells[key] = " ".join(map(str, value))
            else:
                cells[key] = value if isinstance(value, str) else _csv_number(value)
        lines.append([cells.get(name, "") for name in header])
    return header, lines


def _cell(stat: Stat, scale: float = 1.0, digits: int = 2) -> str:
    if stat.mean is None:
        return "n/a"
    if stat.std is None:
        return f"{stat.mean * scale:.{digits}f}"
    return f"{stat.mean * scale:.{digits}f} ± {stat.std * scale:.{digits}f}"


def _decimals(stats: Sequence[Stat]) -> int:
    """Decimals that show the column's smallest mean to 3 significant digits (0 to 4)."""
    means = [abs(s.mean) for s in stats if s.mean]
    if not means:
        return 2
    return min(4, max(0, 2 - math.floor(math.log10(min(means)))))


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"


def describe_federation(cfg: ExperimentConfig) -> str:
    data, fed, part = cfg.data, cfg.federation, cfg.data.partition
    split = {"iid": "IID", "dirichlet": f"Dirichlet α={part.alpha:g}",
             "pathological": f"{part.classes_per_client} classes each",
             "shard": f"{part.shards_per_client} shards each"}[part.method]
    if data.tasks is not None:
        split = f"task streams ({data.tasks.kind}, {data.tasks.num_tasks} tasks)"
    if part.max_samples_per_client and data.tasks is None:
        split += f", ≤{part.max_samples_per_client} samples each"
    options = ", ".join(f"{k}={v}" for k, v in cfg.model.options.items())
    text = (f"{data.dataset}, {fed.num_clients} clients ({split}), {fed.clients_per_round} per round, "
            f"{fed.rounds} rounds × {fed.local_epochs} local epoch{'s' if fed.local_epochs > 1 else ''}, "
            f"{cfg.model.name}{f' ({options})' if options else ''}")
    if len(fed.profiles) > 1 or fed.profiles[0].bitwidth != 32 or fed.profiles[0].bandwidth_mbps:
        devices = []
        for p in fed.profiles:
            traits = [f"{p.bitwidth}-bit" if p.bitwidth != 32 else "float32", f"speed {p.speed:g}"]
            if p.bandwidth_mbps:
                traits.append(f"{p.bandwidth_mbps:g} Mbit/s")
            devices.append(f"{p.name} {_percent(p.share)} ({', '.join(traits)})")
        text += f"; devices: {'; '.join(devices)} at {fed.reference_gflops:g} GFLOP/s for speed 1"
    return text


def _target_note(plan: ComparePlan, target: float) -> str:
    if plan.target_source == "default":
        return (f"{_percent(target)} (default: {_percent(DEFAULT_TARGET_FRACTION)} of the weakest strategy's "
                "mean final accuracy, floored to a whole percent; `--target` sets it)")
    return f"{_percent(target)} (from `{plan.target_source}`)"


def _seeds_text(seeds: Sequence[int]) -> str:
    return f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"


def markdown(plan: ComparePlan, table: Sequence[dict[str, Any]], target: float, figure: str | None) -> str:
    goal = _percent(target)
    head = ["strategy", "final acc (%)"]
    bit_keys = [k for k in table[0] if k.startswith("accuracy_") and k.endswith("bit")]
    head += [f"acc @{k[len('accuracy_'):-len('bit')]}-bit (%)" for k in bit_keys]
    continual = "forgetting" in table[0]
    if continual:
        head.append("forgetting (pts)")
    head += ["MB up", "MB down", f"MB to {goal}", f"sim s to {goal}", "sim s, all rounds"]
    lines = [
        f"# Strategy comparison: `{Path(plan.config).name}`",
        "",
        f"Produced by `{plan.command()}`.",
        "",
        f"- **Federation**: {describe_federation(plan.base)}. Every strategy runs on the same "
        "partitions, device profiles and sampled clients for a given seed.",
        f"- **Seeds**: {_seeds_text(plan.seeds)} ({len(plan.seeds)}); each cell is the mean ± sample std over seeds.",
        f"- **Target accuracy**: {_target_note(plan, target)}. *MB to target*: cumulative MB up + down at the "
        "first evaluation at or above it, over the seeds that reach it (how many, when not all); "
        "*sim s*: the simulation clock (counted FLOPs over device speed, bytes over bandwidth).",
        "- " + ("Accuracy is the final average task accuracy (continual runs). " if continual else
                "Accuracy is the final server-side test accuracy"
                + (", the mean over the device bitwidths present. " if bit_keys else ". "))
        + "MB = 10^6 bytes, as counted by the byte ledger, all clients and rounds.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    digits = {key: _decimals([row[key] for row in table])
              for key in ("mb_up", "mb_down", "mb_to_target", "sim_seconds_to_target", "sim_seconds")}
    for row in table:
        cells = [row["strategy"], _cell(row["final_accuracy"], 100)]
        cells += [_cell(row[k], 100) for k in bit_keys]
        if continual:
            cells.append(_cell(row["forgetting"], 100))
        cells += [_cell(row[key], digits=digits[key]) for key in ("mb_up", "mb_down")]
        reached, total = row["seeds_reached_target"], row["n_seeds"]
        if reached == 0:
            cells += [f"not reached (0/{total})"] * 2
        else:
            note = "" if reached == total else f" ({reached}/{total} reached)"
            cells += [_cell(row[key], digits=digits[key]) + note for key in ("mb_to_target", "sim_seconds_to_target")]
        cells.append(_cell(row["sim_seconds"], digits=digits["sim_seconds"]))
        lines.append("| " + " | ".join(cells) + " |")
    if figure:
        lines += ["", f"![accuracy against cumulative MB, mean over seeds]({figure})"]
    return "\n".join(lines) + "\n"


def write_comparison(plan: ComparePlan, results: Sequence[SeedResult]) -> tuple[list[Path], str, float]:
    """Write comparison.csv, .md and .png into ``plan.out``; return (paths, markdown, target)."""
    from fedsparse.plots import plot_comparison

    target = plan.target if plan.target is not None else default_target(results)
    table = summarize(results, target)
    plan.out.mkdir(parents=True, exist_ok=True)
    header, rows = csv_rows(table)
    with (plan.out / COMPARISON_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    figure = plan.out / COMPARISON_PNG
    plot_comparison(
        mean_curves(results), figure, target=target,
        title=f"{Path(plan.config).stem}: mean over {len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}",
    )
    text = markdown(plan, table, target, COMPARISON_PNG)
    (plan.out / COMPARISON_MD).write_text(text)
    return [plan.out / COMPARISON_MD, plan.out / COMPARISON_CSV, figure], text, target


def compare(plan: ComparePlan, *, overwrite: bool = False, progress: bool = False,
            report: Callable[[str], None] = print) -> tuple[list[Path], str]:
    """Run the plan, then write its comparison; return (paths written, the markdown)."""
    results = run_comparison(plan, overwrite=overwrite, progress=progress, report=report)
    paths, text, _ = write_comparison(plan, results)
    return paths, text

