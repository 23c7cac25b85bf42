"""Bit-heterogeneous federations end to end: bytes, per-bitwidth evaluation, learning."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fedsparse.config import ConfigError

from .helpers import simulate

PROFILES_32_4 = "federation.profiles=[{share: 0.5, bitwidth: 32}, {share: 0.5, bitwidth: 4}]"


def test_a_4_bit_client_moves_at_most_a_seventh_of_a_float32_clients_bytes(tmp_path: Path) -> None:
    rows, summary = simulate(
        "quickstart.yaml",
        tmp_path,
        PROFILES_32_4,
        "federation.rounds=2",
        "federation.clients_per_round=10",
        "output.plots=false",
    )
    for row in rows:
        per_round = {c["id"]: (c["bitwidth"], c["bytes_up"] + c["bytes_down"]) for c in row["clients"]}
        float32 = [b for bw, b in per_round.values() if bw == "32"]
        four_bit = [b for bw, b in per_round.values() if bw == "4"]
        assert len(float32) == len(four_bit) == 5
        assert len(set(float32)) == len(set(four_bit)) == 1  # same model, same cost
        assert four_bit[0] <= float32[0] / 7
    assert set(summary["final_accuracy_by_bitwidth"]) == {"4", "32"}
    assert summary["final_accuracy"] == pytest.approx(sum(summary["final_accuracy_by_bitwidth"].values()) / 2)


def test_a_short_prowd_run_on_mnist_improves_at_every_bitwidth(tmp_path: Path, mnist_dir: Path) -> None:
    rows, summary = simulate(
        "bhfl_mnist_mixed.yaml",
        tmp_path,
        f"data.path={mnist_dir}",
        "federation.rounds=5",
        "federation.eval_every=1",
        "output.plots=false",
    )
    first, last = rows[0]["accuracy_by_bitwidth"], rows[-1]["accuracy_by_bitwidth"]
    assert set(first) == {"2", "4", "8", "32"}
    for bitwidth in first:
        assert last[bitwidth] > first[bitwidth] + 0.05, (bitwidth, first, last)
    assert summary["final_accuracy_by_bitwidth"] == last
    assert all(0 < r["prowd_kept_fraction"] < 1 for r in rows)  # selection kept some, not all
    for bits in (2, 4, 8):  # measured per low bitwidth; float32 is the reference
        assert all(0 < r[f"prowd_kept_fraction_{bits}bit"] < 1 and r[f"prowd_update_ratio_{bits}bit"] > 0 for r in rows)
        assert all(r[f"prowd_kept_ratio_{bits}bit"] <= r[f"prowd_update_ratio_{bits}bit"] for r in rows)
    assert not any("prowd_kept_fraction_32bit" in r for r in rows)
    assert all(r["dequantizer_distillation"] > 0 for r in rows)


def test_prowd_with_every_part_off_is_fedavg_end_to_end(tmp_path: Path) -> None:
    common = ("data.dataset=digits", "data.path=null", "federation.rounds=3", "output.plots=false")
    all_off = (
        "strategy.prowd.dequantizer=false",
        "strategy.prowd.selective=false",
        "strategy.prowd.low_bit_update=from_global",
    )
    prowd_rows, prowd = simulate("bhfl_mnist_mixed.yaml", tmp_path / "prowd", *common, *all_off)
    fedavg_rows, fedavg = simulate("bhfl_mnist_mixed.yaml", tmp_path / "fedavg", *common, "strategy.name=fedavg")
    assert prowd["final_accuracy_by_bitwidth"] == fedavg["final_accuracy_by_bitwidth"]
    assert [r["train_loss"] for r in prowd_rows] == [r["train_loss"] for r in fedavg_rows]
    # the update rule alone already makes it another algorithm
    _, received = simulate("bhfl_mnist_mixed.yaml", tmp_path / "received", *common, *all_off[:2])
    assert received["final_accuracy_by_bitwidth"] != fedavg["final_accuracy_by_bitwidth"]


def test_bitwidths_and_prowd_settings_are_validated(quickstart_raw: dict) -> None:  # type: ignore[type-arg]
    from fedsparse.config import apply_overrides, validate_config

    with pytest.raises(ConfigError) as bad_bits:
        validate_config(
            apply_overrides(copy.deepcopy(quickstart_raw), ["federation.profiles=[{share: 1.0, bitwidth: 1}]"])
        )
    assert bad_bits.value.problems == [
        "federation.profiles.0.bitwidth: must be 32 (float32), 16 (float16) or 2..15 (integer bits)"
    ]
    with pytest.raises(ConfigError) as no_buffer:
        validate_config(apply_overrides(copy.deepcopy(quickstart_raw), ["strategy.name=prowd"]))
    assert no_buffer.value.problems == [
        "strategy.prowd.distill_weight: distillation needs data.server_samples > 0 (or set it to 0)"
    ]
    validate_config(
        apply_overrides(copy.deepcopy(quickstart_raw), ["strategy.name=prowd", "strategy.prowd.distill_weight=0"])
    )
