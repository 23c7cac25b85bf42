"""Federated continual learning: FedWeIT, its ablations and the baselines on the same streams.

Runs every variant on ``configs/fcl_split_mnist.yaml`` (5 clients × 5 tasks of 2
classes) and ``configs/fcl_permuted_mnist.yaml`` (5 clients × 5 of 8 permutations) over
several seeds (resumable, one core per run), and writes ``docs/results/fcl.md`` and
``docs/results/fcl.png``: final average task accuracy, forgetting, MB up and down, upload
relative to FedAvg, model size per client (each mean ± std), Welch's t-test of each
row's accuracy against the best baseline, and average accuracy over the task sequence.

    python simulations/fcl.py --seeds 5 --jobs 2
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

from fedsparse.comparison.stats import welch_p
from fedsparse.results import BYTES_PER_MB, read_metrics, read_summary

BENCHMARKS = {"split MNIST": "fcl_split_mnist.yaml", "permuted MNIST": "fcl_permuted_mnist.yaml"}
EWC_LAMBDA = 100.0  # EWC strength for the "+ EWC" baselines
VARIANTS: dict[str, list[str]] = {
    "local": ["strategy.name=local"],
    "fedavg": ["strategy.name=fedavg"],
    "fedprox": ["strategy.name=fedprox"],
    "fedavg + EWC": ["strategy.name=fedavg", f"strategy.fedavg.ewc_lambda={EWC_LAMBDA}"],
    "fedprox + EWC": ["strategy.name=fedprox", f"strategy.fedprox.ewc_lambda={EWC_LAMBDA}"],
    "fedweit": ["strategy.name=fedweit"],
    "fedweit, no knowledge base": ["strategy.name=fedweit", "strategy.fedweit.knowledge_base=false"],
    "fedweit, no communication": ["strategy.name=fedweit", "strategy.fedweit.communicate=false"],
}
BASELINES = ("local", "fedavg", "fedprox", "fedavg + EWC", "fedprox + EWC")


def p_text(p: float | None) -> str:
    return "–" if p is None else f"{p:.3f}" if p >= 0.001 else "< 0.001"


def table(benchmark: str, runs: dict[str, list[Path]]) -> list[str]:
    summaries = {name: [read_summary(r) for r in dirs] for name, dirs in runs.items()}
    fedavg_up = [s["bytes_up_total"] for s in summaries["fedavg"]]
    accuracy = {name: [s["final_avg_task_accuracy"] for s in results] for name, results in summaries.items()}
    present = [name for name in BASELINES if name in accuracy]
    best = max(present, key=lambda name: statistics.fmean(accuracy[name]))
    head = [
        "strategy",
        "final avg task acc (%)",
        f"p vs {best}",
        "forgetting (pts)",
        "MB up",
        "MB down",
        "upload vs FedAvg (%)",
        "model size per client (MB)",
    ]
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
                    mean_std_text(accuracy[name], 100),
                    "–" if name == best else p_text(welch_p(accuracy[name], accuracy[best])),
                    mean_std_text([s["final_forgetting"] for s in results], 100),
                    mean_std_text(ups, 1 / BYTES_PER_MB, 1),
                    mean_std_text([s["bytes_down_total"] for s in results], 1 / BYTES_PER_MB, 1),
                    mean_std_text([u / f for u, f in zip(ups, fedavg_up, strict=True)], 100, 1),
                    mean_std_text([s["final_model_size_bytes"] for s in results], 1 / BYTES_PER_MB, 3),
                ]
            )
            + " |"
        )
    claim = "fedweit", "fedweit, no communication"
    if all(name in accuracy for name in claim):
        gap = statistics.fmean(accuracy[claim[0]]) - statistics.fmean(accuracy[claim[1]])
        lines += [
            "",
            f"FedWeIT vs its no-communication ablation (transfer between clients): {gap * 100:+.2f} points, "
            f"Welch p = {p_text(welch_p(accuracy[claim[0]], accuracy[claim[1]]))}.",
        ]
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
    order = list(args.variants)
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
        "# Federated continual learning on MNIST: FedWeIT, its ablations and the baselines",
        "",
        f"Produced by `python simulations/fcl.py --seeds {args.seeds}`. Mean ± std over seeds "
        f"0..{args.seeds - 1}; every strategy runs on the same task streams (5 clients, each "
        "learning 5 tasks in its own order, 10 rounds per task, ≤600 training samples per client "
        "and task, 500 test samples per task; cnn [16, 32] + 128 hidden with one head per task; "
        "the optimiser and budget of the configs, all clients every round; FedAvg and FedProx "
        "share the trunk only, each task's head stays with its client; EWC strength "
        f"{EWC_LAMBDA:g}). Accuracy is each "
        "client's own model on the test set of every task it has seen, with that task's head, "
        "averaged over tasks and clients; forgetting is the mean drop from a task's best accuracy "
        "to its final one. MB are the encoded arrays that crossed the wire (the byte ledger); "
        "model size is what a client keeps to serve all its tasks, sparse tensors by their "
        "non-zeros. p: Welch's t-test of the final accuracy against the best baseline. "
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
