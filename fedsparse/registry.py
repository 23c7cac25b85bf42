"""A name → object registry, so that datasets, models, strategies, partitioners and
client learners are looked up by the names a YAML file uses instead of through if-chains.

Entries come from three places, all treated alike once registered:

* the package's own modules (``package``: every module of it is imported before the first
  lookup, so a built-in entry is one module dropped into that package);
* installed plugin packages, through the Python entry points of ``entry_point_group``
  (e.g. ``fedsparse.strategies``): an entry point naming a module is imported (it
  registers what it likes as it is imported), one naming any other object is registered
  under the entry point's name;
* any module imported at run time that calls :meth:`Registry.add` (a config's
  ``plugins:``, ``--plugin``, a notebook cell).

Registering a name again replaces the entry with a warning, so re-running a notebook cell
or a plugin overriding a built-in does not fail.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provenance:
    """Where an entry was registered: its module, the distribution that installed that
    module ("" where none did, e.g. a script or notebook), and a one-line summary."""

    module: str
    distribution: str
    summary: str


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str:
    """The installed distribution providing the top-level package of ``module``, or ""."""
    return ", ".join(dict.fromkeys(_distributions().get(module.partition(".")[0], [])))


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())
    head, dot, _ = paragraph.partition(". ")
    return head + "." if dot else paragraph


def _summary(entry: object, module: str) -> str:
    """The entry's ``summary``, else its own docstring's first sentence (a function's, a
    class's but not one it inherits), else its module's."""
    summary = getattr(entry, "summary", "")
    if summary:
        return str(summary)
    own = (
        entry.__doc__
        if isinstance(entry, types.FunctionType)
        else entry.__dict__.get("__doc__")
        if isinstance(entry, type)
        else None
    )
    source = sys.modules.get(module)
    return first_sentence(own or (source.__doc__ if source is not None else None))


class Registry(Generic[T]):
    """Maps names to entries; unknown names raise a KeyError that lists the known ones."""

    def __init__(self, kind: str, package: str | None = None, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._modules: dict[str, str] = {}
        self._package = package
        self._loaded = False
        self._loading = False
        self._load_lock = threading.RLock()

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("cnn")``."""

        def add(entry: T) -> T:
            self.add(name, entry, module=getattr(entry, "__module__", None))
            return entry

        return add

    def add(self, name: str, entry: T, *, module: str | None = None) -> None:
        """Register ``entry`` as ``name``; an existing entry of that name is replaced with a
        warning. ``module``: where it comes from (default: the calling module)."""
        if module is None:
            module = sys._getframe(1).f_globals.get("__name__", "")
        if name in self._entries and self._entries[name] == entry:
            return  # the same entry again (a config validated twice declares its dataset twice)
        if name in self._entries:
            log.warning("%s %r registered again (by %s): the new entry replaces the old one", self.kind, name, module)
        self._entries[name] = entry
        self._modules[name] = module

    def _load(self) -> None:
        """Import the package's modules and the installed plugins' entry points once. A
        module that fails to import fails every lookup (with its own error), rather than
        leaving its entries silently out. Thread-safe: another thread's lookup waits until
        every entry is in."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded or self._loading:
                return
            self._loading = True  # a module's own lookups while it is imported see what is there
            try:
                if self._package is not None:
                    imported = importlib.import_module(self._package)
                    for module in pkgutil.iter_modules(imported.__path__):
                        importlib.import_module(f"{self._package}.{module.name}")
                if self.entry_point_group is not None:
                    for point in importlib.metadata.entry_points(group=self.entry_point_group):
                        self._add_entry_point(point)
                self._loaded = True
            finally:
                self._loading = False

    def _add_entry_point(self, point: importlib.metadata.EntryPoint) -> None:
        try:
            loaded = point.load()
        except Exception as error:
            raise ImportError(
                f"plugin entry point {point.name!r} = {point.value!r} (group {point.group}) failed to load: {error}"
            ) from error
        if not isinstance(loaded, types.ModuleType):
            self.add(point.name, loaded, module=point.module)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = self.names()
            hint = did_you_mean(name, known)
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(known)}{hint}") from None

    def validate_name(self, name: str) -> str:
        """``name`` if registered, else a ValueError for a config field's error message
        (the registered names, and the closest to ``name`` if one is close)."""
        if name not in self:
            raise ValueError(f"must be one of {self.names()} (got {name!r}){did_you_mean(name, self.names())}")
        return name

    def provenance(self, name: str) -> Provenance:
        """Where ``name`` was registered (KeyError for an unknown name)."""
        entry, module = self.get(name), self._modules[name]
        return Provenance(module, distribution_of(module), _summary(entry, module))

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'rounds'?`` when one of ``choices`` is close to ``word`` (difflib's
    similarity of at least 0.6), else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def registries() -> dict[str, Registry[Any]]:
    """Every registry a config names entries of, by heading (``fedsparse list``)."""
    from fedsparse.catalog import STRATEGIES
    from fedsparse.data.partition import PARTITIONERS
    from fedsparse.data.sources import DATASETS
    from fedsparse.learners import LEARNERS
    from fedsparse.models import MODELS

    return {
        "strategies": STRATEGIES,
        "client learners": LEARNERS,
        "models": MODELS,
        "datasets": DATASETS,
        "partitioners": PARTITIONERS,
    }
