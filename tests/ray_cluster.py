"""A real Ray cluster on 127.0.0.1 for tests: a head raylet and more raylets attached to
it, each its own ``ray start --block`` process with its own ports, all under one private
temp dir, stopped by PID (never ``ray stop``, which would stop every Ray on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _node_ports() -> list[str]:
    """Ports of one raylet's own services, free now; its workers get 20 from a free base."""
    workers = free_port() // 100 * 100 % 40000 + 20000
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--min-worker-port={workers}",
        f"--max-worker-port={workers + 19}",
    ]


@contextmanager
def _raylet(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        env = {**os.environ, "RAY_worker_niceness": "0"}  # clients at the driver's priority, as the README says
        process = subprocess.Popen([RAY, "start", "--block", *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # --block: Ray stops the node's processes on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _alive_nodes(address: str) -> int:
    probe = (
        "import ray, logging\n"
        f"ray.init(address={address!r}, logging_level=logging.ERROR)\n"
        "print(sum(n['Alive'] for n in ray.nodes()))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


@contextmanager
def ray_cluster(*nodes: list[str]) -> Iterator[str]:
    """Start one raylet per entry of ``nodes`` (its ``ray start`` resource flags, e.g.
    ``["--num-cpus=1"]``), the first as the head; yield the head's address once every
    node is alive."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    port = free_port()
    address = f"127.0.0.1:{port}"
    env_flags = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = ["--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false", *env_flags]
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:
        with ExitStack() as stack:
            stack.enter_context(_raylet([*head, *_node_ports(), *nodes[0]], temp.with_suffix(".head.log")))
            for index, flags in enumerate(nodes[1:], start=1):
                worker = [f"--address={address}", *env_flags, *_node_ports(), *flags]
                stack.enter_context(_raylet(worker, temp.with_suffix(f".node{index}.log")))
            deadline = time.monotonic() + START_SECONDS
            while _alive_nodes(address) < len(nodes):
                if time.monotonic() > deadline:
                    logs = "\n".join(
                        p.read_text(errors="replace")[-2000:] for p in temp.parent.glob(f"{temp.name}.*.log")
                    )
                    raise RuntimeError(f"the Ray cluster did not come up:\n{logs}")
                time.sleep(1)
            yield address
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        for log in temp.parent.glob(f"{temp.name}.*.log"):
            log.unlink()
