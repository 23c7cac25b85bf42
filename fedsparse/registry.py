"""A name → object registry, so that datasets, models, strategies and client learners
are looked up by the names a YAML file uses instead of through if-chains."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; unknown names raise a KeyError that lists the known ones.

    ``package``: a package whose every module is imported before the first lookup, so
    that an entry is one module dropped into that package, registered as it is imported.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._package = package
        self._loading = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("cnn")``."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def _load(self) -> None:
        """Import every module of the package once; a module that fails to import fails
        every lookup (with its own error), rather than leaving its entries silently out."""
        if self._package is None or self._loading:
            return
        self._loading = True  # a module's own lookups while it is imported see what is there
        try:
            imported = importlib.import_module(self._package)
            for module in pkgutil.iter_modules(imported.__path__):
                importlib.import_module(f"{self._package}.{module.name}")
            self._package = None
        finally:
            self._loading = False

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
