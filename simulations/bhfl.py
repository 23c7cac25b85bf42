"""Bitwidth-heterogeneous federations: ProWD, its ablations and the baselines, side by side.

Runs the baselines and ProWD's three parts switched on and off one at a time (the full
factorial, its all-off row being FedAvg) and default ProWD on ``configs/bhfl_mnist_mixed.yaml``
and ``configs/bhfl_mnist_int4_int2.yaml`` (where averaging low-bit weights in hurts the float
model), and the baselines and full ProWD under both selection rules on
``configs/bhfl_mnist_8_32.yaml``, over
several seeds (each run a fresh ``fedsparse run`` process; runs already finished in
``--out`` are reused, so an interrupted sweep resumes). Writes ``docs/results/bhfl.md``:
accuracy of the global model at every bitwidth present and their mean (mean ± std over
seeds, Welch's p against the best baseline), the float32 gap between FedAvg and the
float clients averaged alone with the share of it each ProWD variant closes, default
ProWD against FedAvg seed by seed, the low-bit update measurements per bitwidth, and
MB up / down per run.

    python simulations/bhfl.py --seeds 5 --jobs 2
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

from sweep import best_of, mean_std_text, p_text, p_versus, rerun_note, run_one, run_pool, sweep_args, sweep_parser

from fedsparse.comparison.stats import welch_p
from fedsparse.results import megabytes, read_metrics, read_summary

CONFIGS = ("bhfl_mnist_8_32.yaml", "bhfl_mnist_mixed.yaml", "bhfl_mnist_int4_int2.yaml")
BASELINES: dict[str, list[str]] = {
    "fedavg": ["strategy.name=fedavg"],
    "grouped_avg": ["strategy.name=grouped_avg"],  # its float32 model: the float clients averaged alone
    "grouped_avg_asym": ["strategy.name=grouped_avg_asym"],
    "fedpaq": ["strategy.name=fedpaq"],
}
# ProWD's parts one at a time: dequantizer × selective aggregation × how a low-bit update is
# measured, each as (settings when on, settings when off); the factorial's selection is the
# method's rule, each element normalised over the clients that agreed
PARTS: dict[str, tuple[list[str], list[str]]] = {
    "dequantizer": (["strategy.prowd.dequantizer=true"], ["strategy.prowd.dequantizer=false"]),
    "selective": (
        ["strategy.prowd.selective=true", "strategy.prowd.normalise=agreeing"],
        ["strategy.prowd.selective=false"],
    ),
    "Δ from received": (
        ["strategy.prowd.low_bit_update=from_received"],
        ["strategy.prowd.low_bit_update=from_global"],
    ),
}


def factorial() -> dict[str, list[str]]:
    """Every combination of :data:`PARTS`, named by the parts that are on ("–": all off,
    which is FedAvg)."""
    variants = {}
    for switches in itertools.product((True, False), repeat=len(PARTS)):
        on = [name for name, flag in zip(PARTS, switches, strict=True) if flag]
        label = "prowd [" + (", ".join(on) if on else "–") + "]"
        settings = [s for pair, flag in zip(PARTS.values(), switches, strict=True) for s in pair[0 if flag else 1]]
        variants[label] = ["strategy.name=prowd", *settings]
    return variants


VARIANTS: dict[str, list[str]] = {
    **BASELINES,
    **factorial(),
    "prowd [dequantizer, selective normalised over all, Δ from received]": ["strategy.name=prowd"],  # the default
}
DEFAULT_PROWD = "prowd [dequantizer, selective normalised over all, Δ from received]"
METHOD_RULE_PROWD = "prowd [dequantizer, selective, Δ from received]"
# the paper's own scenario, where int8 does no measurable damage: the baselines and ProWD with
# both selection rules only
CONFIG_VARIANTS = {"bhfl_mnist_8_32.yaml": [*BASELINES, METHOD_RULE_PROWD, DEFAULT_PROWD]}
KEPT = "prowd_kept_fraction"


def table(config: str, results: dict[str, list[dict]]) -> list[str]:  # type: ignore[type-arg]
    """Accuracy at every bitwidth and their mean, Welch's p of the mean against the best
    baseline, and the bytes moved."""
    bitwidths = sorted({b for runs in results.values() for r in runs for b in r["final_accuracy_by_bitwidth"]}, key=int)
    mean_acc = {variant: [r["final_accuracy"] for r in runs] for variant, runs in results.items()}
    best = best_of(mean_acc, BASELINES)
    head = [
        "strategy",
        *[f"acc @{b}-bit (%)" for b in bitwidths],
        "mean acc (%)",
        f"p vs {best}",
        "MB up / run",
        "MB down / run",
    ]
    lines = [f"### {config}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, runs in results.items():
        cells = [variant]
        cells += [mean_std_text([r["final_accuracy_by_bitwidth"][b] for r in runs], 100) for b in bitwidths]
        cells.append(mean_std_text(mean_acc[variant], 100))
        cells.append(p_versus(mean_acc, variant, best))
        cells.append(f"{megabytes(statistics.fmean(r['bytes_up_total'] for r in runs)):.2f}")
        cells.append(f"{megabytes(statistics.fmean(r['bytes_down_total'] for r in runs)):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", *float_gap(results), "", *per_seed(results), ""]


def per_seed(results: dict[str, list[dict]]) -> list[str]:  # type: ignore[type-arg]
    """Default ProWD's mean accuracy against FedAvg's, seed by seed."""
    if DEFAULT_PROWD not in results:
        return []
    pairs = list(zip(results["fedavg"], results[DEFAULT_PROWD], strict=True))
    cells = [f"{(prowd['final_accuracy'] - fedavg['final_accuracy']) * 100:+.2f}" for fedavg, prowd in pairs]
    return [
        "Default ProWD's mean accuracy − FedAvg's, per seed (points):",
        "",
        "| " + " | ".join(f"seed {seed}" for seed in range(len(pairs))) + " |",
        "|" + "---|" * len(pairs),
        "| " + " | ".join(cells) + " |",
    ]


def float_gap(results: dict[str, list[dict]]) -> list[str]:  # type: ignore[type-arg]
    """The problem ProWD addresses, at float32: FedAvg against averaging the float clients
    alone (grouped_avg's float model), and how much of that gap each ProWD variant closes."""
    at32 = {variant: [r["final_accuracy_by_bitwidth"]["32"] for r in runs] for variant, runs in results.items()}
    fedavg, alone = statistics.fmean(at32["fedavg"]), statistics.fmean(at32["grouped_avg"])
    gap = alone - fedavg
    lines = [
        f"Float32: the float clients averaged alone reach {alone * 100:.2f} %, FedAvg {fedavg * 100:.2f} % "
        f"(gap {gap * 100:+.2f} points, Welch p = {p_text(welch_p(at32['grouped_avg'], at32['fedavg']))}).",
    ]
    if gap <= 0:
        return [*lines, "Averaging the low-bit clients in does not hurt the float model here."]
    lines += [
        "",
        "| variant | acc @32-bit − FedAvg (points) | share of the gap closed | p vs FedAvg @32 |",
        "|---|---|---|---|",
    ]
    for variant in (v for v in results if v.startswith("prowd")):
        gain = statistics.fmean(at32[variant]) - fedavg
        p = p_text(welch_p(at32[variant], at32["fedavg"]))
        lines.append(f"| {variant} | {gain * 100:+.2f} | {gain / gap * 100:.0f} % | {p} |")
    return lines


def measurements(config: str, runs: dict[str, list[Path]]) -> list[str]:
    """Per ProWD variant and low bitwidth, the mean over rounds and seeds of the share of
    low-bit update elements agreeing in sign with the float update, and the low-bit update's
    size (all of it, and its agreeing part) relative to the float update."""
    rows = {variant: [row for d in dirs for row in read_metrics(d)] for variant, dirs in runs.items()}
    bits = sorted(
        {
            key.rsplit("_", 1)[1]
            for rs in rows.values()
            for row in rs
            for key in row
            if key.startswith(f"{KEPT}_") and key.endswith("bit")
        },
        key=lambda text: int(text.removesuffix("bit")),
    )
    if not bits:
        return []
    head = ["variant", *[f"{b}: kept / ‖Δ_l‖÷‖Δ_H‖ / kept part" for b in bits]]
    lines = [f"#### {config}: the low-bit updates against the float update", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, rs in rows.items():
        cells = [variant]
        for b in bits:
            values = [
                statistics.fmean(row[f"{name}_{b}"] for row in rs if f"{name}_{b}" in row)
                for name in (KEPT, "prowd_update_ratio", "prowd_kept_ratio")
            ]
            cells.append(f"{values[0] * 100:.1f} % / {values[1]:.2f} / {values[2]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> None:
    parser = sweep_parser(__doc__, "bhfl")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra override for every run")
    args = sweep_args(parser, "bhfl")
    plan = {config: CONFIG_VARIANTS.get(config, list(VARIANTS)) for config in CONFIGS}
    # seed-major, so an interrupted sweep has whole seeds done
    jobs = [(c, v, s) for s in range(args.seeds) for c in CONFIGS for v in plan[c]]
    with run_pool(args) as pool:
        folders = list(
            pool.map(
                lambda job: run_one(job[0], job[1], [*VARIANTS[job[1]], *args.extra], job[2], args),
                jobs,
            )
        )
    by_key = dict(zip(jobs, folders, strict=True))
    lines = [
        "# Bitwidth-heterogeneous FL on MNIST: ProWD, its parts one at a time, and the baselines",
        "",
        f"Produced by `python simulations/bhfl.py --seeds {args.seeds}`"
        + (f" with `{' '.join('--set ' + e for e in args.extra)}`" if args.extra else "")
        + ". "
        + rerun_note(f"python simulations/bhfl.py --seeds {args.seeds}")
        + " Final test accuracy of the global model quantized to each bitwidth present (for the "
        "grouped baselines, the model that group holds), their mean, and the bytes each run moved "
        f"(all clients, all rounds). Mean ± std over seeds 0..{args.seeds - 1}; p: Welch's t-test of the "
        "mean accuracy against the best baseline. Every strategy runs on the same clients, partitions and "
        "device bitwidths (see each config). ProWD's rows switch its three parts on and off one at a time "
        "(`prowd [–]`, all off, is FedAvg), its selection normalising each element over the clients that "
        "agreed (the method's rule); the last row is default ProWD, whose selection normalises over every "
        "client (a disagreeing low-bit update counts as zero). What the numbers say, and what was tried: "
        "[../methods.md](../methods.md#what-the-measurements-say).",
        "",
    ]
    for config in CONFIGS:
        runs = {v: [by_key[(config, v, s)] for s in range(args.seeds)] for v in plan[config]}
        lines += table(config, {v: [read_summary(d) for d in dirs] for v, dirs in runs.items()})
        lines += measurements(config, {v: dirs for v, dirs in runs.items() if v.startswith("prowd")})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
