"""Real Flower processes for the deployment tests: a SuperLink, SuperNodes and the flwr CLI.

Each party is a "machine" of its own under the test's tmp folder: its own HOME and
FLWR_HOME (nothing touches ~/.flwr; FABs are installed per machine, as on separate
computers), its own working directory and log file. The SuperLink and every SuperNode
listen on free ports on 127.0.0.1 (flwr 1.41's SuperLink serves its Fleet, Control and
Runtime APIs on one HTTP port; a SuperNode has its own Runtime API port). Processes are
started in a session of their own and stopped by PID together with their descendants
(SuperExec, flwr-serverapp, flwr-clientapp): SIGTERM, then SIGKILL after a grace period.
Every wait is bounded.

The commands here are the ones the README's deployment section prints.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent  # the venv's flower-superlink, flower-supernode and flwr
CONNECTION = "fedsparse"  # the SuperLink connection's name in the user's $FLWR_HOME/config.toml
STARTUP_SECONDS = 90.0
GRACE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def machine_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process on a machine of its own whose home folder is ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLWR_", "FEDSPARSE_"))}
    env.update(
        # the SuperLink and SuperNodes start flower-superexec / flwr-clientapp by name: the
        # venv's bin must be on PATH even when the tests run without an activated venv (CI)
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
        HOME=str(home),
        FLWR_HOME=str(home / ".flwr"),
        FLWR_TELEMETRY_ENABLED="0",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        **extra,
    )
    return env


def _living(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = STARTUP_SECONDS) -> None:
        """Until ``text`` appears in the log; fails early if the process exits."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.running():
                raise RuntimeError(
                    f"{self.name} exited ({self.popen.returncode}) before logging {text!r}:\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not log {text!r} in {timeout:.0f} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def tree(self) -> list[psutil.Process]:
        """The process and its living descendants (SuperExec, flwr-*app children)."""
        try:
            root = psutil.Process(self.pid)
            return _living([root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the process and its descendants at once: a device losing power."""
        _signal_and_wait(self.tree(), "kill", GRACE_SECONDS)
        self.popen.wait(timeout=GRACE_SECONDS)


def _signal_and_wait(processes: list[psutil.Process], how: str, timeout: float) -> list[psutil.Process]:
    """Send ``terminate`` or ``kill`` to each; return those still alive after ``timeout``."""
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            getattr(process, how)()
    return list(psutil.wait_procs(_living(processes), timeout=timeout)[1])


def stop_all(processes: list[Process]) -> None:
    """SIGTERM every process and its descendants; SIGKILL what is left after the grace
    period; reap the processes this test started."""
    survivors = _signal_and_wait([p for process in processes for p in process.tree()], "terminate", GRACE_SECONDS)
    _signal_and_wait(survivors, "kill", GRACE_SECONDS)
    for process in processes:
        process.popen.wait(timeout=GRACE_SECONDS)


def start(name: str, args: list[str], env: dict[str, str], cwd: Path, logs: Path) -> Process:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as out:
        popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, popen, log_path)


def run_commands(commands: Iterable[list[str]], cwd: Path) -> None:
    for command in commands:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Tls:
    """A private CA and the SuperLink certificate it signed."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path, hosts: str = "DNS:localhost, IP:127.0.0.1") -> Tls:
        """The README's openssl commands; ``hosts``: the names SuperNodes and SuperExec dial."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "server.ext").write_text(f"subjectAltName = {hosts}\n")
        run_commands(
            [
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "365",
                    "-subj",
                    "/CN=fedsparse-ca",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                ],
                [
                    "openssl",
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=fedsparse-superlink",
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                ],
                [
                    "openssl",
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "365",
                    "-extfile",
                    "server.ext",
                    "-out",
                    "server.crt",
                ],
            ],
            folder,
        )
        return cls(folder / "ca.crt", folder / "server.crt", folder / "server.key")


def node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode's authentication key pair (ECDSA P-384, OpenSSH format): (private, public)."""
    folder.mkdir(parents=True, exist_ok=True)
    run_commands([["ssh-keygen", "-t", "ecdsa", "-b", "384", "-N", "", "-q", "-f", name]], folder)
    return folder / name, folder / f"{name}.pub"


@dataclass
class Federation:
    """A SuperLink, the SuperNodes that join it and the user who submits runs, each on its
    own machine under ``root``. With ``tls`` every link is encrypted; with
    ``supernode_auth`` the SuperLink admits only registered node keys."""

    root: Path
    tls: Tls | None = None
    supernode_auth: bool = False
    port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)

    @property
    def runs_root(self) -> Path:
        """Where the operator lets fedsparse write results ($FEDSPARSE_RUNS_ROOT)."""
        return self.root / "server" / "results"

    @property
    def superlink(self) -> Process:
        return self.processes[0]

    def start_superlink(self) -> Process:
        args = [
            str(BIN / "flower-superlink"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-runtime-dependency-installation",
        ]
        if self.tls is None:
            args.append("--insecure")
        else:
            args += [
                "--ssl-ca-certfile",
                str(self.tls.ca),
                "--ssl-certfile",
                str(self.tls.cert),
                "--ssl-keyfile",
                str(self.tls.key),
            ]
        if self.supernode_auth:
            args.append("--enable-supernode-auth")
        server = self.root / "server"
        env = machine_env(server, FEDSPARSE_RUNS_ROOT=str(self.runs_root))
        process = start("superlink", args, env, server, self.root)
        self.processes.append(process)
        process.wait_for("Starting Flower SuperExec")
        self._connect_user()
        return process

    def supernode_args(self, node_config: str, key: Path | None = None) -> list[str]:
        args = [
            str(BIN / "flower-supernode"),
            "--superlink",
            f"127.0.0.1:{self.port}",
            "--port",
            str(free_port()),
            "--node-config",
            node_config,
        ]
        args += ["--insecure"] if self.tls is None else ["--root-certificates", str(self.tls.ca)]
        if key is not None:
            args += ["--auth-supernode-private-key", str(key)]
        return args

    def start_supernode(self, name: str, node_config: str, key: Path | None = None) -> Process:
        """A SuperNode on a machine of its own; returns without waiting for it to join."""
        machine = self.root / name
        process = start(name, self.supernode_args(node_config, key), machine_env(machine), machine, self.root)
        self.processes.append(process)
        return process

    def restart_supernode(self, name: str, node_config: str, key: Path, timeout: float = 150.0) -> Process:
        """``name``'s SuperNode started again on its machine with its key, once it can be:
        the SuperLink refuses to activate a node it still counts online, as a SIGKILLed
        node stays until its heartbeat lapses (flwr 1.41: 2 x 30 s after the last one), so
        an attempt that exits refused is followed by another, until one has its node id."""
        machine, deadline = self.root / name, time.monotonic() + timeout
        for attempt in range(1, 1000):
            args = self.supernode_args(node_config, key)
            process = start(f"{name}-restart{attempt}", args, machine_env(machine), machine, self.root)
            self.processes.append(process)
            try:
                process.wait_for("SuperNode ID:", timeout=max(deadline - time.monotonic(), 1.0))
                return process
            except RuntimeError:  # refused: the node is still online at the SuperLink
                if time.monotonic() > deadline:
                    raise
                time.sleep(2.0)
        raise AssertionError("unreachable")

    def start_supernodes(self, node_configs: dict[str, str], keys: dict[str, Path] | None = None) -> list[Process]:
        """SuperNodes started side by side, once each has its node id from the SuperLink."""
        nodes = [self.start_supernode(name, config, (keys or {}).get(name)) for name, config in node_configs.items()]
        for node in nodes:
            node.wait_for("SuperNode ID:")
        return nodes

    def _connect_user(self) -> None:
        """The user's $FLWR_HOME/config.toml: this SuperLink as the default connection."""
        security = "insecure = true" if self.tls is None else f'root-certificates = "{self.tls.ca}"'
        flwr_home = self.root / "user" / ".flwr"
        flwr_home.mkdir(parents=True, exist_ok=True)
        (flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self.port}"\n{security}\n'
        )

    def flwr(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """The flwr CLI on the user's machine."""
        user = self.root / "user"
        return subprocess.run(
            [str(BIN / "flwr"), *args],
            cwd=user,
            env=machine_env(user),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def submit(self, app: Path, **run_config: str) -> int:
        """``flwr run <app> fedsparse``; returns the run id."""
        pyproject = tomllib.loads((app / "pyproject.toml").read_text())
        # flwr 1.41 rewrites a pyproject.toml holding [tool.flwr.federations] (it moves the
        # table to the user's config): never let a test edit the working tree.
        assert "federations" not in pyproject["tool"]["flwr"], f"{app}/pyproject.toml has [tool.flwr.federations]"
        overrides = " ".join(f'{key}="{value}"' for key, value in run_config.items())
        result = self.flwr(
            "run", str(app), CONNECTION, *(["--run-config", overrides] if overrides else []), "--format", "json"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        payload = json.loads(result.stdout)
        assert payload["success"], payload
        return int(payload["run-id"])

    def status(self, run_id: int) -> dict[str, object]:
        """The run as ``flwr ls --run-id`` shows it (``status``: e.g. ``finished:completed``)."""
        result = self.flwr("ls", CONNECTION, "--run-id", str(run_id), "--format", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        return dict(json.loads(result.stdout)["runs"][0])

    def wait_finished(self, run_id: int, timeout: float) -> dict[str, object]:
        """Until the run's ServerApp task has finished (the SuperLink logs it), bounded."""
        deadline = time.monotonic() + timeout
        finished = f"of run {run_id}"
        while not any(
            "Finished task" in line and line.rstrip().endswith(finished) for line in self.superlink.log().splitlines()
        ):
            assert self.superlink.running(), self.superlink.log()[-3000:]
            assert time.monotonic() < deadline, f"run {run_id} did not finish in {timeout:.0f} s"
            time.sleep(0.5)
        return self.status(run_id)

    def run_log(self, run_id: int) -> str:
        """The run's ServerApp output, as ``flwr log --show`` prints it."""
        return self.flwr("log", str(run_id), CONNECTION, "--show").stdout

    def run_dir(self, out: str, run_id: int) -> Path:
        return self.runs_root / out / str(run_id)

    def close(self) -> None:
        """Stop every process (and its descendants) at once: SIGTERM, then SIGKILL."""
        stop_all(self.processes)


@dataclass
class LocalSimulation:
    """What ``flwr run .`` does with no SuperLink of one's own, from a user's machine
    under ``root``: the flwr CLI starts Flower's local SuperLink in simulation mode,
    detached, and leaves it running for the next run. Its ports are free ones
    (``FLWR_LOCAL_*_PORT``) so that a test's SuperLink is its own, and it is started
    with runtime dependency installation off, as docs/deployment.md says to start it."""

    root: Path
    http_port: int = field(default_factory=free_port)
    control_port: int = field(default_factory=free_port)

    @property
    def runs_root(self) -> Path:
        return self.root / "results"

    def env(self) -> dict[str, str]:
        return machine_env(
            self.root / "user",
            FEDSPARSE_RUNS_ROOT=str(self.runs_root),
            FLWR_LOCAL_SUPERLINK_HTTP_API_PORT=str(self.http_port),
            FLWR_LOCAL_CONTROL_API_PORT=str(self.control_port),
            FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        )

    def flwr(self, app: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """The flwr CLI, run in the app's folder (``flwr run .``)."""
        return subprocess.run(
            [str(BIN / "flwr"), *args],
            cwd=app,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_finished(self, app: Path, run_id: int, timeout: float) -> dict[str, object]:
        """The run as ``flwr ls --run-id`` shows it once its status is ``finished:*``, bounded."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.flwr(app, "ls", "--run-id", str(run_id), "--format", "json")
            assert result.returncode == 0, result.stdout + result.stderr
            run = dict(json.loads(result.stdout)["runs"][0])
            if str(run["status"]).startswith("finished"):
                return run
            assert time.monotonic() < deadline, f"run {run_id} did not finish in {timeout:.0f} s: {run}"
            time.sleep(1.0)

    def superlinks(self) -> list[psutil.Process]:
        """The local SuperLink the CLI started (found by its port), with its descendants."""
        port = str(self.http_port)
        found = []
        for process in psutil.process_iter(["cmdline"]):
            line = process.info["cmdline"] or []
            if any(part.endswith("flower-superlink") for part in line) and port in line:
                with suppress(psutil.NoSuchProcess):
                    found += [process, *process.children(recursive=True)]
        return _living(found)

    def close(self) -> list[psutil.Process]:
        """Stop the local SuperLink and everything under it (SuperExec, the simulation,
        Ray); the processes still alive after SIGTERM and SIGKILL (none, normally)."""
        survivors = _signal_and_wait(self.superlinks(), "terminate", GRACE_SECONDS)
        return _signal_and_wait(survivors, "kill", GRACE_SECONDS)
