"""The structure the protocol module exists for, checked on the source itself.

- Outside ``fedsparse/protocol.py`` no module spells a wire key as a string literal
  (the few words that also name something else are listed with what they name).
- ``clients/`` never imports ``strategies/``; the core library imports no strategy and
  no client learner by module.
- A SuperNode importing the ClientApp (and every learner) loads no server code.
- No class over 200 lines, no function over 60, in the library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator

from fedsparse import protocol

from .conftest import REPO

LIBRARY = ("fedsparse", "clients", "strategies")
KEYS = {value for name, value in vars(protocol).items() if name.isupper() and isinstance(value, str)}
# (module, literal): the same word naming something that is not a wire key
OTHER_MEANINGS = {
    ("fedsparse/cli.py", "fedsparse"): "the program's name",
    ("fedsparse/cli.py", "config"): "the command line's positional argument",
    ("fedsparse/checkpoint.py", "fedsparse"): "the safetensors metadata key of a checkpoint file",
    ("fedsparse/comparison/plan.py", "fedsparse"): "the command echoed in a results page",
    ("fedsparse/tuning/plan.py", "fedsparse"): "the command echoed in a results page",
    ("fedsparse/tuning/plan.py", "config"): "a field of a study's fingerprint",
    ("fedsparse/callbacks/trackers.py", "fedsparse"): "the default MLflow experiment name",
    ("fedsparse/data/root.py", "fedsparse"): "the default data root's folder name",
    ("fedsparse/runlog.py", "fedsparse"): "the library's logger name",
    ("fedsparse/config.py", "bitwidth"): "the YAML profile field",
    ("fedsparse/rows.py", "bitwidth"): "the metrics-row column",
    ("fedsparse/callbacks/evaluation.py", "task"): "the metrics-row column",
    ("fedsparse/decompose/net.py", "knowledge"): "a field of a decomposed net's structure",
}


def modules(*roots: str) -> Iterator[tuple[str, ast.Module]]:
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            yield str(path.relative_to(REPO)), ast.parse(path.read_text())


def docstrings(tree: ast.Module) -> set[int]:
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_module_but_the_protocol_spells_a_wire_key() -> None:
    spelled = []
    for path, tree in modules(*LIBRARY):
        if path == "fedsparse/protocol.py":
            continue
        skip = docstrings(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and node.value in KEYS and id(node) not in skip
            if literal and (path, node.value) not in OTHER_MEANINGS:
                spelled.append(f"{path}:{node.lineno}: {node.value!r}")
    assert not spelled, "use the fedsparse.protocol constant instead:\n" + "\n".join(spelled)


def test_clients_never_import_strategies_and_the_core_imports_neither() -> None:
    wrong = []
    for path, tree in modules(*LIBRARY):
        targets = {name for name in imported(tree) if name.startswith(("fedsparse.strategies.", "fedsparse.clients."))}
        if path.startswith("clients/"):
            wrong += [f"{path} imports {name}" for name in targets if name.startswith("fedsparse.strategies.")]
        elif path.startswith("fedsparse/") and path != "fedsparse/engine.py":  # engine: the default ClientApp
            wrong += [f"{path} imports {name}" for name in targets]
    assert not wrong, "\n".join(wrong)


def test_a_supernode_importing_the_client_app_loads_no_server_code() -> None:
    probe = (
        "import sys\n"
        "from fedsparse.clients.app import app\n"
        "from fedsparse.clients.learner import LEARNERS\n"
        "assert {'plain', 'fedprox', 'fedpaq', 'local', 'fedweit'} <= set(LEARNERS.names())\n"
        "server = [m for m in sys.modules if m.startswith(('fedsparse.strategies', 'fedsparse.server',"
        " 'fedsparse.catalog', 'fedsparse.config', 'ray'))]\n"
        "print(','.join(sorted(server)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"the ClientApp pulls in server code: {result.stdout}"


def test_no_class_over_200_lines_and_no_function_over_60() -> None:
    long = []
    for path, tree in modules(*LIBRARY):
        for node in ast.walk(tree):
            size = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, ast.ClassDef) and size > 200:
                long.append(f"{path}: class {node.name} has {size} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 60:
                long.append(f"{path}: {node.name}() has {size} lines")
    assert not long, "\n".join(long)
