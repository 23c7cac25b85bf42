"""A comparison's runs as Ray tasks on the cluster at ``engine.ray_address``.

Each planned run is one task, scheduled by Ray wherever the cluster has the run's
``engine.client_resources`` free (spread over the nodes), ``jobs`` at a time. Inside the
task the run goes through :func:`fedsparse.runner.run_experiment` on the inline engine,
whose results equal the Ray engine's (same seeds, bytes and metrics), in a temporary
folder on that node; its files travel back as bytes and are written into the run's own
folder here, its ``config.yaml`` the planned one. An interrupted run's folder travels
out first, so it resumes from its checkpoint. Every node needs fedsparse, the run's
plugins and the run's data (``FEDSPARSE_DATA``) installed, as for the Ray engine.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from fedsparse.config import ExperimentConfig, dump_config, validate_config
from fedsparse.ray_grid import ray_init_args
from fedsparse.results import CONFIG_FILE

Files = dict[str, bytes]  # a run folder: path relative to it → content


def folder_files(folder: Path) -> Files:
    """Every file under ``folder`` (none if it does not exist)."""
    if not folder.is_dir():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def write_files(folder: Path, files: Files) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run_on_node(resolved_config: str, files: Files, resume: bool) -> tuple[str, float, Files]:
    """One run in a Ray task: its summary (JSON), seconds and the run folder it left."""
    from fedsparse.runner import run_experiment

    planned = validate_config(yaml.safe_load(resolved_config))
    engine = planned.engine.model_copy(update={"backend": "inline", "ray_address": None})
    here = planned.model_copy(update={"engine": engine})
    with tempfile.TemporaryDirectory(prefix="fedsparse-run-") as temp:
        run_dir = Path(temp) / "run"
        write_files(run_dir, files)
        started = time.perf_counter()
        summary = run_experiment(here, run_dir, resume=resume)
        seconds = time.perf_counter() - started
        (run_dir / CONFIG_FILE).write_text(resolved_config)
        return json.dumps(summary), seconds, folder_files(run_dir)


class ClusterRun(NamedTuple):
    cfg: ExperimentConfig
    run_dir: Path
    resume: bool  # continue from the checkpoint in run_dir
    label: str  # names the run in an error


@functools.cache
def _remote_run_on_node() -> Any:
    import ray

    return ray.remote(run_on_node)


def submit(run: ClusterRun) -> Any:
    """Start ``run`` as a Ray task on the cluster this process is attached to, with its
    ``engine.client_resources``, spread over the nodes; its ``ObjectRef``."""
    resources = run.cfg.engine.client_resources
    task = _remote_run_on_node().options(
        num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, scheduling_strategy="SPREAD"
    )
    files = folder_files(run.run_dir) if run.resume else {}
    return task.remote(dump_config(run.cfg), files, run.resume)


def collect(run: ClusterRun, ref: Any) -> tuple[dict[str, Any], float]:
    """Wait for ``run``'s task ``ref``, write the folder it left into ``run.run_dir``;
    its summary and seconds. A run's own failure raises
    :class:`fedsparse.runner.RunFailed` naming the run."""
    import ray

    from fedsparse.runner import RunFailed

    try:
        summary, seconds, files = ray.get(ref)
    except RunFailed as error:  # Ray re-raises a task's exception as a subclass of its type
        raise RunFailed(f"{run.label}: {getattr(error, 'cause', error)}") from None
    write_files(run.run_dir, files)
    return json.loads(summary), seconds


@contextmanager
def attached(address: str) -> Iterator[None]:
    """This process attached to the Ray cluster at ``address`` for the block."""
    import ray

    ray.init(**ray_init_args(address))
    try:
        yield
    finally:
        ray.shutdown()


def run_on_cluster(
    address: str, runs: list[ClusterRun], jobs: int, on_done: Callable[[int, dict[str, Any], float], None]
) -> None:
    """Run each of ``runs`` as a Ray task on the cluster at ``address``, at most ``jobs``
    at once; ``on_done(index, summary, seconds)`` as each finishes, after its folder is
    written. A run that fails stops the others (a finished run's folder stays; one still
    running starts over next time, its checkpoints were on its node) and raises here, as
    :func:`collect` does."""
    import ray

    with attached(address):
        waiting = list(enumerate(runs))
        in_flight: dict[Any, int] = {}
        while waiting or in_flight:
            while waiting and len(in_flight) < jobs:
                index, run = waiting.pop(0)
                in_flight[submit(run)] = index
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            index = in_flight.pop(ready)
            on_done(index, *collect(runs[index], ready))
