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

import json
import tempfile
import time
from collections.abc import Callable
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


def run_on_cluster(
    address: str, runs: list[ClusterRun], jobs: int, on_done: Callable[[int, dict[str, Any], float], None]
) -> None:
    """Run each of ``runs`` as a Ray task on the cluster at ``address``, at most ``jobs``
    at once; ``on_done(index, summary, seconds)`` as each finishes, after its folder is
    written. A run that fails stops the others (a finished run's folder stays; one still
    running starts over next time, its checkpoints were on its node) and raises here:
    :class:`fedsparse.runner.RunFailed` naming the run for a run's own failure."""
    import ray

    from fedsparse.runner import RunFailed

    ray.init(**ray_init_args(address))
    try:
        task = ray.remote(run_on_node)
        waiting = list(enumerate(runs))
        in_flight: dict[Any, int] = {}
        while waiting or in_flight:
            while waiting and len(in_flight) < jobs:
                index, (cfg, run_dir, resume, _) = waiting.pop(0)
                resources = cfg.engine.client_resources
                options = task.options(
                    num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, scheduling_strategy="SPREAD"
                )
                files = folder_files(run_dir) if resume else {}
                in_flight[options.remote(dump_config(cfg), files, resume)] = index
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            index = in_flight.pop(ready)
            try:
                summary, seconds, files = ray.get(ready)
            except RunFailed as error:  # Ray re-raises a task's exception as a subclass of its type
                raise RunFailed(f"{runs[index].label}: {getattr(error, 'cause', error)}") from None
            write_files(runs[index].run_dir, files)
            on_done(index, json.loads(summary), seconds)
    finally:
        ray.shutdown()
