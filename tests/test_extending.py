"""docs/extending.md shows the example algorithms' real files, verbatim; the examples
run on both engines in tests/test_engine.py like every other strategy."""

from __future__ import annotations

import re

from fedsparse.catalog import STRATEGIES
from fedsparse.clients.learner import LEARNERS

from .conftest import REPO

BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```(?:python|toml)\n(?P<code>.*?)```\n", re.DOTALL)


def test_the_guide_shows_each_example_file_as_it_is() -> None:
    shown = {m["path"]: m["code"] for m in BLOCK.finditer((REPO / "docs" / "extending.md").read_text())}
    plugin = "tests/plugin_package/"
    assert set(shown) == {
        "strategies/fedavg_momentum.py",
        "strategies/fedavg_clipped.py",
        "clients/fedavg_clipped.py",
        f"{plugin}pyproject.toml",
        f"{plugin}fedsparse_example_plugin/strategy.py",
        f"{plugin}fedsparse_example_plugin/stateful.py",
        f"{plugin}fedsparse_example_plugin/model.py",
        f"{plugin}fedsparse_example_plugin/data.py",
    }
    for path, code in shown.items():
        assert code == (REPO / path).read_text(), f"docs/extending.md shows an outdated {path}"


def test_the_examples_are_registered_by_their_files_alone() -> None:
    assert {"fedavg_momentum", "fedavg_clipped"} <= set(STRATEGIES.names())
    assert "clipped" in LEARNERS.names()
