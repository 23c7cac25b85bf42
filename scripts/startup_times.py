"""How fast fedsparse answers: ``--help``, ``validate`` on a config with a typo, and the
quickstart's seconds to its first round line, each the median of ``--repeats`` runs.

    .venv/bin/python scripts/startup_times.py [--repeats 3]

The commands run as ``python -m fedsparse.cli`` in fresh processes, so ``PYTHONPATH=<an
older checkout>`` measures that checkout with the same environment (what
docs/guide/running.md's before/after table did).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
TYPO = "seed: 0\nfederation:\n  num_clients: 10\n  clinets_per_round: 5\nstrategy:\n  name: fedavg\n"


def seconds_of(command: list[str], folder: Path) -> float:
    """Wall seconds of ``python -m fedsparse.cli <command>``, run in ``folder``, to its exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fedsparse.cli", *command], capture_output=True, check=False, cwd=folder)
    return time.perf_counter() - started


def seconds_to_round_one(out: Path) -> float:
    """Wall seconds from starting the quickstart to its ``round 1/`` line on stdout (a pipe)."""
    command = [sys.executable, "-m", "fedsparse.cli", "run", str(QUICKSTART), "--out", str(out)]
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=out.parent) as run:
        assert run.stdout is not None
        for line in run.stdout:
            if line.startswith("round 1/"):
                elapsed = time.perf_counter() - started
                run.terminate()  # SIGTERM: the run stops as after Ctrl-C
                run.wait()
                return elapsed
    raise RuntimeError("the quickstart printed no 'round 1/' line")


def main() -> None:
    """Print one ``what: seconds`` line per measurement (median of the repeats)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as name:  # the working folder: fedsparse comes from the environment
        folder = Path(name)
        typo = folder / "typo.yaml"
        typo.write_text(TYPO)
        timings = {
            "fedsparse --help": [seconds_of(["--help"], folder) for _ in range(repeats)],
            "fedsparse validate (a typo)": [seconds_of(["validate", str(typo)], folder) for _ in range(repeats)],
            "quickstart to round 1": [seconds_to_round_one(folder / f"run-{i}") for i in range(repeats)],
        }
    for what, values in timings.items():
        print(f"{what}: {statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
