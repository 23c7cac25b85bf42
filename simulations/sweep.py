"""What every sweep script shares: one resumable ``fedsparse run`` per (config, variant,
seed), and mean ± std formatting on :mod:`fedsparse.comparison.stats`.

A finished run's metrics and summary are copied to the sweep's archive
(``docs/results/data/<sweep>/<run>/``, kept in git), and a run found there is not run
again, so a sweep continues across fresh checkouts and its page is regenerated from the
archive alone. A run that was stopped continues from its last checkpoint in the output
folder (``runs/<sweep>``), so an interrupted sweep resumes where it stopped. With
``--ray-address`` each run is a Ray task on that cluster instead of a process here
(:mod:`fedsparse.comparison.cluster`), with the same results."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

from fedsparse.checkpoint import checkpoint_path
from fedsparse.comparison.stats import mean_std, welch_p
from fedsparse.config import load_config
from fedsparse.results import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE

REPO = Path(__file__).resolve().parents[1]


def run_name(config: str, variant: str, seed: int) -> str:
    """An ASCII folder name for one run."""
    return f"{Path(config).stem}__{re.sub(r'[^A-Za-z0-9]+', '_', variant)}__seed{seed}"


def run_one(config: str, variant: str, overrides: list[str], seed: int, args: argparse.Namespace) -> Path:
    """Run ``configs/<config>`` with ``overrides`` in ``args.out`` unless ``args.archive``
    holds it (a run that was interrupted resumes from its last checkpoint): in a process
    here, or as a Ray task on the cluster at ``args.ray_address`` (inside :func:`run_pool`);
    return its archived folder (metrics and summary)."""
    name = run_name(config, variant, seed)
    out, archive = args.out, args.archive
    if (archive / name / SUMMARY_FILE).exists():
        return archive / name
    if not (out / name / SUMMARY_FILE).exists():
        settings = [
            *overrides,
            f"seed={seed}",
            f"output.dir={out}",
            f"output.name={name}",
            "output.progress=false",
            "output.plots=false",
        ]
        resume = checkpoint_path(out / name).exists()
        if not resume:
            shutil.rmtree(out / name, ignore_errors=True)  # stopped before its first checkpoint
        if args.ray_address is None:
            _run_here(config, settings, out / name, resume)
        else:
            _run_on_cluster(config, settings, out / name, resume)
        print(f"done {name}", flush=True)
    (archive / name).mkdir(parents=True, exist_ok=True)
    for file in (METRICS_FILE, SUMMARY_FILE):  # the summary last: it marks the archived run complete
        shutil.copyfile(out / name / file, archive / name / file)
    return archive / name


def _run_here(config: str, settings: list[str], run_dir: Path, resume: bool) -> None:
    command = [sys.executable, "-m", "fedsparse.cli", "run"]
    if resume:
        command += ["--resume", str(run_dir)]
    else:
        command.append(str(REPO / "configs" / config))
        for item in settings:
            command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per run; parallel jobs share the machine
    subprocess.run(command, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)


def _run_on_cluster(config: str, settings: list[str], run_dir: Path, resume: bool) -> None:
    from fedsparse.comparison.cluster import ClusterRun, collect, submit

    # resumed as ``fedsparse run --resume`` does: with the config the run started with
    cfg = load_config(run_dir / CONFIG_FILE) if resume else load_config(REPO / "configs" / config, settings)
    run = ClusterRun(cfg, run_dir, resume, run_dir.name)
    collect(run, submit(run))


@contextmanager
def run_pool(args: argparse.Namespace) -> Iterator[ThreadPoolExecutor]:
    """A pool for :func:`run_one` calls, ``args.jobs`` runs at a time; attached to the Ray
    cluster at ``args.ray_address`` while it is open, when one is named."""
    from fedsparse.comparison.cluster import attached

    with attached(args.ray_address) if args.ray_address else nullcontext(), ThreadPoolExecutor(args.jobs) as pool:
        yield pool


def mean_std_text(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± std`` of ``values`` (sample std), both times ``scale`` with ``digits``
    decimals; a single value shows std 0, no values ``n/a``."""
    return mean_std(values).text(scale, digits, single_std=0.0)


def p_text(p: float | None) -> str:
    """A p-value for a results table ("–" where no test applies)."""
    return "–" if p is None else f"{p:.3f}" if p >= 0.001 else "< 0.001"


def best_of(values: Mapping[str, Sequence[float]], candidates: Iterable[str]) -> str:
    """The candidate (among those present) with the highest mean."""
    return max((name for name in candidates if name in values), key=lambda name: statistics.fmean(values[name]))


def p_versus(values: Mapping[str, Sequence[float]], name: str, reference: str) -> str:
    """Welch's p of ``name``'s values against ``reference``'s, for a table cell."""
    return "–" if name == reference else p_text(welch_p(values[name], values[reference]))


def sweep_parser(doc: str | None, name: str) -> argparse.ArgumentParser:
    """The options every sweep takes: seeds, parallel jobs, run folder, results page."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument(
        "--ray-address",
        help="run each run as a Ray task on this cluster (host:port), spread over its nodes; "
        "every node needs fedsparse and the data root",
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / name, help="run folders, checkpoints")
    parser.add_argument(
        "--archive", type=Path, default=REPO / "docs" / "results" / "data" / name, help="finished runs' results"
    )
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / f"{name}.md")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="re-execute every run from nothing instead of reusing the archive: runs, archive and page go to "
        f"runs/{name}-rerun/ (resumable), never over the published archive or page; diff the two pages",
    )
    return parser


def sweep_args(parser: argparse.ArgumentParser, name: str) -> argparse.Namespace:
    """The parsed options; with ``--rerun``, every run folder, the archive and the page
    move to ``runs/<name>-rerun/`` (unless given), so nothing published is reused or
    overwritten, and an interrupted re-run continues there."""
    args = parser.parse_args()
    if args.rerun:
        fresh = REPO / "runs" / f"{name}-rerun"
        defaults = {action.dest: action.default for action in parser._actions}
        for option, path in (
            ("out", fresh / "runs"),
            ("archive", fresh / "archive"),
            ("results", fresh / f"{name}.md"),
        ):
            if getattr(args, option) == defaults[option]:
                setattr(args, option, path)
    return args


def rerun_note(command: str) -> str:
    """The sentence a page gives on re-running it from nothing."""
    return (
        f"Re-run every run from nothing with `{command} --rerun` (into `runs/`, beside this page and its "
        "archive, never over them); without it the page is regenerated from the archive."
    )


def publish(results: Path, lines: list[str], draw: Callable[[Path], None]) -> None:
    """Write the results page, its figure beside it (same name, .png), and echo the page."""
    results.parent.mkdir(parents=True, exist_ok=True)
    draw(results.with_suffix(".png"))
    results.write_text("\n".join(lines))
    print("\n".join(lines))


def finish_panel(ax, title: str) -> None:  # type: ignore[no-untyped-def]
    """The look every sweep's panels share: small title, light grid, legend."""
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def save_figure(fig, path: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
