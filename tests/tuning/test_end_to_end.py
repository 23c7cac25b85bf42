"""``fedsparse tune`` then ``fedsparse compare`` on digits, through the CLI: two
strategies × three trials, then the tuned configs on three evaluation seeds."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from fedsparse.cli import main

from ..conftest import REPO

SETTINGS = ["federation.rounds=3", "federation.num_clients=5", "federation.clients_per_round=5"]


def _set(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def test_tune_then_compare_gives_a_table_with_intervals_paired_tests_and_best_by_validation(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    tuned = tmp_path / "tune"
    args = ["tune", str(REPO / "configs" / "quickstart.yaml"), "--strategies", "fedavg,fedprox", "--trials", "3"]
    assert main([*args, "--seeds", "1", "--out", str(tuned), "--no-progress", *_set(SETTINGS)]) == 0
    compare_yaml = tuned / "tuned" / "quickstart.yaml"
    section = yaml.safe_load(compare_yaml.read_text())["compare"]
    assert section["strategies"] == ["fedavg", "fedprox"]
    assert section["tuning"]["trials_per_strategy"] == 3
    chosen_mu = section["settings"]["fedprox"]["strategy.fedprox.mu"]

    out = tmp_path / "compare"
    assert main(["compare", str(compare_yaml), "--seeds", "3", "--out", str(out), "--no-progress"]) == 0
    page = capsys.readouterr().out
    assert "**Tuning**: every strategy tuned with the same budget" in page
    assert "Paired against fedavg" in page

    with (out / "comparison.csv").open() as handle:
        rows = {row["strategy"]: row for row in csv.DictReader(handle)}
    fedprox = rows["fedprox"]
    for column in (
        "final_accuracy_ci_low",
        "final_accuracy_ci_high",
        "final_accuracy_p_paired",
        "final_accuracy_p_holm",
        "accuracy_at_best_val_mean",
        "accuracy_at_best_val_p_holm",
    ):
        assert fedprox[column] != "", column
    assert float(fedprox["final_accuracy_p_holm"]) >= float(fedprox["final_accuracy_p_paired"])
    assert fedprox["n_seeds"] == "3"
    # the evaluation runs are the tuned configs, on seeds the tuning never used
    run = yaml.safe_load((out / "fedprox" / "seed0" / "config.yaml").read_text())
    assert run["strategy"]["fedprox"]["mu"] == chosen_mu
    assert run["data"]["validation"] == 0.1 and run["federation"]["evaluate_test"] is True
    assert not set(section["tuning"]["tuning_seeds"]) & {0, 1, 2}
