"""Bitwidth-heterogeneous federations: ProWD, its ablations and the baselines, side by side.

Runs every variant on ``configs/bhfl_mnist_8_32.yaml`` and ``configs/bhfl_mnist_mixed.yaml``
over several seeds (each run a fresh ``fedsparse run`` process; runs already finished in
``--out`` are reused, so an interrupted sweep resumes) and writes
``docs/results/bhfl.md``: accuracy of the global model at every bitwidth present and
their mean (mean ± std over seeds), and MB up / down per run.

    python simulations/bhfl.py --seeds 3 --jobs 2
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor

from sweep import mean_std_text, run_one, sweep_parser

from fedsparse.results import megabytes, read_summary

CONFIGS = ("bhfl_mnist_8_32.yaml", "bhfl_mnist_mixed.yaml")
VARIANTS: dict[str, list[str]] = {
    "fedavg": ["strategy.name=fedavg"],
    "grouped_avg": ["strategy.name=grouped_avg"],
    "grouped_avg_asym": ["strategy.name=grouped_avg_asym"],
    "fedpaq": ["strategy.name=fedpaq"],
    "prowd": ["strategy.name=prowd"],
    "prowd, no dequantizer": ["strategy.name=prowd", "strategy.prowd.dequantizer=false"],
    "prowd, no selective": ["strategy.name=prowd", "strategy.prowd.selective=false"],
    "prowd, Δ from θ_global": ["strategy.name=prowd", "strategy.prowd.low_bit_update=from_global"],
}


def table(config: str, results: dict[str, list[dict]]) -> list[str]:  # type: ignore[type-arg]
    bitwidths = sorted({b for runs in results.values() for r in runs for b in r["final_accuracy_by_bitwidth"]}, key=int)
    head = ["strategy", *[f"acc @{b}-bit (%)" for b in bitwidths], "mean acc (%)", "MB up / run", "MB down / run"]
    lines = [f"### {config}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, runs in results.items():
        cells = [variant]
        cells += [mean_std_text([r["final_accuracy_by_bitwidth"][b] for r in runs], 100) for b in bitwidths]
        cells.append(mean_std_text([r["final_accuracy"] for r in runs], 100))
        cells.append(f"{megabytes(statistics.fmean(r['bytes_up_total'] for r in runs)):.2f}")
        cells.append(f"{megabytes(statistics.fmean(r['bytes_down_total'] for r in runs)):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> None:
    parser = sweep_parser(__doc__, "bhfl")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra override for every run")
    args = parser.parse_args()
    jobs = [(c, v, s) for c in CONFIGS for v in VARIANTS for s in range(args.seeds)]
    with ThreadPoolExecutor(args.jobs) as pool:
        summaries = list(
            pool.map(
                lambda job: read_summary(run_one(job[0], job[1], [*VARIANTS[job[1]], *args.extra], job[2], args.out)),
                jobs,
            )
        )
    by_key = dict(zip(jobs, summaries, strict=True))
    lines = [
        "# Bitwidth-heterogeneous FL on MNIST: ProWD vs baselines",
        "",
        f"Produced by `python simulations/bhfl.py --seeds {args.seeds}`"
        + (f" with `{' '.join('--set ' + e for e in args.extra)}`" if args.extra else "")
        + ". Final test accuracy of the global model quantized to each bitwidth present (for the "
        "grouped baselines, the model that group holds), their mean, and the bytes each run moved "
        f"(all clients, all rounds). Mean ± std over seeds 0..{args.seeds - 1}. Every strategy "
        "runs on the same clients, partitions and device bitwidths (10 MNIST clients, Dirichlet(1.0), "
        "≤400 samples each, cnn [8, 16], 12 rounds; see the configs). What the numbers say, and what "
        "was tried: [../methods.md](../methods.md#what-the-measurements-say).",
        "",
    ]
    for config in CONFIGS:
        lines += table(config, {v: [by_key[(config, v, s)] for s in range(args.seeds)] for v in VARIANTS})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
