"""Federated continual learning: FedWeIT, its ablations and the baselines on the same streams.

Runs every variant on ``configs/fcl_split_mnist.yaml`` (5 clients × 5 tasks of 2
classes) and ``configs/fcl_permuted_mnist.yaml`` (5 clients × 5 of 8 permutations) over
``--seeds`` seeds, with the EWC control (local + EWC) on permuted MNIST; and on permuted
MNIST two more scenarios over ``--scenario-seeds``: task similarity (from one shared task
sequence to 5 of 25 permutations) and partial participation (10 clients, 5 a round).
Resumable, one core per run (``--ray-address``: Ray tasks on a cluster). Writes
``docs/results/fcl.md`` and ``docs/results/fcl.png``: accuracy after the first task and at
the end, each task's accuracy at its own end (overall and by its place in the stream),
forgetting, MB up and down, upload relative to FedAvg, model size and state per client
(each mean ± std), Welch's t-test against the best baseline and of FedWeIT against its
no-communication ablation, and average accuracy over the task sequence.

    python simulations/fcl.py --seeds 5 --scenario-seeds 3 --jobs 2
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sweep import (
    best_of,
    finish_panel,
    mean_std_text,
    p_text,
    p_versus,
    publish,
    rerun_note,
    run_one,
    run_pool,
    save_figure,
    sweep_args,
    sweep_parser,
)

from fedsparse.comparison.stats import welch_p
from fedsparse.results import BYTES_PER_MB, read_metrics, read_summary

BENCHMARKS = {"split MNIST": "fcl_split_mnist.yaml", "permuted MNIST": "fcl_permuted_mnist.yaml"}
# EWC strength for the "+ EWC" baselines: the best non-zero one of 1, 10, 100 on a held-out seed
# (100) on both benchmarks, FedAvg + EWC (final average task accuracy, permuted / split MNIST):
# 0 → 0.832 / 0.994, 1 → 0.834 / 0.993, 10 → 0.826 / 0.989, 100 → 0.798 / 0.991
EWC_LAMBDA = 1.0
# the control of EWC without averaging, on permuted MNIST: local + EWC, its strength chosen
# the same way for local (held-out seed 100, final average task accuracy):
# 0 → 0.726, 1 → 0.732, 10 → 0.734, 100 → 0.727, 1000 → 0.715 (forgetting 14.5, 13.8, 13.5,
# 14.4, 15.7 points)
LOCAL_EWC_LAMBDA = 10.0
LOCAL_EWC = ["strategy.name=local", f"strategy.local.ewc_lambda={LOCAL_EWC_LAMBDA}"]
EWC_CONTROL = ("local", "local + EWC", "fedavg", "fedavg + EWC")
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
BASELINES = ("local", "local + EWC", "fedavg", "fedprox", "fedavg + EWC", "fedprox + EWC")
# the paper's axis, on permuted MNIST, from most to least overlap: every client learns the
# same 5 tasks in the same order (at any time all on one task); the same 5 in its own
# order; 5 of a pool of 8 (the benchmark above); 5 of 25. Column → scenario key, overrides.
SIMILARITY: dict[str, tuple[str, list[str]]] = {
    "same 5, same order": ("pool 5 same order", ["data.tasks.pool_size=5", "data.tasks.order=fixed"]),
    "same 5, own order": ("pool 5", ["data.tasks.pool_size=5"]),
    "5 of 8": ("permuted MNIST", []),
    "5 of 25": ("pool 25", ["data.tasks.pool_size=25"]),
}
SIMILARITY_VARIANTS = ("local", "fedavg", "fedweit", "fedweit, no knowledge base", "fedweit, no communication")
# partial participation on permuted MNIST: 10 clients, 5 sampled each round
PARTIAL = ["federation.num_clients=10", "federation.clients_per_round=5"]
PARTIAL_VARIANTS = ("local", "fedavg", "fedweit", "fedweit, no knowledge base", "fedweit, no communication")


def after_first_task(run: Path) -> float:
    """Average task accuracy at the end of the first task (before anything can be forgotten)."""
    return [row for row in read_metrics(run) if row["task"] == 1][-1]["avg_task_accuracy"]


def learned_by_position(run: Path) -> list[float]:
    """For the 1st, 2nd, … task of the streams: its accuracy at the end of its own rounds,
    averaged over the clients that trained then (how well it was learned, before any
    forgetting)."""
    rows = read_metrics(run)
    learned = []
    for task in sorted({row["task"] for row in rows}):
        last = [row for row in rows if row["task"] == task][-1]
        learned.append(statistics.fmean(seen[task - 1] for seen in last["task_accuracy"].values()))
    return learned


def learning_accuracy(run: Path) -> float:
    """:func:`learned_by_position` averaged over the tasks."""
    return statistics.fmean(learned_by_position(run))


def position_table(runs: dict[str, list[Path]]) -> list[str]:
    """Per strategy, each task's accuracy at its own end by its place in the stream
    (mean ± std over seeds): whether later tasks are learned better (forward transfer)
    or worse (lost plasticity) than the first."""
    learned = {name: [learned_by_position(d) for d in dirs] for name, dirs in runs.items()}
    positions = len(next(iter(learned.values()))[0])
    lines = [
        "| strategy | " + " | ".join(f"task {k + 1}" for k in range(positions)) + " |",
        "|" + "---|" * (positions + 1),
    ]
    for name, seeds in learned.items():
        cells = [mean_std_text([seed[k] for seed in seeds], 100) for k in range(positions)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def table(heading: str, runs: dict[str, list[Path]]) -> list[str]:
    """One scenario's rows: accuracy at the end of the first task and at the end (with
    Welch's p against the best baseline present), forgetting, traffic and model size, and
    FedWeIT against its no-communication ablation."""
    summaries = {name: [read_summary(r) for r in dirs] for name, dirs in runs.items()}
    fedavg_up = [s["bytes_up_total"] for s in summaries["fedavg"]]
    accuracy = {name: [s["final_avg_task_accuracy"] for s in results] for name, results in summaries.items()}
    best = best_of(accuracy, BASELINES)
    first_task = {name: [after_first_task(d) for d in dirs] for name, dirs in runs.items()}
    learned = {name: [learning_accuracy(d) for d in dirs] for name, dirs in runs.items()}
    head = [
        "strategy",
        "acc after task 1 (%)",
        "final avg task acc (%)",
        f"p vs {best}",
        "task acc at its end (%)",
        "forgetting (pts)",
        "MB up",
        "MB down",
        "upload vs FedAvg (%)",
        "model size per client (MB)",
        "state per client (MB)",
    ]
    lines = [
        f"### {heading}",
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
                    mean_std_text(first_task[name], 100),
                    mean_std_text(accuracy[name], 100),
                    p_versus(accuracy, name, best),
                    mean_std_text(learned[name], 100),
                    mean_std_text([s["final_forgetting"] for s in results], 100),
                    mean_std_text(ups, 1 / BYTES_PER_MB, 1),
                    mean_std_text([s["bytes_down_total"] for s in results], 1 / BYTES_PER_MB, 1),
                    mean_std_text([u / f for u, f in zip(ups, fedavg_up, strict=True)], 100, 1),
                    mean_std_text([s["final_model_size_bytes"] for s in results], 1 / BYTES_PER_MB, 3),
                    mean_std_text([s["final_state_size_bytes"] for s in results], 1 / BYTES_PER_MB, 3),
                ]
            )
            + " |"
        )
    shared = [name for name in ("fedavg", "fedprox") if name in first_task]
    if "local" in first_task and shared:
        gaps = "; ".join(f"{name} {gap_text(first_task, name, 'local')}" for name in shared)
        lines += ["", f"After the first task, against local training: {gaps}."]
    claim = "fedweit", "fedweit, no communication"
    if all(name in accuracy for name in claim):
        lines += [
            "",
            "FedWeIT vs its no-communication ablation (transfer between clients): final accuracy "
            f"{gap_text(accuracy, *claim)}; task accuracy at its end {gap_text(learned, *claim)}.",
        ]
    return [*lines, ""]


def gap_text(values: dict[str, list[float]], name: str, reference: str, brief: bool = False) -> str:
    """``name``'s mean minus ``reference``'s in points, with Welch's p (``brief``: for a
    table cell)."""
    gap = statistics.fmean(values[name]) - statistics.fmean(values[reference])
    p = p_text(welch_p(values[name], values[reference]))
    return f"{gap * 100:+.2f} (p {p})" if brief else f"{gap * 100:+.2f} points (Welch p = {p})"


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


def similarity_table(runs: dict[str, dict[str, list[Path]]]) -> list[str]:
    """Per degree of overlap (columns): accuracy after the first task, where only sharing
    can help (one table), and final accuracy (another), each followed by FedWeIT's gain over
    its ablations."""
    measures = {
        "Accuracy after the first task (%)": after_first_task,
        "Final average task accuracy (%)": lambda run: read_summary(run)["final_avg_task_accuracy"],
    }
    lines: list[str] = []
    for title, measure in measures.items():
        accuracy = {
            column: {name: [measure(d) for d in dirs] for name, dirs in by_name.items()}
            for column, by_name in runs.items()
        }
        lines += [f"{title}:", "", "| strategy | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
        lines += [
            f"| {name} | " + " | ".join(mean_std_text(accuracy[column][name], 100) for column in runs) + " |"
            for name in SIMILARITY_VARIANTS
        ]
        for ablation in ("fedweit, no knowledge base", "fedweit, no communication"):
            cells = [gap_text(accuracy[column], "fedweit", ablation, brief=True) for column in runs]
            lines.append(f"| fedweit − ({ablation}) | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def main() -> None:
    parser = sweep_parser(__doc__, "fcl")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--scenario-seeds", type=int, default=3, help="seeds of the task-similarity and partial-participation runs"
    )
    args = sweep_args(parser, "fcl")
    if "fedavg" not in args.variants:
        parser.error("--variants: fedavg is the reference for the upload column")
    permuted = BENCHMARKS["permuted MNIST"]
    # (config, folder label, variant, overrides); seed-major so the first seeds finish first
    work: dict[tuple[str, str, int], tuple[str, list[str]]] = {}
    for seed in range(max(args.seeds, args.scenario_seeds)):
        if seed < args.seeds:
            for bench, config in BENCHMARKS.items():
                for name in args.variants:
                    work[(bench, name, seed)] = (config, VARIANTS[name])
            work[("permuted MNIST", "local + EWC", seed)] = (permuted, LOCAL_EWC)
        if seed < args.scenario_seeds:
            for scenario, overrides in SIMILARITY.values():
                if scenario not in BENCHMARKS:
                    for name in SIMILARITY_VARIANTS:
                        work[(scenario, name, seed)] = (permuted, [*VARIANTS[name], *overrides])
            for name in PARTIAL_VARIANTS:
                work[("partial", name, seed)] = (permuted, [*VARIANTS[name], *PARTIAL])

    def execute(key: tuple[str, str, int]) -> Path:
        scenario, name, seed = key
        config, overrides = work[key]
        label = name if scenario in BENCHMARKS else f"{scenario} {name}"
        return run_one(config, label, overrides, seed, args)

    with run_pool(args) as pool:
        folders = dict(zip(work, pool.map(execute, work), strict=True))
    all_runs = {
        bench: {name: [folders[(bench, name, s)] for s in range(args.seeds)] for name in args.variants}
        for bench in BENCHMARKS
    }
    seeds = range(args.seeds)
    ewc_control = {name: [folders[("permuted MNIST", name, s)] for s in seeds] for name in EWC_CONTROL}
    scenario_seeds = range(args.scenario_seeds)
    similarity = {
        column: {name: [folders[(scenario, name, s)] for s in scenario_seeds] for name in SIMILARITY_VARIANTS}
        for column, (scenario, _) in SIMILARITY.items()
    }
    partial = {name: [folders[("partial", name, s)] for s in scenario_seeds] for name in PARTIAL_VARIANTS}
    figure = args.results.with_suffix(".png")
    lines = [
        "# Federated continual learning on MNIST: FedWeIT, its ablations and the baselines",
        "",
        f"Produced by `python simulations/fcl.py --seeds {args.seeds} --scenario-seeds {args.scenario_seeds}`. "
        + rerun_note(f"python simulations/fcl.py --seeds {args.seeds} --scenario-seeds {args.scenario_seeds}")
        + f" Mean ± std over seeds 0..{args.seeds - 1} (the last two sections: 0..{args.scenario_seeds - 1}); every "
        "strategy runs on the same task streams (5 clients, each learning 5 tasks in its own order, 10 rounds "
        "per task, ≤600 samples per client and task of which 10 % are its validation set, 500 test samples per "
        "task; cnn [16, 32] + 128 hidden with one head per task; Adam, 5 local epochs at lr 1e-3 divided by 3 "
        "after 3 epochs without a better validation loss, as FedWeIT's official client; all clients every "
        "round; FedAvg and FedProx share the trunk only, each task's head stays with its client; EWC strength "
        f"{EWC_LAMBDA:g}, the best non-zero strength of 1, 10 and 100 on a held-out seed, where no EWC did as "
        "well). Accuracy is each "
        "client's own model on the test set of every task it has seen, with that task's head, "
        "averaged over tasks and clients; forgetting is the mean drop from a task's best accuracy "
        "to its final one; task accuracy at its end is each task's accuracy after its own last round "
        "(how well it was learned, before any forgetting). MB are the encoded arrays that crossed the "
        "wire (the byte ledger); "
        "model size is what a client keeps to serve all its tasks (trunk or B, masks, biases, A, knowledge, "
        "the heads of its tasks), state adds what only further training needs (FedWeIT: each finished task's "
        "weights, which its drift penalty compares against; EWC: the Fisher sum and its anchor), sparse tensors "
        "by their non-zeros. p: Welch's t-test of the final accuracy against the best baseline. "
        "What the numbers say: [../methods.md](../methods.md#fedweit-what-the-measurements-say).",
        "",
        f"![average task accuracy over the task sequence]({figure.name})",
        "",
    ]
    for bench, runs in all_runs.items():
        lines += table(f"{bench} (`{BENCHMARKS[bench]}`)", runs)
    lines += [
        "Permuted MNIST, each task's accuracy at the end of its own rounds (%), by its place in the clients' streams:",
        "",
        *position_table(all_runs["permuted MNIST"]),
    ]
    lines += table(
        f"EWC without averaging: permuted MNIST, local + EWC (strength {LOCAL_EWC_LAMBDA:g}, chosen as above "
        "for local)",
        ewc_control,
    )
    lines += [
        "## Task similarity: how much the clients' tasks overlap",
        "",
        "Permuted MNIST as above, from most to least overlap between the clients' tasks: all 5 clients learn "
        "the same 5 permutations in the same order (`data.tasks.pool_size: 5, order: fixed`), the same 5 each "
        "in its own order (`pool_size: 5`), 5 of 8 (the benchmark above), 5 of 25 (`pool_size: 25`). "
        "Accuracy after the first task (every client's first task alone, where only what is shared can help) "
        "and final average task accuracy; the last rows of each are FedWeIT's gain over its ablations in "
        "points, with Welch's p.",
        "",
        *similarity_table(similarity),
    ]
    lines += table(
        "Partial participation: permuted MNIST, 10 clients, 5 sampled each round (`"
        + " ".join(f"--set {item}" for item in PARTIAL)
        + "`)",
        partial,
    )
    publish(args.results, lines, lambda path: plot(all_runs, path))


if __name__ == "__main__":
    main()
