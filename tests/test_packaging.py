"""The package as a user gets it: the wheel, installed into a fresh environment.

- ``pyproject.toml`` lists every package of the source tree: every folder with an
  ``__init__.py`` under a ``[tool.setuptools.package-dir]`` folder (``fedsparse/``, and
  ``strategies/`` and ``clients/``, which become ``fedsparse.strategies`` and
  ``fedsparse.clients``).
- The wheel holds every module of those packages, nothing else, and the Apache-2.0
  LICENSE; its default requirements do not bring Ray.
- End to end (marker ``e2e``, run by default): a virtual environment outside the
  repository gets torch as ``scripts/setup.sh`` installs it and the wheel without
  extras, which is an edge device's install. There the ClientApp imports, Ray is absent,
  the quickstart runs on the inline engine from a folder outside the repository, asking
  for the Ray engine is one config error naming the extra, and the ``simulation`` extra
  resolves to Ray while keeping the installed torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO

# what a build reads: the project table, its readme and license, the package folders
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE")
INSTALL_TIMEOUT = 1200


def setuptools_table() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def source_packages() -> dict[str, Path]:
    """Every package of the source tree by its installed name, with its folder."""
    packages: dict[str, Path] = {}
    for name, folder in setuptools_table()["package-dir"].items():
        root = REPO / folder
        for init in sorted(root.rglob("__init__.py")):
            relative = init.parent.relative_to(root).parts
            if "__pycache__" not in relative:
                packages[".".join((name, *relative))] = init.parent
    return packages


def source_modules() -> set[str]:
    """The wheel path of every module of every package (``strategies/fedavg.py`` →
    ``fedsparse/strategies/fedavg.py``)."""
    return {
        "/".join((*name.split("."), module.name))
        for name, folder in source_packages().items()
        for module in folder.glob("*.py")
    }


def outside_env() -> dict[str, str]:
    """This process's environment without what points into the repository or its venv
    (the suite's processes may have put the repository on ``PYTHONPATH``)."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(command: list[str], cwd: Path, timeout: float = INSTALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``command``; a failure shows the tail of its output."""
    result = subprocess.run(command, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
    return result


def test_pyproject_lists_every_package_of_the_source_tree() -> None:
    listed = set(setuptools_table()["packages"])
    found = set(source_packages())
    assert found - listed == set(), "packages missing from [tool.setuptools] packages"
    assert listed - found == set(), "listed packages without an __init__.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built by pip from a copy of the build inputs (the checkout stays clean
    of build folders)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        shutil.copy2(REPO / name, source / name)
    for folder in set(setuptools_table()["package-dir"].values()):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)], cwd=source)
    (built,) = dist.glob("fedsparse-*.whl")
    return built


@pytest.mark.e2e
def test_wheel_holds_every_module_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        license_text = archive.read(f"{dist_info}/licenses/LICENSE").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    modules = {name for name in names if not name.startswith(f"{dist_info}/")}
    assert source_modules() - modules == set(), "modules missing from the wheel"
    assert modules - source_modules() == set(), "files in the wheel that are no module of the source tree"
    assert license_text == (REPO / "LICENSE").read_text()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    default = [line for line in requirements if "extra ==" not in line]
    assert not any("ray" in line or "[simulation]" in line for line in default), default
    assert 'Requires-Dist: flwr[simulation]<1.42,>=1.41; extra == "simulation"' in requirements


@pytest.fixture(scope="module")
def edge_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment outside the repository: pip upgraded, torch installed
    by ``scripts/install_torch.sh`` (as ``scripts/setup.sh`` does), then the wheel with
    no extra. Removed afterwards (it holds torch: gigabytes)."""
    venv = tmp_path_factory.mktemp("edge") / "venv"
    assert not venv.is_relative_to(REPO)
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent)
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], cwd=venv.parent)
    run(["bash", str(REPO / "scripts" / "install_torch.sh"), python], cwd=venv.parent)
    run([python, "-m", "pip", "install", "--quiet", str(wheel)], cwd=venv.parent)
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.e2e
def test_edge_install_has_the_client_app_and_no_ray(edge_venv: Path) -> None:
    probe = (
        "import importlib.metadata, fedsparse, fedsparse.clients.app, fedsparse.strategies\n"
        "print(fedsparse.__file__)\n"
        "names = {d.metadata['Name'].lower() for d in importlib.metadata.distributions()}\n"
        "print('ray' in names)\n"
    )
    location, has_ray = run([str(edge_venv / "bin" / "python"), "-c", probe], cwd=edge_venv.parent).stdout.split()
    assert Path(location).is_relative_to(edge_venv), "fedsparse imported from elsewhere than the fresh environment"
    assert has_ray == "False"


@pytest.mark.e2e
def test_edge_install_runs_the_quickstart_inline(edge_venv: Path) -> None:
    work = edge_venv.parent / "work"
    work.mkdir()
    config = work / "quickstart.yaml"
    shutil.copy2(REPO / "configs" / "quickstart.yaml", config)
    fedsparse = str(edge_venv / "bin" / "fedsparse")
    run_dir = work / "run"
    overrides = ["--set", "federation.rounds=2", "--set", "output.plots=false"]
    run([fedsparse, "run", str(config), *overrides, "--out", str(run_dir)], cwd=work)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rounds_completed"] == 2
    assert summary["final_accuracy"] > 0

    refused = subprocess.run(
        [fedsparse, "validate", str(config), "--set", "engine.backend=ray"],
        cwd=work,
        env=outside_env(),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        "error: engine.backend: ray needs Ray, which is not installed: pip install 'fedsparse[simulation]'"
    ]


@pytest.mark.e2e
def test_simulation_extra_brings_ray_and_keeps_torch(edge_venv: Path, wheel: Path) -> None:
    report = edge_venv.parent / "report.json"
    python = str(edge_venv / "bin" / "python")
    run(
        [python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report), f"{wheel}[simulation]"],
        cwd=edge_venv.parent,
    )
    added = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "ray" in added
    assert "torch" not in added, "the simulation extra would replace the installed torch"
