"""Where a deployed run may read and write (fedsparse.deployment), without processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.supercore.run import Run

from fedsparse.config import ConfigError
from fedsparse.deployment import (
    RUNS_ROOT_ENV,
    UnsafePathError,
    confined,
    deployed_paths,
    experiment_from_run_config,
    runs_root,
)


def test_paths_inside_the_root_resolve(tmp_path: Path) -> None:
    assert confined(tmp_path, "configs/a.yaml", "config") == (tmp_path / "configs" / "a.yaml").resolve()
    assert confined(tmp_path, str(tmp_path / "b"), "out") == (tmp_path / "b").resolve()
    assert confined(tmp_path, "a/../b", "out") == (tmp_path / "b").resolve()


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "configs/../../x", "/"])
def test_paths_escaping_the_root_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(UnsafePathError, match="outside"):
        confined(tmp_path / "app", value, "config")


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        confined(root, "link/secret.yaml", "config")


def test_deployed_paths_use_the_installed_app_and_the_runs_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr"))
    monkeypatch.setenv(RUNS_ROOT_ENV, str(tmp_path / "results"))
    run = Run.create_empty(run_id=42)
    run.fab_id, run.fab_version, run.fab_hash = "fedsparse/fedsparse", "0.1.0", "ab" * 32
    paths = deployed_paths(run, {"config": "configs/deployment.yaml", "out": "deployment"})
    app = tmp_path / "flwr" / "apps" / "fedsparse.fedsparse.0.1.0.abababab"
    assert paths.config == (app / "configs" / "deployment.yaml").resolve()
    assert paths.run_dir == (tmp_path / "results" / "deployment" / "42").resolve()
    with pytest.raises(UnsafePathError):
        deployed_paths(run, {"config": "configs/deployment.yaml", "out": "../elsewhere"})
    with pytest.raises(UnsafePathError, match="no 'config' key"):
        deployed_paths(run, {"out": "deployment"})


def test_the_runs_root_defaults_to_runs_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUNS_ROOT_ENV, raising=False)
    assert runs_root() == Path("runs")


def test_an_experiment_spelled_out_in_the_run_config() -> None:
    cfg = experiment_from_run_config(
        {
            "num-server-rounds": 2,
            "fedsparse.data.dataset": "digits",
            "fedsparse.data.partition.method": "iid",
            "fedsparse.federation.num_clients": 2,
            "fedsparse.federation.clients_per_round": 2,
            "fedsparse.federation.lr": 0.1,
        }
    )
    assert (cfg.data.dataset, cfg.federation.num_clients, cfg.federation.lr) == ("digits", 2, 0.1)
    with pytest.raises(ConfigError, match="clients_per_round"):
        experiment_from_run_config({"fedsparse.federation.num_clients": 2})
    with pytest.raises(ConfigError, match="no fedsparse task"):
        experiment_from_run_config({"num-server-rounds": 2})
