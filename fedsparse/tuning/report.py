"""Writing a tune's results into its folder.

- ``tuned/<strategy>.yaml``: the base config with the strategy's best trial applied, for
  ``fedsparse run``;
- ``tuned/<config>.yaml`` (the tuned config's own name; ``<config>-compare.yaml`` where
  that is a strategy's name): the base config whose ``compare`` section lists every tuned
  strategy with its chosen values (``compare.settings``) and the tuning budget
  (``compare.tuning``), so ``fedsparse compare tuned/<config>.yaml`` runs them all on
  the evaluation seeds and its page says how they were tuned;
- ``trials.csv``: one row per trial (strategy, number, state, score, per-seed scores,
  every parameter);
- ``tune.md``: the budget, each strategy's space, best values and trials;
- ``tune.png``: score against trial number (and the best so far) per strategy, and each
  strategy's parameter importances (Optuna's fANOVA) where it has enough trials.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fedsparse.config import apply_overrides
from fedsparse.tuning.plan import TunePlan
from fedsparse.tuning.study import STUDY_DB, TrialResult, best_trial, validation_score

if TYPE_CHECKING:
    import optuna

TUNED_DIR, TRIALS_CSV, TUNE_MD, TUNE_PNG = "tuned", "trials.csv", "tune.md", "tune.png"
DEFAULT_COMPARE_SEEDS = 5


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{path}={_number(value)}" for path, value in params.items()) or "(defaults)"


def tuning_record(plan: TunePlan, best: Mapping[str, TrialResult | None]) -> dict[str, Any]:
    """The tuning budget and outcome, as ``compare.tuning`` carries it to the compare page."""
    return {
        "command": plan.command(),
        "trials_per_strategy": plan.trials,
        "tuning_seeds": plan.seeds,
        "objective": f"mean validation accuracy of the last {plan.last_rounds} evaluated rounds, "
        f"averaged over the {len(plan.seeds)} tuning seeds",
        "sampler": f"Optuna TPE, seed {plan.sampler_seed}; trial 0 = the config's own values",
        "space": {name: {k.path: k.describe() for k in knobs} for name, knobs in plan.spaces.items()},
        "chosen": {
            name: None if trial is None else {"trial": trial.number, "score": trial.score, "values": trial.params}
            for name, trial in best.items()
        },
    }


def _settings(trial: TrialResult | None) -> dict[str, Any]:
    return {} if trial is None else dict(trial.params)


def tuned_config(plan: TunePlan, strategy: str, trial: TrialResult | None) -> dict[str, Any]:
    """The base config with ``strategy`` and its best trial's values (YAML-shaped)."""
    items = plan.settings(strategy, _settings(trial))
    return apply_overrides(copy.deepcopy(plan.raw), items)


def compare_config(plan: TunePlan, best: Mapping[str, TrialResult | None]) -> dict[str, Any]:
    """The base config with a ``compare`` section running every tuned strategy."""
    raw = copy.deepcopy(plan.raw)
    section = {key: value for key, value in plan.compare_section.items() if key not in ("strategies", "settings")}
    section.setdefault("seeds", DEFAULT_COMPARE_SEEDS)
    section["strategies"] = list(plan.strategies)
    section["settings"] = {name: _settings(trial) for name, trial in best.items()}
    section["tuning"] = tuning_record(plan, best)
    raw["compare"] = section
    return raw


def compare_path(plan: TunePlan) -> Path:
    """Where the config comparing every tuned strategy goes: ``tuned/<config>.yaml``, so
    ``fedsparse compare`` names its default folder after the tuned config."""
    stem = Path(plan.config).stem
    return plan.out / TUNED_DIR / (f"{stem}-compare.yaml" if stem in plan.strategies else f"{stem}.yaml")


def _write_yaml(path: Path, header: str, raw: dict[str, Any]) -> None:
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + yaml.safe_dump(raw, sort_keys=False))


def _write_trials_csv(path: Path, plan: TunePlan, trials: Mapping[str, Sequence[TrialResult]]) -> None:
    paths = list(dict.fromkeys(k.path for knobs in plan.spaces.values() for k in knobs))
    header = ["strategy", "trial", "state", "score", *(f"score_seed{s}" for s in plan.seeds), *paths]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, found in trials.items():
            for trial in found:
                per_seed = [validation_score(run.rows, plan.last_rounds) for run in trial.runs]
                cells = [name, trial.number, "complete" if trial.score is not None else "failed"]
                cells += ["" if trial.score is None else repr(round(trial.score, 6))]
                cells += ["" if s is None else repr(round(s, 6)) for s in per_seed]
                cells += [trial.params.get(p, "") for p in paths]
                writer.writerow(cells)


def markdown(
    plan: TunePlan, trials: Mapping[str, Sequence[TrialResult]], best: Mapping[str, TrialResult | None]
) -> str:
    """The tune page: budget, spaces, chosen values, then every trial."""
    lines = [
        f"# Tuning: `{Path(plan.config).name}`",
        "",
        f"Produced by `{plan.command()}`; the studies are in `{STUDY_DB}` (`optuna-dashboard sqlite:///{STUDY_DB}`).",
        "",
        f"- **Budget**: {plan.trials} trials per strategy, the same for every strategy; trial 0 is the config's "
        "own values (where they lie in the space), the others Optuna's TPE sampler "
        f"(seeded: {plan.sampler_seed}).",
        f"- **Objective**: the mean validation accuracy of the last {plan.last_rounds} evaluated rounds, averaged "
        f"over tuning seeds {', '.join(map(str, plan.seeds))} (disjoint from `fedsparse compare`'s evaluation seeds). "
        f"The validation set is {plan.raw['data']['validation'] * 100:g} % of the training data, held out on the "
        "server and stratified by label; trial runs never evaluate on the test set.",
        "",
        "| strategy | space | chosen (best trial) | validation score |",
        "|---|---|---|---|",
    ]
    for name in plan.strategies:
        space = "; ".join(f"{k.path} {k.describe()}" for k in plan.spaces[name])
        chosen = best[name]
        picked = "all trials failed" if chosen is None else f"{_params_text(chosen.params)} (trial {chosen.number})"
        score = "–" if chosen is None or chosen.score is None else f"{chosen.score * 100:.2f} %"
        lines.append(f"| {name} | {space} | {picked} | {score} |")
    lines += [
        "",
        f"Each strategy's config: `{TUNED_DIR}/<strategy>.yaml`; all of them side by side on the evaluation seeds: "
        f"`fedsparse compare {compare_path(plan)}`.",
        "",
        "## Trials",
        "",
        "| strategy | trial | values | validation score |",
        "|---|---|---|---|",
    ]
    for name, found in trials.items():
        for trial in found:
            score = "failed" if trial.score is None else f"{trial.score * 100:.2f} %"
            lines.append(f"| {name} | {trial.number} | {_params_text(trial.params)} | {score} |")
    return "\n".join(lines) + f"\n\n![score against trial, parameter importances]({TUNE_PNG})\n"


def _importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's fANOVA importances (seeded); empty where the study has too few trials."""
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError):
        return {}


def plot_tune(
    path: Path, trials: Mapping[str, Sequence[TrialResult]], importances: Mapping[str, dict[str, float]]
) -> Path:
    """Score against trial with the best so far, and parameter importances, per strategy."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), dpi=110)
    left, right = fig.subplots(1, 2)
    for name, found in trials.items():
        scored = [(t.number, t.score) for t in found if t.score is not None]
        if not scored:
            continue
        numbers, scores = zip(*scored, strict=True)
        best = [max(scores[: i + 1]) for i in range(len(scores))]
        (line,) = left.plot(numbers, scores, "o", markersize=4, label=name)
        left.step(numbers, best, where="post", color=line.get_color(), linewidth=1.2)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("trial")
    left.set_ylabel("validation score (dots) and best so far (line)")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    labels: list[str] = []
    values: list[float] = []
    offsets: list[int] = []
    for name, ranked in importances.items():
        for param, value in ranked.items():
            labels.append(f"{name}: {param}")
            values.append(value)
            offsets.append(len(offsets))
    if values:
        right.barh(offsets, values)
        right.set_yticks(offsets, labels, fontsize=7)
        right.invert_yaxis()
        right.set_xlabel("importance (fANOVA)")
    else:
        right.text(0.5, 0.5, "too few trials for importances", ha="center", va="center")
        right.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_tune(
    plan: TunePlan, studies: Mapping[str, optuna.Study], trials: Mapping[str, Sequence[TrialResult]]
) -> tuple[list[Path], str]:
    """Write every file of the tune; return (paths written, the markdown page)."""
    best = {name: best_trial(trials[name]) for name in plan.strategies}
    tuned = plan.out / TUNED_DIR
    tuned.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in plan.strategies:
        chosen = best[name]
        note = "all trials failed: the base values" if chosen is None else f"trial {chosen.number}"
        header = f"{name}, tuned by `{plan.command()}` ({note}; see ../{TUNE_MD})"
        _write_yaml(tuned / f"{name}.yaml", header, tuned_config(plan, name, chosen))
        paths.append(tuned / f"{name}.yaml")
    header = f"every tuned strategy on the evaluation seeds: fedsparse compare {compare_path(plan)}"
    _write_yaml(compare_path(plan), header, compare_config(plan, best))
    paths.append(compare_path(plan))
    _write_trials_csv(plan.out / TRIALS_CSV, plan, trials)
    text = markdown(plan, trials, best)
    (plan.out / TUNE_MD).write_text(text)
    importances = {name: _importances(study) for name, study in studies.items()}
    paths += [plan.out / TRIALS_CSV, plan.out / TUNE_MD, plot_tune(plan.out / TUNE_PNG, trials, importances)]
    return paths, text
