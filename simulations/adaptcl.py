"""Capability-adapted sub-models: AdaptCL vs FedAvg, HeteroFL and FedRolex on the
simulation clock, side by side.

Runs every strategy on ``configs/adaptcl_mnist_low.yaml`` (device speeds within 2×),
``configs/adaptcl_mnist_high.yaml`` (speeds 1, 1/4 and 1/10) and the high one with a
non-IID split, over several seeds (resumable, one core per run), and writes
``docs/results/adaptcl.md`` and ``docs/results/adaptcl.png``: final accuracy, simulated
seconds to reach the target (95 % and 99 % of FedAvg's final accuracy, same seed), the
speed-up over FedAvg, the MB moved, and accuracy against simulated time.

    python simulations/adaptcl.py --seeds 3 --jobs 2
"""

from __future__ import annotations

import math
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sweep import finish_panel, mean_std_text, publish, run_one, save_figure, sweep_parser

from fedsparse.results import read_metrics, read_summary, total_megabytes

SCENARIOS: dict[str, tuple[str, list[str]]] = {
    "low heterogeneity": ("adaptcl_mnist_low.yaml", []),
    "high heterogeneity": ("adaptcl_mnist_high.yaml", []),
    "high heterogeneity, non-IID": (
        "adaptcl_mnist_high.yaml",
        ["data.partition.method=shard", "data.partition.shards_per_client=4"],
    ),
}
STRATEGY_NAMES = ("fedavg", "heterofl", "fedrolex", "adaptcl")
TARGETS = (0.95, 0.99)  # fractions of FedAvg's final accuracy


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
    rows = {name: [read_metrics(r) for r in dirs] for name, dirs in runs.items()}
    summaries = {name: [read_summary(r) for r in dirs] for name, dirs in runs.items()}
    fedavg_final = [s["final_accuracy"] for s in summaries["fedavg"]]
    head = ["strategy", "final acc (%)", "Δ vs FedAvg (pts)"]
    for target in TARGETS:
        head += [f"sim s to {target:.0%} of FedAvg", "speed-up"]
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
        finals = [s["final_accuracy"] for s in summaries[name]]
        cells = [
            name,
            mean_std_text(finals, 100),
            mean_std_text([a - f for a, f in zip(finals, fedavg_final, strict=False)], 100),
        ]
        for target in TARGETS:
            goals = [target * f for f in fedavg_final]
            times = [time_to(r, goal) for r, goal in zip(rows[name], goals, strict=True)]
            fedavg_times = [time_to(r, goal) for r, goal in zip(rows["fedavg"], goals, strict=True)]
            cells += [_seconds(times), _speedup(fedavg_times, times)]
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


def main() -> None:
    parser = sweep_parser(__doc__, "adaptcl")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    jobs = [
        (scenario, name, seed) for scenario in args.scenarios for name in STRATEGY_NAMES for seed in range(args.seeds)
    ]

    def execute(job: tuple[str, str, int]) -> Path:
        scenario, name, seed = job
        config, overrides = SCENARIOS[scenario]
        return run_one(config, f"{scenario} {name}", [*overrides, f"strategy.name={name}"], seed, args.out)

    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(jobs, pool.map(execute, jobs), strict=True))
    all_runs = {
        scenario: {name: [folders[(scenario, name, s)] for s in range(args.seeds)] for name in STRATEGY_NAMES}
        for scenario in args.scenarios
    }
    figure = args.results.with_suffix(".png")
    lines = [
        "# Capability-adapted sub-models on MNIST: AdaptCL vs FedAvg, HeteroFL, FedRolex",
        "",
        f"Produced by `python simulations/adaptcl.py --seeds {args.seeds}`. Mean ± std over seeds "
        f"0..{args.seeds - 1}; every strategy runs on the same clients, data and device profiles "
        "(10 MNIST clients, ≤300 samples each, cnn [16, 32] + 128 hidden, 20 rounds, all clients "
        "every round). Times are the simulation clock's: counted training FLOPs over each device's "
        "speed (1 GFLOP/s reference) plus counted bytes over its bandwidth; a round lasts as long "
        "as its slowest client. Targets are fractions of FedAvg's final accuracy in the same seed; "
        "speed-up is FedAvg's time to the target over the strategy's (per seed, then averaged). "
        "What the numbers say: [../methods.md](../methods.md#adaptcl-what-the-measurements-say).",
        "",
        f"![accuracy vs simulated time]({figure.name})",
        "",
    ]
    for scenario, runs in all_runs.items():
        lines += table(scenario, runs)
    publish(args.results, lines, lambda path: plot(all_runs, path))


if __name__ == "__main__":
    main()
