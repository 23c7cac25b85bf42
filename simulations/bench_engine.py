"""What does the engine cost? The same FedAvg workload, run two ways, side by side.

1. ``fedsparse run`` in a subprocess: Flower's simulation engine on Ray (ServerApp, one
   Ray actor per CPU, messages, screening, byte metering).
2. A plain PyTorch loop in this process doing the same arithmetic: same config and
   partitions (``ClientTask.from_experiment``), seeded sampling (``ClientSampler``),
   per-client seeds, ``train_epochs`` / ``make_optimizer`` / ``evaluate``, an
   example-weighted average in client-id order, a test evaluation every round.

Why these measurements:

* s/round, median of rounds 2..N: round 1 pays one-off costs (actors start, each loads
  MNIST); later rounds show the overhead that grows with the run. fedsparse's figure is
  the server-measured ``round_seconds`` (training + server evaluation).
* start-up, paid once: fedsparse, launch until round 1 starts (first metrics line's
  appearance minus its ``round_seconds``); plain, imports + data + model before round 1.
* peak memory: Ray spreads the work over many processes (driver, GCS, raylet, dashboard,
  workers), so one RSS says little; the summed PSS of the whole process tree (shared
  pages split among sharers; RSS where PSS is unreadable), sampled every 0.2 s, does not.
* final accuracy: a check that both did the same work (close, not necessarily equal).

fedsparse runs first, before this process imports torch, so this process does not share
(and so shrink the PSS of) the subprocess's library pages.
"""

from __future__ import annotations

import argparse
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

from fedsparse.results import METRICS_FILE, read_metrics, read_summary

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


@dataclass
class Result:
    round_seconds: list[float]
    startup: float
    peak_bytes: int
    accuracy: float

    @property
    def per_round(self) -> float:
        return statistics.median(self.round_seconds[1:] or self.round_seconds)


def _memory(proc: psutil.Process) -> int:
    try:
        try:
            return int(proc.memory_full_info().pss)
        except psutil.AccessDenied:
            return int(proc.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0


def _is_client_actor(proc: psutil.Process) -> bool:
    try:
        return "ClientAppActor" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


class TreeMemory:
    """Peak of the summed PSS (fallback RSS) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root, self.interval = psutil.Process(pid), interval
        self.peak, self.max_processes, self.max_actors = 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        self.peak = max(self.peak, sum(map(_memory, procs)))
        self.max_processes = max(self.max_processes, len(procs))
        self.max_actors = max(self.max_actors, sum(map(_is_client_actor, procs)))

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


def write_config(folder: Path, args: argparse.Namespace) -> Path:
    config = {
        "seed": 0,
        "data": {"dataset": "mnist", "path": str(args.data), "partition": {"method": "iid"}},
        "model": {"name": "cnn"},
        "federation": {
            "num_clients": args.clients, "clients_per_round": args.per_round, "rounds": args.rounds,
            "local_epochs": 1, "batch_size": 32, "lr": 0.05, "optimizer": "sgd",
        },
        "strategy": {"name": "fedavg"},
        "engine": {"backend": "ray", "client_resources": {"num_cpus": 1, "num_gpus": 0}},
        "output": {"plots": False, "progress": False},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_fedsparse(config: Path, out: Path) -> tuple[Result, TreeMemory]:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    command = [sys.executable, "-m", "fedsparse.cli", "run", str(config), "--out", str(out),
               "--no-progress"]
    metrics, log = out / METRICS_FILE, out.parent / "fedsparse.log"
    first_line_at: float | None = None
    with log.open("w") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        with TreeMemory(proc.pid) as memory:
            while proc.poll() is None:
                if first_line_at is None and metrics.is_file() and metrics.read_text().strip():
                    first_line_at = time.perf_counter()
                time.sleep(0.05)
    if proc.returncode != 0:
        sys.exit(f"fedsparse run failed (exit {proc.returncode}):\n{log.read_text()[-4000:]}")
    seconds = [float(row["round_seconds"]) for row in read_metrics(out)]
    startup = (first_line_at or time.perf_counter()) - started - seconds[0]
    result = Result(seconds, startup, memory.peak, read_summary(out)["final_accuracy"])
    return result, memory


def weighted_average(states: list[dict], examples: list[int]) -> dict:  # type: ignore[type-arg]
    """Example-weighted mean, accumulated in float32 in the given (client-id) order, as
    Flower's FedAvg (``aggregate_arrayrecords``) does."""
    factors = [n / sum(examples) for n in examples]
    return {
        key: sum((s[key] * f for s, f in zip(states[1:], factors[1:])), states[0][key] * factors[0])
        for key in states[0]
    }


def run_plain(config: Path) -> Result:
    with TreeMemory(os.getpid()) as memory:
        started = time.perf_counter()
        import numpy as np
        import torch

        from fedsparse.config import load_config
        from fedsparse.nodes import ClientSampler, NodeDirectory
        from fedsparse.task import ClientTask
        from fedsparse.training import evaluate, make_optimizer, train_epochs

        cfg = load_config(config)
        task = ClientTask.from_experiment(cfg)
        data = task.federated_data()
        device = torch.device("cpu")
        torch.manual_seed(cfg.seed)  # as FederationServer does before building the model
        model = task.build_model()
        fed = cfg.federation
        directory = NodeDirectory(client_by_node={cid: cid for cid in range(fed.num_clients)})
        sampler = ClientSampler(directory, fed.clients_per_round, cfg.seed)
        startup = time.perf_counter() - started

        seconds: list[float] = []
        accuracy = 0.0
        for server_round in range(1, fed.rounds + 1):
            round_start = time.perf_counter()
            global_state = model.state_dict()
            states, examples = [], []
            for cid in sampler.sample(server_round):  # client ids, sorted
                local = task.build_model()
                local.load_state_dict(global_state)
                seed = int(np.random.SeedSequence([task.seed, server_round, cid]).generate_state(1)[0])
                optimizer = make_optimizer(
                    local.parameters(), task.optimizer, task.lr, task.momentum, task.weight_decay
                )
                stats = train_epochs(
                    local, data.client(cid).train, epochs=task.local_epochs, batch_size=task.batch_size,
                    optimizer=optimizer, generator=torch.Generator().manual_seed(seed), device=device,
                )
                states.append(local.state_dict())
                examples.append(stats.num_examples)
            model.load_state_dict(weighted_average(states, examples))
            accuracy = evaluate(model, data.test, device).accuracy
            seconds.append(time.perf_counter() - round_start)
    return Result(seconds, startup, memory.peak, accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST *-ubyte.gz folder")
    args = parser.parse_args()
    args.data = args.data.resolve()
    if not args.data.is_dir():
        sys.exit(f"no MNIST folder at {args.data} (pass --data)")

    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        config = write_config(Path(tmp), args)
        print(f"fedsparse run (Flower + Ray): {args.rounds} rounds, "
              f"{args.per_round} of {args.clients} clients ...", flush=True)
        flower, tree = run_fedsparse(config, Path(tmp) / "run")
        print(f"plain PyTorch loop ({os.cpu_count()} torch threads, one client after another) ...", flush=True)
        plain = run_plain(config)

    print()
    print(f"MNIST, cnn, FedAvg, {args.per_round}/{args.clients} clients per round, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs; fedsparse process tree peaked at {tree.max_processes} processes")
    print(f"Ray ran {tree.max_actors} client actors in parallel (num_cpus 1, 1 torch thread each); "
          f"the plain loop trains one client after another on {os.cpu_count()} torch threads")
    print("| run | s/round (median, rounds 2..N) | start-up s | peak memory GB (summed PSS) "
          "| final accuracy |")
    print("|---|---|---|---|---|")
    for name, result in (("plain PyTorch loop", plain), ("fedsparse run (Flower + Ray)", flower)):
        print(f"| {name} | {result.per_round:.3f} | {result.startup:.2f} | "
              f"{result.peak_bytes / 1e9:.2f} | {result.accuracy:.4f} |")
    print(f"ratio={flower.per_round / plain.per_round:.2f}")


if __name__ == "__main__":
    main()
