"""What a run on real Flower infrastructure may read and write, and where.

Under ``flwr run`` the run config comes from whoever may submit runs to the SuperLink,
and the ServerApp runs in a process started in the SuperLink's working directory, so a
relative path would resolve against wherever the operator happened to start it and
``../../etc/passwd`` against anything. Both paths the deployed ServerApp takes from the
run config are therefore confined:

- ``config`` (the experiment YAML) is resolved inside the installed app directory, the
  folder Flower unpacked the FAB into (``$FLWR_HOME/apps/<publisher>.<name>.<version>.<hash>``);
- ``out`` is resolved inside the output root the SuperLink operator chooses with
  ``FEDSPARSE_RUNS_ROOT`` (default: ``runs`` under the SuperLink's working directory),
  and every run writes into its own ``<out>/<run id>`` folder there.

A path that resolves outside its root (``..``, an absolute path elsewhere, a symlink
pointing out) is refused before anything is read or written.

Under Flower's local simulation (``flwr run .`` with no SuperLink of one's own) the
federation is the simulation's SuperNodes, as many as its ``num-supernodes`` (Flower's
default: 2), and the experiment takes its client count from them
(:func:`fitted_to_simulation`).

A fedsparse ClientApp under a server that sends no fedsparse task (Flower's own
strategies send only ``arrays`` and ``config``) takes its experiment from the run config
instead: the ``[tool.flwr.app.config.fedsparse]`` table, which Flower flattens into keys
such as ``fedsparse.data.dataset`` (:func:`experiment_from_run_config`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import UserConfig

from fedsparse import protocol
from fedsparse.compat import Run, app_dir
from fedsparse.config import ConfigError, ExperimentConfig, validate_config

log = logging.getLogger(__name__)

RUNS_ROOT_ENV = "FEDSPARSE_RUNS_ROOT"
DEFAULT_RUNS_ROOT = "runs"
CONFIG_KEY = protocol.RUN_CONFIG_EXPERIMENT
OUT_KEY = protocol.RUN_CONFIG_OUT
EXPERIMENT_TABLE = protocol.RUN_CONFIG_TABLE


class UnsafePathError(ValueError):
    """A run-config path resolves outside the folder it is confined to."""


def confined(root: Path, value: str, key: str) -> Path:
    """``value`` resolved inside ``root`` (symlinks followed), or :class:`UnsafePathError`."""
    base = root.resolve()
    path = (base / value).resolve()
    if not path.is_relative_to(base):
        raise UnsafePathError(f"run config {key}={value!r} resolves to {path}, outside {base}; refused")
    return path


def runs_root() -> Path:
    """The output root: ``$FEDSPARSE_RUNS_ROOT``, else ``runs`` in the working directory."""
    return Path(os.environ.get(RUNS_ROOT_ENV) or DEFAULT_RUNS_ROOT)


@dataclass(frozen=True)
class DeployedPaths:
    config: Path
    run_dir: Path


def deployed_paths(run: Run, run_config: UserConfig) -> DeployedPaths:
    """The experiment YAML and the run folder a deployed run may use; refuses escapes."""
    if CONFIG_KEY not in run_config:
        raise UnsafePathError(f"run config has no {CONFIG_KEY!r} key naming the experiment YAML")
    config = confined(app_dir(run), str(run_config[CONFIG_KEY]), CONFIG_KEY)
    out = confined(runs_root(), str(run_config.get(OUT_KEY, ".")), OUT_KEY)
    return DeployedPaths(config, out / str(run.run_id))


def fitted_to_simulation(cfg: ExperimentConfig, supernodes: int | None) -> ExperimentConfig:
    """``cfg`` with one client per SuperNode of Flower's local simulation (``supernodes``;
    None: not a simulation, ``cfg`` as it is): ``federation.num_clients`` is their number,
    and ``clients_per_round`` and ``min_replies`` are lowered to it where they exceed it.
    The change is logged as one warning line; a config that cannot take it (a partition
    needing more clients) raises :class:`ConfigError` with one line naming the fix."""
    fed = cfg.federation
    if supernodes is None or supernodes == fed.num_clients:
        return cfg
    per_round = min(fed.clients_per_round, supernodes)
    raw = cfg.model_dump(mode="json")
    raw["federation"].update(
        num_clients=supernodes, clients_per_round=per_round, min_replies=min(fed.min_replies, per_round)
    )
    fix = f"run with --federation-config num-supernodes={fed.num_clients} to keep the config's count"
    try:
        fitted = validate_config(raw)
    except ConfigError as error:
        raise ConfigError(
            [f"{supernodes} simulated SuperNode(s) cannot be the config's clients ({'; '.join(error.problems)}); {fix}"]
        ) from None
    log.warning(
        "Flower's simulation has %d SuperNode(s): federation.num_clients %d -> %d, clients_per_round %d -> %d, "
        "min_replies %d -> %d; %s",
        supernodes,
        fed.num_clients,
        supernodes,
        fed.clients_per_round,
        per_round,
        fed.min_replies,
        fitted.federation.min_replies,
        fix,
    )
    return fitted


def experiment_from_run_config(run_config: UserConfig) -> ExperimentConfig:
    """The experiment spelled out in the run config's ``fedsparse`` table, validated like
    a YAML file (flattened keys ``fedsparse.a.b`` become ``a: {b: ...}``)."""
    prefix = EXPERIMENT_TABLE + "."
    raw: dict[str, Any] = {}
    for key, value in run_config.items():
        if not key.startswith(prefix):
            continue
        *sections, leaf = key[len(prefix) :].split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    if not raw:
        raise ConfigError(
            [
                "run config: the message carries no fedsparse task and there is no "
                f"[tool.flwr.app.config.{EXPERIMENT_TABLE}] table"
            ]
        )
    return validate_config(raw)
