"""Both engines run the same apps: for a seed, the inline engine's results and bytes are
the Ray engine's, for every strategy, on a bit- and speed-heterogeneous federation
(float32, int8 and int4 devices at speeds 1, 0.3 and 0.1), so quantized, packed and
pruned messages cross both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsparse.catalog import STRATEGIES

from .helpers import simulate, without_timings

# strategies for task streams cross both engines in tests/test_continual.py; of Flower's own
# strategies (strategies/flower.py), which differ only in Flower's aggregation, FedAdam
NON_CONTINUAL = [
    name
    for name in STRATEGIES.names()
    if not STRATEGIES.get(name).requires_tasks
    and (STRATEGIES.provenance(name).module != "fedsparse.strategies.flower" or name == "fedadam")
]


@pytest.mark.parametrize("strategy", NON_CONTINUAL)
def test_inline_and_ray_give_identical_results_and_bytes(tmp_path: Path, strategy: str) -> None:
    overrides = (
        f"strategy.name={strategy}",
        "federation.rounds=3",
        "federation.client_eval_every=2",
        "output.plots=false",
        "data.server_samples=100",
        "federation.profiles=[{share: 0.5, bitwidth: 32}, {share: 0.3, bitwidth: 8, speed: 0.3},"
        " {share: 0.2, bitwidth: 4, speed: 0.1, bandwidth_mbps: 1}]",
    )
    inline_rows, inline_summary = simulate("quickstart.yaml", tmp_path / "inline", *overrides, "engine.backend=inline")
    ray_rows, ray_summary = simulate("quickstart.yaml", tmp_path / "ray", *overrides, "engine.backend=ray")
    assert inline_summary["bytes_up_total"] > 0 and inline_summary["strategy"] == strategy
    assert set(inline_summary["final_accuracy_by_bitwidth"]) == {"4", "8", "32"}
    pruned = {c["pruned_rate"] > 0 for row in inline_rows for c in row["clients"]}
    assert pruned == ({False, True} if strategy in ("heterofl", "fedrolex", "adaptcl") else {False})
    assert [without_timings(r) for r in inline_rows] == [without_timings(r) for r in ray_rows]
    assert without_timings(inline_summary) == without_timings(ray_summary)


def test_flowers_own_ray_engine_gives_the_same_results_and_bytes(tmp_path: Path) -> None:
    overrides = ("federation.rounds=2", "output.plots=false")
    inline_rows, inline_summary = simulate("quickstart.yaml", tmp_path / "inline", *overrides)
    flower_rows, flower_summary = simulate(
        "quickstart.yaml", tmp_path / "flower", *overrides, "engine.backend=flower-ray"
    )
    assert {c["node"] is None for row in flower_rows for c in row["clients"]} == {False}  # ran in Ray actors
    assert [without_timings(r) for r in inline_rows] == [without_timings(r) for r in flower_rows]
    assert without_timings(inline_summary) == without_timings(flower_summary)
