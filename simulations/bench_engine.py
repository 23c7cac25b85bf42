"""What does the engine cost? One FedAvg workload, several ways, side by side in one run.

Columns, each a fresh subprocess measured the same way, every one with the same client
resources (``--threads`` CPUs, hence torch threads, per client) unless it says otherwise:

1. **plain**: a PyTorch loop doing the same arithmetic (same config and partitions via
   ``ClientTask``, seeded sampling via ``ClientSampler``, per-client seeds,
   ``train_epochs``/``evaluate``, Flower FedAvg's example-weighted float32 average in
   client-id order, the test evaluation in the last round) with no messages at all;
2. **inline**: ``fedsparse run`` on the inline engine (:mod:`fedsparse.inline`);
3. **ray**: ``fedsparse run`` on fedsparse's Ray engine (:mod:`fedsparse.ray_grid`),
   as many actors as the CPUs hold (up to 10,000 registered clients);
4. **flower-ray**: ``fedsparse run`` on Flower's own Ray simulation engine (up to 1,000
   registered clients: its node discovery is one blocking call per node);
5. **ray, 1-cpu actors** and **flower-ray, 1-cpu actors**: the Ray engines given one CPU
   per client, so one actor per CPU trains in parallel (their fastest setting on a small
   machine). A client then trains with one torch thread, not ``--threads``.

Rows: 10, 100, 1000 and 10,000 registered clients with 10 a round, 100,000 registered
clients with 100 and with 1,000 a round (cross-device scale), all with the
105k-parameter CNN, plus a 1M-parameter CNN at 100 clients. Every client draws 64 MNIST
training samples of its own (``partition.method: resample``, so 60,000 samples serve any
number of clients). Every column with the same CPUs per client does the same arithmetic,
so their accuracies must agree exactly; the 1-cpu columns' clients train with another
thread count, so theirs is close, not equal.

Measurements:

* s/round: median of rounds 2..N of ``round_seconds`` (training + aggregation + engine);
  round 1 pays one-off costs. The server evaluates on the 10,000 test images only in the
  last round: on this machine that takes ~1.5 s, more than a round's training, and would
  hide the engine's cost.
* first round s: from launching the process to the start of round 1 (the first metrics
  line's appearance minus its ``round_seconds``): imports, data, engine start, discovery.
* peak GB: the summed PSS (RSS where PSS is unreadable) of the whole process tree, sampled
  every 0.2 s; Ray spreads over a dozen processes, so one process's RSS says little.

Each column runs ``--repeats`` times, interleaved, and the repeat with the fastest rounds
is reported (timings on a shared 2-core machine swing by ±30% between runs). The last
line is ``ratio=`` the largest inline/plain s/round over all rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from fedsparse.results import METRICS_FILE, read_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"
# column -> (engine, CPUs per client; None: --threads, the plain loop's and inline engine's)
COLUMNS: dict[str, tuple[str, int | None]] = {
    "plain": ("plain", None),
    "inline": ("inline", None),
    "ray": ("ray", None),
    "flower-ray": ("flower-ray", None),
    "ray, 1-cpu actors": ("ray", 1),
    "flower-ray, 1-cpu actors": ("flower-ray", 1),
}
RAY_UP_TO = {"ray": 10_000, "flower-ray": 1_000}  # registered clients; beyond, a column is not run
BIG_CNN = {"channels": [32, 64], "hidden": 320}  # 1.03M parameters on MNIST


@dataclass
class Scenario:
    clients: int
    per_round: int
    model_options: dict  # type: ignore[type-arg]
    label: str

    def columns(self) -> list[str]:
        return [c for c, (engine, _) in COLUMNS.items() if self.clients <= RAY_UP_TO.get(engine, self.clients)]


@dataclass
class Result:
    round_seconds: list[float]
    first_round: float
    peak_bytes: int
    accuracy: float

    @property
    def per_round(self) -> float:
        return statistics.median(self.round_seconds[1:] or self.round_seconds)


# ----------------------------------------------------------------------------- memory
def _memory(proc: psutil.Process) -> int:
    try:
        try:
            return int(proc.memory_full_info().pss)
        except psutil.AccessDenied:
            return int(proc.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0


class TreeMemory:
    """Peak of the summed PSS (fallback RSS) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root, self.interval = psutil.Process(pid), interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        self.peak = max(self.peak, sum(map(_memory, procs)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- runs
def write_config(folder: Path, scenario: Scenario, args: argparse.Namespace, column: str) -> Path:
    backend, actor_cpus = COLUMNS[column]
    cpus = actor_cpus or args.threads
    config = {
        "seed": 0,
        "data": {
            "dataset": "mnist",
            "path": str(args.data),
            "val_fraction": 0.0,
            "partition": {"method": "resample", "samples_per_client": args.samples},
        },
        "model": {"name": "cnn", "options": scenario.model_options},
        "federation": {
            "num_clients": scenario.clients,
            "clients_per_round": scenario.per_round,
            "rounds": args.rounds,
            "local_epochs": 1,
            "batch_size": 32,
            "lr": 0.05,
            "optimizer": "sgd",
            "eval_every": args.rounds,
        },
        "strategy": {"name": "fedavg"},
        "engine": {
            "backend": "inline" if backend == "plain" else backend,
            "client_resources": {"num_cpus": cpus, "num_gpus": 0},
        },
        "output": {"plots": False, "progress": False},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def command_for(backend: str, config: Path, out: Path) -> list[str]:
    if backend == "plain":
        return [sys.executable, __file__, "--plain-run", str(config), str(out)]
    return [sys.executable, "-m", "fedsparse.cli", "run", str(config), "--out", str(out), "--no-progress"]


def measure(command: list[str], out: Path, timeout: float) -> Result | str:
    """Run ``command`` (which writes ``out/metrics.jsonl``); a string says why it failed."""
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    metrics, log = out / METRICS_FILE, out.with_suffix(".log")
    first_line_at: float | None = None
    with log.open("w") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        with TreeMemory(proc.pid) as memory:
            while proc.poll() is None:
                if first_line_at is None and metrics.is_file() and metrics.read_text().strip():
                    first_line_at = time.perf_counter()
                if time.perf_counter() - started > timeout:
                    proc.kill()
                    proc.wait()
                    return f"over {timeout:.0f} s"
                time.sleep(0.05)
    if proc.returncode != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        return f"failed (exit {proc.returncode})"
    rows = read_metrics(out)
    seconds = [float(row["round_seconds"]) for row in rows]
    first_round = (first_line_at or time.perf_counter()) - started - seconds[0]
    return Result(seconds, first_round, memory.peak, float(rows[-1]["accuracy"]))


def plain_run(config_path: Path, out: Path) -> None:
    """The plain PyTorch loop; writes metrics rows as ``fedsparse run`` does."""
    import numpy as np
    import torch

    from fedsparse.config import load_config
    from fedsparse.inline import isolated_client
    from fedsparse.nodes import ClientSampler, NodeDirectory
    from fedsparse.task import ClientTask
    from fedsparse.training import evaluate, fit

    cfg = load_config(config_path)
    task = ClientTask.from_experiment(cfg)
    data = task.federated_data()
    device = torch.device("cpu")
    torch.manual_seed(cfg.seed)  # as the round loop does before building the model
    model = task.build_model()
    fed = cfg.federation
    sampler = ClientSampler(
        NodeDirectory({cid: cid for cid in range(fed.num_clients)}), fed.clients_per_round, cfg.seed
    )
    threads = int(cfg.engine.client_resources.num_cpus)
    out.mkdir(parents=True)
    with (out / METRICS_FILE).open("w") as sink:
        for server_round in range(1, fed.rounds + 1):
            round_start = time.perf_counter()
            global_state = model.state_dict()
            states, examples = [], []
            for cid in sampler.sample(server_round):  # client ids, sorted
                with isolated_client(threads):
                    local = task.build_model()
                    local.load_state_dict(global_state)
                    seed = int(np.random.SeedSequence([task.seed, server_round, cid]).generate_state(1)[0])
                    stats = fit(
                        local,
                        data.client(cid).train,
                        task.training,
                        generator=torch.Generator().manual_seed(seed),
                        device=device,
                    )
                states.append(local.state_dict())
                examples.append(stats.num_examples)
            factors = [n / sum(examples) for n in examples]
            model.load_state_dict(
                {
                    key: sum(
                        (s[key] * f for s, f in zip(states[1:], factors[1:], strict=False)), states[0][key] * factors[0]
                    )
                    for key in states[0]
                }
            )
            row: dict[str, float] = {"round": server_round}
            if server_round % fed.eval_every == 0 or server_round == fed.rounds:
                row["accuracy"] = evaluate(model, data.test, device).accuracy
            row["round_seconds"] = time.perf_counter() - round_start
            sink.write(json.dumps(row) + "\n")
            sink.flush()


# ----------------------------------------------------------------------------- report
def best(results: list[Result | str]) -> Result | str:
    """The repeat with the fastest rounds: other load on a shared machine only slows runs down."""
    finished = [r for r in results if isinstance(r, Result)]
    return min(finished, key=lambda r: r.per_round) if finished else results[0]


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    rows = [Scenario(n, args.per_round, {}, "cnn 105k") for n in args.clients]
    rows += [Scenario(args.cross_device, n, {}, "cnn 105k") for n in args.cross_device_per_round]
    rows.append(Scenario(args.big_clients, args.per_round, BIG_CNN, "cnn 1.03M"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100, 1000, 10000])
    parser.add_argument("--big-clients", type=int, default=100, help="registered clients for the 1M model row")
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--cross-device", type=int, default=100_000, help="registered clients, cross-device rows")
    parser.add_argument("--cross-device-per-round", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    parser.add_argument("--samples", type=int, default=64, help="samples each client draws")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads per client (plain, inline)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per column; the fastest is reported")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run before giving up")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST *-ubyte.gz folder")
    parser.add_argument("--plain-run", nargs=2, type=Path, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_run:
        plain_run(*args.plain_run)
        return
    args.data = args.data.resolve()
    if not args.data.is_dir():
        sys.exit(f"no MNIST folder at {args.data} (pass --data)")

    table: list[tuple[Scenario, dict[str, Result | str]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        for index, scenario in enumerate(scenarios(args)):
            runs: dict[str, list[Result | str]] = {column: [] for column in scenario.columns()}
            for repeat in range(args.repeats):  # interleaved, so a slow spell hits every column
                for number, column in enumerate(scenario.columns()):
                    folder = Path(tmp) / f"{index}-{number}-{repeat}"
                    folder.mkdir()
                    config = write_config(folder, scenario, args, column)
                    print(
                        f"{scenario.clients} clients ({scenario.per_round} a round), {scenario.label}: {column} "
                        f"({repeat + 1}/{args.repeats}) ...",
                        flush=True,
                    )
                    command = command_for(COLUMNS[column][0], config, folder / "run")
                    runs[column].append(measure(command, folder / "run", args.timeout))
            table.append((scenario, {column: best(results) for column, results in runs.items()}))

    print()
    print(
        f"MNIST FedAvg, {args.samples} samples drawn per client, {args.rounds} rounds, {os.cpu_count()} CPUs; "
        f"{args.threads} CPUs (torch threads) per client unless the column says 1-cpu actors (one actor per CPU, "
        "in parallel)"
    )
    head = ["clients", "per round", "model", "engine", "s/round", "× plain", "× inline", "first round s"]
    head += ["peak GB", "× plain", "accuracy"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios: list[float] = []
    for scenario, results in table:
        for backend, result in results.items():
            ratios += report_row(scenario, backend, result, results["plain"], results["inline"])
    print(f"ratio={max(ratios):.2f}")


def report_row(
    scenario: Scenario, backend: str, result: Result | str, plain: Result | str, inline: Result | str
) -> list[float]:
    """Print one table row; the inline/plain time ratio of an inline row."""
    head = f"| {scenario.clients} | {scenario.per_round} | {scenario.label} | {backend} |"
    if isinstance(result, str):
        print(f"{head} {result} | | | | | | |")
        return []
    nan = float("nan")
    time_ratio = result.per_round / plain.per_round if isinstance(plain, Result) else nan
    inline_ratio = result.per_round / inline.per_round if isinstance(inline, Result) else nan
    mem_ratio = result.peak_bytes / plain.peak_bytes if isinstance(plain, Result) else nan
    print(
        f"{head} {result.per_round:.3f} | {time_ratio:.2f} | {inline_ratio:.2f} | {result.first_round:.1f} "
        f"| {result.peak_bytes / 1e9:.2f} | {mem_ratio:.2f} | {result.accuracy:.4f} |"
    )
    return [time_ratio] if backend == "inline" else []


if __name__ == "__main__":
    main()
