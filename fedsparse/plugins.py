"""Plugin modules: code outside fedsparse that registers strategies, client learners,
models or datasets as it is imported (:mod:`fedsparse.registry`).

Installed plugin packages are found through their entry points with no configuration.
A module that is merely importable (a file beside the config, a package not declaring
entry points) is named in the config's ``plugins:`` list or with ``--plugin``; the list is
part of the resolved config, so it travels to clients inside the client task
(:mod:`fedsparse.task`) and is imported there before the task is read: on the inline
engine, in every Ray actor and on deployed SuperNodes alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable


class PluginError(ImportError):
    """A plugin module could not be imported; ``problems`` holds one line per module."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def import_plugins(modules: Iterable[str]) -> None:
    """Import each module (once per process; importing again is a no-op)."""
    problems = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # a plugin's own failure, of any kind, is reported by name
            problems.append(f"plugins: cannot import {name!r}: {type(error).__name__}: {error}")
    if problems:
        raise PluginError(problems)
