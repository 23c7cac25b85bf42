"""Search spaces: which config values ``fedsparse tune`` may change, and over what range.

A value is *tunable* where its pydantic field declares a range next to its default::

    mu: float = Field(0.01, ge=0.0, json_schema_extra=tunable(low=1e-4, high=1.0, log=True))

The shared federation knobs (``federation.lr``, ``local_epochs``, ``momentum``) are
declared on :class:`~fedsparse.sections.TrainingConfig`; each strategy declares its own
on its parameter schema, so a plugin's strategy is tunable with no other edit. A
strategy's space is the shared knobs plus its own. ``tune.space`` in the YAML replaces
a knob's range (``federation.lr: {low: 0.01, high: 0.1, log: true}``), adds a knob the
schema does not declare, or drops one (``federation.momentum: null``); a key under
``strategy.<name>.`` applies to that strategy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

TUNE_KEY = "tune"  # the key of a field's json_schema_extra that holds its range
Choice = bool | int | float | str


def tunable(
    low: float | None = None, high: float | None = None, *, log: bool = False, choices: list[Choice] | None = None
) -> dict[str, Any]:
    """A field's ``json_schema_extra`` declaring its search range (or its choices)."""
    spec = KnobSpec(low=low, high=high, log=log, choices=choices)
    return {TUNE_KEY: spec.model_dump(exclude_none=True)}


class KnobSpec(BaseModel):
    """A range ``[low, high]`` (log-uniform where ``log``) or a list of ``choices``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Choice] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> KnobSpec:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (or choices)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


@dataclass(frozen=True)
class Knob:
    """One tunable config value: its dotted ``path`` (as ``--set`` takes it), its range,
    and whether it takes whole numbers."""

    path: str
    spec: KnobSpec
    integer: bool = False

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        spec = self.spec
        if spec.choices is not None:
            return CategoricalDistribution(spec.choices)
        assert spec.low is not None and spec.high is not None
        if self.integer:
            return IntDistribution(int(spec.low), int(spec.high), log=spec.log)
        return FloatDistribution(spec.low, spec.high, log=spec.log)

    def describe(self) -> str:
        """``log-uniform [0.001, 0.3]``, ``integers [1, 5]`` or ``one of 0, 0.9``."""
        spec = self.spec
        if spec.choices is not None:
            return "one of " + ", ".join(map(str, spec.choices))
        kind = "integers" if self.integer else "log-uniform" if spec.log else "uniform"
        return f"{kind}{' (log)' if self.integer and spec.log else ''} [{spec.low:g}, {spec.high:g}]"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (a config's own setting) lies in this knob's space."""
        spec = self.spec
        if spec.choices is not None:
            return value in spec.choices
        assert spec.low is not None and spec.high is not None
        return isinstance(value, int | float) and spec.low <= value <= spec.high


def _is_integer(annotation: Any) -> bool:
    return annotation is int


def declared_knobs(schema: type[BaseModel], prefix: str) -> list[Knob]:
    """The knobs ``schema``'s fields declare, their paths under ``prefix``."""
    knobs = []
    for name, field in schema.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, Mapping) and TUNE_KEY in extra:
            spec = KnobSpec.model_validate(extra[TUNE_KEY])
            knobs.append(Knob(f"{prefix}.{name}", spec, _is_integer(field.annotation)))
    return knobs


def shared_knobs() -> list[Knob]:
    """The federation knobs every strategy is tuned over."""
    from fedsparse.sections import TrainingConfig

    return declared_knobs(TrainingConfig, "federation")


def strategy_knobs(strategy: str) -> list[Knob]:
    """The knobs strategy ``strategy`` declares on its parameter schema."""
    from fedsparse.catalog import STRATEGIES

    return declared_knobs(STRATEGIES.get(strategy).params, f"strategy.{strategy}")


def _field_is_integer(path: str) -> bool:
    """Whether the config field at ``path`` (``federation.x`` or ``strategy.<name>.x``) takes ints."""
    from fedsparse.catalog import STRATEGIES
    from fedsparse.config import FederationConfig

    parts = path.split(".")
    schema: type[BaseModel] | None = None
    if parts[0] == "federation" and len(parts) == 2:
        schema = FederationConfig
    elif parts[0] == "strategy" and len(parts) == 3 and parts[1] in STRATEGIES:
        schema = STRATEGIES.get(parts[1]).params
    field = schema.model_fields.get(parts[-1]) if schema is not None else None
    return field is not None and _is_integer(field.annotation)


def space_for(strategy: str, overrides: Mapping[str, KnobSpec | None] | None = None) -> list[Knob]:
    """Strategy ``strategy``'s search space: the shared knobs and its own, with
    ``overrides`` (``tune.space``) applied; keys of other strategies' blocks are skipped."""
    knobs = {knob.path: knob for knob in [*shared_knobs(), *strategy_knobs(strategy)]}
    for path, spec in (overrides or {}).items():
        if path.startswith("strategy.") and not path.startswith(f"strategy.{strategy}."):
            continue
        if spec is None:
            knobs.pop(path, None)
        else:
            knobs[path] = Knob(path, spec, _field_is_integer(path))
    return list(knobs.values())


def value_at(raw: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in a raw (YAML-shaped) config; None where unset."""
    node: Any = raw
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node
