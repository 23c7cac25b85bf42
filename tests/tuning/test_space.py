"""Search spaces declared beside the parameters, ``tune.space`` overrides, and the
checks ``fedsparse tune`` makes before any trial runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from pydantic import BaseModel, Field, ValidationError

from fedsparse.config import ConfigError
from fedsparse.tuning.plan import TUNING_SEED_OFFSET, plan_tune
from fedsparse.tuning.space import KnobSpec, declared_knobs, space_for, tunable

from ..conftest import REPO

QUICKSTART = REPO / "configs" / "quickstart.yaml"


def test_a_field_declares_its_range_and_a_plugin_schema_gets_it_for_free() -> None:
    class PluginParams(BaseModel):
        beta: float = Field(0.5, json_schema_extra=tunable(0.1, 0.9))
        steps: int = Field(3, json_schema_extra=tunable(1, 8, log=True))
        fixed: float = 1.0

    knobs = {k.path: k for k in declared_knobs(PluginParams, "strategy.mine")}
    assert set(knobs) == {"strategy.mine.beta", "strategy.mine.steps"}
    assert knobs["strategy.mine.beta"].distribution() == FloatDistribution(0.1, 0.9)
    assert knobs["strategy.mine.steps"].distribution() == IntDistribution(1, 8, log=True)


def test_a_strategy_space_is_the_shared_knobs_plus_its_own_with_overrides() -> None:
    assert [k.path for k in space_for("fedavg")] == ["federation.local_epochs", "federation.lr", "federation.momentum"]
    assert "strategy.fedprox.mu" in [k.path for k in space_for("fedprox")]
    space = space_for(
        "fedprox",
        {
            "federation.lr": KnobSpec(low=0.01, high=0.1, log=True),
            "federation.momentum": None,
            "federation.batch_size": KnobSpec(choices=[16, 32]),
            "strategy.fedadam.eta": KnobSpec(low=0.01, high=0.1),  # another strategy's: ignored here
        },
    )
    knobs = {k.path: k for k in space}
    assert set(knobs) == {"federation.local_epochs", "federation.lr", "federation.batch_size", "strategy.fedprox.mu"}
    assert knobs["federation.lr"].describe() == "log-uniform [0.01, 0.1]"
    assert knobs["federation.local_epochs"].integer


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"low": 0.3, "high": 0.1}, "must be below high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "log range needs low > 0"),
        ({"low": 0.1, "high": 1.0, "choices": [1]}, "either choices or low/high"),
        ({"low": 0.1}, "give low and high"),
    ],
)
def test_a_bad_range_is_refused_with_its_reason(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KnobSpec.model_validate(spec)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(QUICKSTART.read_text() + text)
    return path


def test_tune_takes_its_defaults_from_the_yaml_and_keeps_tuning_seeds_apart(tmp_path: Path) -> None:
    config = _write(tmp_path, "compare: {strategies: [fedavg, fedprox]}\ntune: {trials: 4, seeds: 2}\n")
    plan = plan_tune(config, out=tmp_path / "out")
    assert plan.strategies == ["fedavg", "fedprox"] and plan.trials == 4
    assert plan.seeds == [TUNING_SEED_OFFSET, TUNING_SEED_OFFSET + 1]
    assert plan.raw["data"]["validation"] == 0.1  # defaulted: tuning selects by validation
    cfg = plan.trial_config("fedprox", {"strategy.fedprox.mu": 0.5}, plan.seeds[0])
    assert cfg.strategy_params().mu == 0.5
    assert cfg.federation.evaluate_test is False  # trial runs never evaluate on the test split
    assert plan.baseline("fedprox") == {
        "federation.local_epochs": 2,
        "federation.lr": 0.05,
        "federation.momentum": 0.9,
        "strategy.fedprox.mu": 0.01,
    }


def test_every_fault_is_named_before_any_trial_runs(tmp_path: Path) -> None:
    config = _write(
        tmp_path, "tune:\n  space:\n    federation.no_such_knob: {low: 1, high: 2}\n    strategy.fedprox.mu: null\n"
    )
    with pytest.raises(ConfigError) as caught:
        plan_tune(config, ["data.validation=0"], strategies=["fedavg", "nope"], trials=0)
    problems = "\n".join(caught.value.problems)
    assert "unknown strategy 'nope'" in problems
    assert "data.validation: tuning selects by validation accuracy" in problems
    assert "--trials: must be >= 1" in problems
    with pytest.raises(ConfigError, match=r"tune.space: federation.no_such_knob \(fedavg\)"):
        plan_tune(config, strategies=["fedavg"])
