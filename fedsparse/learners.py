"""The client learners a strategy may name (``Strategy.learner``): name → a subclass of
:class:`fedsparse.clients.learner.Learner`.

Every module of ``fedsparse.clients`` is imported before the first lookup, and installed
plugins' ``fedsparse.learners`` entry points with it. The registry lives here, in the
core, so that ``fedsparse list`` can describe learners without importing client code;
``fedsparse.clients.learner`` exposes it typed.
"""

from __future__ import annotations

from typing import Any

from fedsparse.registry import Registry

LEARNERS: Registry[Any] = Registry(
    "client learner", package="fedsparse.clients", entry_point_group="fedsparse.learners"
)
