"""Capability-adapted sub-models: AdaptCL vs FedAvg, HeteroFL and FedRolex on the
simulation clock, side by side, with the controls that say what AdaptCL's parts buy.

Runs every strategy on ``configs/adaptcl_mnist_low.yaml`` (device speeds within 2×) and
``configs/adaptcl_mnist_high.yaml`` (speeds 1, 1/4 and 1/10): IID and non-IID, with and
without clock jitter (±20 %), and with 5 of 10 clients a round; then, per scenario and
seed, FedAvg with a deadline at the round time AdaptCL aims at and AdaptCL with its
learned rates fixed from round 1 (the oracle-rate control); and AdaptCL's ``slack`` swept.
Resumable, one core per run. Writes ``docs/results/adaptcl.md``, ``adaptcl.png`` and
``adaptcl_slack.png``: final accuracy, simulated seconds to reach the target (95 % and
99 % of FedAvg's final accuracy, same seed), the speed-up over FedAvg, the MB moved,
accuracy against simulated time, and the slack's accuracy/time trade.

    python simulations/adaptcl.py --seeds 5 --jobs 2
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sweep import (
    best_of,
    finish_panel,
    mean_std_text,
    p_versus,
    publish,
    rerun_note,
    run_one,
    run_pool,
    save_figure,
    sweep_args,
    sweep_parser,
)

from fedsparse.results import read_metrics, read_summary, total_megabytes

HIGH = "adaptcl_mnist_high.yaml"
NON_IID = ["data.partition.method=shard", "data.partition.shards_per_client=4"]
JITTER = ["federation.clock_jitter=0.2"]
FEDRS = ["federation.restricted_softmax=0"]  # every strategy's clients, against label skew (docs/methods.md §2)
SCENARIOS: dict[str, tuple[str, list[str]]] = {
    "low heterogeneity": ("adaptcl_mnist_low.yaml", []),
    "high heterogeneity": (HIGH, []),
    "high heterogeneity, clock jitter ±20 %": (HIGH, JITTER),
    "high heterogeneity, non-IID": (HIGH, NON_IID),
    "high heterogeneity, non-IID, clock jitter ±20 %": (HIGH, [*NON_IID, *JITTER]),
    "high heterogeneity, non-IID, restricted softmax": (HIGH, [*NON_IID, *FEDRS]),
    "high heterogeneity, 5 of 10 clients a round": (HIGH, ["federation.clients_per_round=5"]),
}
STRATEGY_NAMES = ("fedavg", "heterofl", "fedrolex", "adaptcl")
# controls that read another run of the same scenario and seed (second phase)
DEADLINE, ORACLE = "fedavg, deadline", "adaptcl, oracle rates"
FIT = "adaptcl, fitted rates"  # strategy.adaptcl.rate_rule=fit: the rule that survives noisy times
VARIANT_NAMES = (*STRATEGY_NAMES, FIT, DEADLINE, ORACLE)
BASELINES = ("fedavg", "heterofl", "fedrolex", DEADLINE)  # what AdaptCL is tested against
SLACK = 0.1  # AdaptCL's, in the configs: the deadline baseline waits as long as AdaptCL aims to
SLACK_SWEEP = (0.05, 0.3, 1.0)  # and the configs' 0.1
SLACK_SCENARIOS = ("high heterogeneity", "high heterogeneity, non-IID")
TARGETS = (0.95, 0.99)  # fractions of FedAvg's final accuracy


def deadline_of(fedavg_run: Path) -> float:
    """The deadline AdaptCL aims at: its fastest device's first-round time × (1 + slack)."""
    first = read_metrics(fedavg_run)[0]
    return min(c["sim_seconds"] for c in first["clients"]) * (1 + SLACK)


def learned_rates(adaptcl_run: Path) -> list[float]:
    """Each client's pruned rate in the run's last round (clients it did not sample: their last one)."""
    rates: dict[int, float] = {}
    for row in read_metrics(adaptcl_run):
        rates.update({c["id"]: c["pruned_rate"] for c in row["clients"]})
    return [rates.get(client, 0.0) for client in range(max(rates) + 1)]


def time_to(rows: list[dict], accuracy: float) -> float:  # type: ignore[type-arg]
    """Simulated seconds until the first evaluation at or above ``accuracy`` (inf: never)."""
    for row in rows:
        if row.get("accuracy") is not None and row["accuracy"] >= accuracy:
            return float(row["sim_seconds_total"])
    return math.inf


def _seconds(values: list[float]) -> str:
    if any(math.isinf(v) for v in values):
        reached = sum(not math.isinf(v) for v in values)
        return f"not reached ({reached}/{len(values)} seeds)"
    return mean_std_text(values, digits=0)


def _speedup(fedavg: list[float], other: list[float]) -> str:
    if any(math.isinf(v) for v in other):
        return "—"
    return mean_std_text([f / o for f, o in zip(fedavg, other, strict=True)], digits=2) + "×"


def table(scenario: str, runs: dict[str, list[Path]]) -> list[str]:
    """Final accuracy (Welch's p against the most accurate baseline), the simulated time to
    each target (p of the time to the first against the fastest baseline that reached it
    in every seed), the whole run's time and its bytes."""
    rows = {name: [read_metrics(r) for r in dirs] for name, dirs in runs.items()}
    summaries = {name: [read_summary(r) for r in dirs] for name, dirs in runs.items()}
    fedavg_final = [s["final_accuracy"] for s in summaries["fedavg"]]
    finals = {name: [s["final_accuracy"] for s in summaries[name]] for name in runs}
    times = {
        target: {name: [time_to(r, target * f) for r, f in zip(rows[name], fedavg_final, strict=True)] for name in runs}
        for target in TARGETS
    }
    most_accurate = best_of(finals, BASELINES)
    first = times[TARGETS[0]]
    reached = {name: [-t for t in first[name]] for name in BASELINES if not any(map(math.isinf, first[name]))}
    fastest = best_of(reached, BASELINES) if reached else None
    head = ["strategy", "final acc (%)", "Δ vs FedAvg (pts)", f"p acc vs {most_accurate}"]
    for target in TARGETS:
        head += [f"sim s to {target:.0%} of FedAvg", "speed-up"]
    if fastest is not None:
        head.append(f"p time to {TARGETS[0]:.0%} vs {fastest}")
    head += ["sim s, all rounds", "MB moved / run"]
    lines = [
        f"### {scenario} (`{SCENARIOS[scenario][0]}`"
        + (f" with {', '.join(SCENARIOS[scenario][1])}" if SCENARIOS[scenario][1] else "")
        + ")",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name in runs:
        cells = [
            name,
            mean_std_text(finals[name], 100),
            mean_std_text([a - f for a, f in zip(finals[name], fedavg_final, strict=False)], 100),
            p_versus(finals, name, most_accurate),
        ]
        for target in TARGETS:
            cells += [_seconds(times[target][name]), _speedup(times[target]["fedavg"], times[target][name])]
        if fastest is not None:
            cells.append("–" if any(map(math.isinf, first[name])) else p_versus(first, name, fastest))
        cells.append(mean_std_text([s["sim_seconds_total"] for s in summaries[name]], digits=0))
        cells.append(f"{statistics.fmean(total_megabytes(s) for s in summaries[name]):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot(all_runs: dict[str, dict[str, list[Path]]], path: Path) -> None:
    """Accuracy against simulated time, one panel per scenario, seed-mean curves."""
    fig, axes = plt.subplots(1, len(all_runs), figsize=(5 * len(all_runs), 3.8), dpi=110, squeeze=False)
    for ax, (scenario, runs) in zip(axes[0], all_runs.items(), strict=True):
        for name, dirs in runs.items():
            series = [
                [(r["sim_seconds_total"], r["accuracy"]) for r in read_metrics(d) if r.get("accuracy") is not None]
                for d in dirs
            ]
            times = [statistics.fmean(p[0] for p in points) for points in zip(*series, strict=False)]
            accuracy = [statistics.fmean(p[1] for p in points) for points in zip(*series, strict=False)]
            ax.plot(times, accuracy, marker="o", markersize=2, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("simulated seconds (log)")
        ax.set_ylabel("test accuracy")
        finish_panel(ax, scenario)
    save_figure(fig, path)


def slack_table(runs: dict[str, dict[float, list[Path]]]) -> list[str]:
    """AdaptCL's knob: final accuracy and simulated time per slack."""
    lines = ["| scenario | slack | final acc (%) | sim s, all rounds |", "|---|---|---|---|"]
    for scenario, by_slack in runs.items():
        for slack, dirs in sorted(by_slack.items()):
            summaries = [read_summary(d) for d in dirs]
            lines.append(
                f"| {scenario} | {slack:g} | {mean_std_text([s['final_accuracy'] for s in summaries], 100)} | "
                f"{mean_std_text([s['sim_seconds_total'] for s in summaries], digits=0)} |"
            )
    return [*lines, ""]


def plot_slack(runs: dict[str, dict[float, list[Path]]], path: Path) -> None:
    """Final accuracy against total simulated time, one point per slack (seed means)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for scenario, by_slack in runs.items():
        points = sorted(
            (
                statistics.fmean(read_summary(d)["sim_seconds_total"] for d in dirs),
                statistics.fmean(read_summary(d)["final_accuracy"] for d in dirs),
                slack,
            )
            for slack, dirs in by_slack.items()
        )
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=scenario)
        for seconds, accuracy, slack in points:
            ax.annotate(f"{slack:g}", (seconds, accuracy), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("simulated seconds, all rounds")
    ax.set_ylabel("final test accuracy")
    finish_panel(ax, "AdaptCL's slack: accuracy against time")
    save_figure(fig, path)


def main() -> None:
    parser = sweep_parser(__doc__, "adaptcl")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = sweep_args(parser, "adaptcl")
    seeds = range(args.seeds)

    def execute(job: tuple[str, str, int, list[str]]) -> Path:
        scenario, label, seed, extra = job
        config, overrides = SCENARIOS[scenario]
        return run_one(config, f"{scenario} {label}", [*overrides, *extra], seed, args)

    first = [
        (sc, name, seed, [f"strategy.name={name}"])
        for seed in seeds
        for sc in args.scenarios
        for name in STRATEGY_NAMES
    ]
    first += [
        (sc, FIT, seed, ["strategy.name=adaptcl", "strategy.adaptcl.rate_rule=fit"])
        for seed in seeds
        for sc in args.scenarios
    ]
    slack_scenarios = [sc for sc in SLACK_SCENARIOS if sc in args.scenarios]
    first += [
        (sc, f"adaptcl slack {slack:g}", seed, ["strategy.name=adaptcl", f"strategy.adaptcl.slack={slack}"])
        for seed in seeds
        for sc in slack_scenarios
        for slack in SLACK_SWEEP
    ]
    with run_pool(args) as pool:
        folders = {job[:3]: folder for job, folder in zip(first, pool.map(execute, first), strict=True)}
        second = []
        for seed in seeds:
            for sc in args.scenarios:
                deadline = deadline_of(folders[(sc, "fedavg", seed)])
                rates = learned_rates(folders[(sc, "adaptcl", seed)])
                second += [
                    (sc, DEADLINE, seed, ["strategy.name=fedavg", f"federation.deadline_seconds={deadline:.6g}"]),
                    (sc, ORACLE, seed, ["strategy.name=adaptcl", f"strategy.adaptcl.fixed_rates={rates}"]),
                ]
        folders.update({job[:3]: folder for job, folder in zip(second, pool.map(execute, second), strict=True)})
    all_runs = {
        scenario: {name: [folders[(scenario, name, s)] for s in seeds] for name in VARIANT_NAMES}
        for scenario in args.scenarios
    }
    slack_runs = {
        sc: {
            **{slack: [folders[(sc, f"adaptcl slack {slack:g}", s)] for s in seeds] for slack in SLACK_SWEEP},
            SLACK: all_runs[sc]["adaptcl"],
        }
        for sc in slack_scenarios
    }
    figure = args.results.with_suffix(".png")
    lines = [
        "# Capability-adapted sub-models on MNIST: AdaptCL vs FedAvg, HeteroFL, FedRolex",
        "",
        f"Produced by `python simulations/adaptcl.py --seeds {args.seeds}`. "
        + rerun_note(f"python simulations/adaptcl.py --seeds {args.seeds}")
        + " Mean ± std over seeds "
        f"0..{args.seeds - 1}; every strategy runs on the same clients, data and device profiles "
        "(10 MNIST clients, ≤300 samples each, cnn [16, 32] + 128 hidden, 20 rounds, all clients "
        "every round unless the scenario says otherwise; non-IID: 4 label shards per client; restricted "
        "softmax: every strategy's clients train with FedRS's restricted softmax at alpha 0, "
        "`federation.restricted_softmax: 0`). Times "
        "are the simulation clock's: counted training FLOPs over each device's speed (1 GFLOP/s "
        "reference) plus counted bytes over its bandwidth, times a seeded factor in [0.8, 1.2] per client "
        "and round where the scenario has jitter; a round lasts as long as its slowest client. "
        f"Controls: *{DEADLINE}* drops every client slower than the fastest device's first-round time "
        f"× (1 + {SLACK:g}), the round time AdaptCL aims at (`federation.deadline_seconds`); *{ORACLE}* "
        "prunes each client from round 1 at the rate AdaptCL ended with in the same seed "
        "(`strategy.adaptcl.fixed_rates`), so its gap to AdaptCL is what learning the rates costs; "
        f"*{FIT}* learns them with the fitted rule (`strategy.adaptcl.rate_rule: fit`). "
        "Targets are fractions of FedAvg's final accuracy in the same seed; "
        "speed-up is FedAvg's time to the target over the strategy's (per seed, then averaged). "
        "p: Welch's t-test against the most accurate baseline (final accuracy) and against the fastest "
        "baseline to the first target (time; only baselines and rows that reached it in every seed). "
        "What the numbers say: [../methods.md](../methods.md#adaptcl-what-the-measurements-say).",
        "",
        f"![accuracy vs simulated time]({figure.name})",
        "",
    ]
    for scenario, runs in all_runs.items():
        lines += table(scenario, runs)
    if slack_runs:
        slack_figure = args.results.with_name(args.results.stem + "_slack.png")
        plot_slack(slack_runs, slack_figure)
        lines += [
            "## AdaptCL's slack: accuracy against time",
            "",
            f"![final accuracy against simulated time per slack]({slack_figure.name})",
            "",
            *slack_table(slack_runs),
        ]
    publish(args.results, lines, lambda path: plot(all_runs, path))


if __name__ == "__main__":
    main()
