"""Federated continual learning: FedWeIT vs local, FedAvg and FedProx on the same streams.

Runs every variant on ``configs/fcl_split_mnist.yaml`` (5 clients × 5 tasks of 2
classes) and ``configs/fcl_permuted_mnist.yaml`` (5 clients × 5 of 8 permutations) over
several seeds (resumable, one core per run), and writes ``docs/results/fcl.md`` and
``docs/results/fcl.png``: final average task accuracy, forgetting, MB up and down, upload
relative to FedAvg (each mean ± std), and average accuracy over the task sequence.

    python simulations/fcl.py --seeds 3 --jobs 2
"""

from __future__ import annotations

import itertools
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sweep import finish_panel, mean_std_text, publish, run_one, save_figure, sweep_parser

from fedsparse.results import BYTES_PER_MB, read_metrics, read_summary

BENCHMARKS = {"split MNIST": "fcl_split_mnist.yaml", "permuted MNIST": "fcl_permuted_mnist.yaml"}
VARIANTS: dict[str, list[str]] = {
    "local": ["strategy.name=local"],
    "fedavg": ["strategy.name=fedavg"],
    "fedprox": ["strategy.name=fedprox"],
    "fedweit": ["strategy.name=fedweit"],
    "fedweit, sparsity 0.6": ["strategy.name=fedweit", "strategy.fedweit.client_sparsity=0.6"],
}


def table(benchmark: str, runs: dict[str, list[Path]]) -> list[str]:
    summaries = {name: [read_summary(r) for r in dirs] for name, dirs in runs.items()}
    fedavg_up = [s["bytes_up_total"] for s in summaries["fedavg"]]
    head = ["strategy", "final avg task acc (%)", "forgetting (pts)", "MB up", "MB down", "upload vs FedAvg (%)"]
    lines = [
        f"### {benchmark} (`{BENCHMARKS[benchmark]}`)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, results in summaries.items():
        ups = [s["bytes_up_total"] for s in results]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    mean_std_text([s["final_avg_task_accuracy"] for s in results], 100),
                    mean_std_text([s["final_forgetting"] for s in results], 100),
                    mean_std_text(ups, 1 / BYTES_PER_MB, 1),
                    mean_std_text([s["bytes_down_total"] for s in results], 1 / BYTES_PER_MB, 1),
                    mean_std_text([u / f for u, f in zip(ups, fedavg_up, strict=True)], 100, 1),
                ]
            )
            + " |"
        )
    return [*lines, ""]


def plot(all_runs: dict[str, dict[str, list[Path]]], path: Path) -> None:
    """Seed-mean average task accuracy per round, task boundaries dotted, one panel per benchmark."""
    fig, axes = plt.subplots(1, len(all_runs), figsize=(5.5 * len(all_runs), 3.8), dpi=110, squeeze=False)
    for ax, (benchmark, runs) in zip(axes[0], all_runs.items(), strict=True):
        for name, dirs in runs.items():
            series = [read_metrics(d) for d in dirs]
            rounds = [row["round"] for row in series[0]]
            accuracy = [statistics.fmean(rows[i]["avg_task_accuracy"] for rows in series) for i in range(len(rounds))]
            ax.plot(rounds, accuracy, label=name, linewidth=1.2)
        first = series[0]
        for boundary in (row["round"] for prev, row in itertools.pairwise(first) if row["task"] != prev["task"]):
            ax.axvline(boundary - 0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("round (dotted: a new task starts)")
        ax.set_ylabel("average accuracy over tasks seen")
        finish_panel(ax, benchmark)
    save_figure(fig, path)


def main() -> None:
    parser = sweep_parser(__doc__, "fcl")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    if "fedavg" not in args.variants:
        parser.error("--variants: fedavg is the reference for the upload column")
    # the extra FedWeIT setting runs last, after every strategy the comparison needs
    order = sorted(args.variants, key=lambda name: name.startswith("fedweit,"))
    jobs = [(bench, name, seed) for name in order for bench in BENCHMARKS for seed in range(args.seeds)]

    def execute(job: tuple[str, str, int]) -> Path:
        bench, name, seed = job
        return run_one(BENCHMARKS[bench], name, VARIANTS[name], seed, args.out)

    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(jobs, pool.map(execute, jobs), strict=True))
    all_runs = {
        bench: {name: [folders[(bench, name, s)] for s in range(args.seeds)] for name in args.variants}
        for bench in BENCHMARKS
    }
    figure = args.results.with_suffix(".png")
    lines = [
        "# Federated continual learning on MNIST: FedWeIT vs local, FedAvg, FedProx",
        "",
        f"Produced by `python simulations/fcl.py --seeds {args.seeds}`. Mean ± std over seeds "
        f"0..{args.seeds - 1}; every strategy runs on the same task streams (5 clients, each "
        "learning 5 tasks in its own order, 10 rounds per task, ≤600 training samples per client "
        "and task, 500 test samples per task; cnn [16, 32] + 128 hidden with one head per task; "
        "Adam, lr 3.3e-4, batch 100, 1 local epoch, all clients every round). Accuracy is each "
        "client's own model on the test set of every task it has seen, with that task's head, "
        "averaged over tasks and clients; forgetting is the mean drop from a task's best accuracy "
        "to its final one. MB are the encoded arrays that crossed the wire (the byte ledger). "
        "What the numbers say: [../methods.md](../methods.md#fedweit-what-the-measurements-say).",
        "",
        f"![average task accuracy over the task sequence]({figure.name})",
        "",
    ]
    for bench, runs in all_runs.items():
        lines += table(bench, runs)
    publish(args.results, lines, lambda path: plot(all_runs, path))


if __name__ == "__main__":
    main()
