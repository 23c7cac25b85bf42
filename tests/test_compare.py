"""``fedsparse compare``: the real CLI on digits, its numbers recomputed from the run
folders it leaves, the identical federation across strategies, resuming, and the errors."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from fedsparse.cli import main
from fedsparse.comparison import Stat, default_target, first_reaching, mean_std, plan_comparison

from .conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
STRATEGIES = ("fedavg", "fedpaq")
SEEDS = (0, 1)
# small and fast, but not trivial: three device bitwidths (per-bitwidth accuracy columns,
# FedPAQ's quantized uploads differ from FedAvg's), and an evaluation every other round
# only, so the MB up to the target counts rounds without an accuracy too
SETTINGS = [
    "federation.rounds=3",
    "federation.eval_every=2",
    "data.partition.max_samples_per_client=40",
    "output.plots=false",
    "federation.profiles=[{share: 0.4, bitwidth: 32}, {share: 0.3, bitwidth: 8}, {share: 0.3, bitwidth: 4}]",
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def _compare_args(out: Path) -> list[str]:
    args = [
        "compare",
        QUICKSTART,
        "--strategies",
        ",".join(STRATEGIES),
        "--seeds",
        str(len(SEEDS)),
        "--out",
        str(out),
        "--no-progress",
    ]
    for item in SETTINGS:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("compare") / "out"
    result = _cli(*_compare_args(out))
    assert result.returncode == 0, result.stderr
    return out, result


def _csv(out: Path) -> dict[str, dict[str, str]]:
    with (out / "comparison.csv").open() as handle:
        return {row["strategy"]: row for row in csv.DictReader(handle)}


def _runs(out: Path, strategy: str) -> list[tuple[dict, list[dict]]]:  # type: ignore[type-arg]
    found = []
    for seed in SEEDS:
        run_dir = out / strategy / f"seed{seed}"
        summary = json.loads((run_dir / "summary.json").read_text())
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        found.append((summary, rows))
    return found


def _mb_to(rows: list[dict], target: float) -> float | None:  # type: ignore[type-arg]
    total = 0.0
    for row in rows:
        total += row["bytes_up"] + row["bytes_down"]
        if "accuracy" in row and row["accuracy"] is not None and row["accuracy"] >= target:
            return total / 1e6
    return None


def _auc(rows: list[dict]) -> float:  # type: ignore[type-arg]
    """Mean test accuracy over training: trapezoid over the evaluated rounds over their span."""
    evaluated = [(row["round"], row["accuracy"]) for row in rows if row.get("accuracy") is not None]
    rounds, accuracy = zip(*evaluated, strict=True)
    return float(np.trapezoid(accuracy, rounds) / (rounds[-1] - rounds[0]))


def _at_best_val(rows: list[dict]) -> float:  # type: ignore[type-arg]
    """The test accuracy at the first round of highest validation accuracy."""
    evaluated = [row for row in rows if row.get("val_accuracy") is not None]
    return max(evaluated, key=lambda row: (row["val_accuracy"], -row["round"]))["accuracy"]


def _check(cell: str, values: list[float]) -> None:
    """A CSV mean/std pair against numpy's mean and sample std of ``values``."""
    assert float(cell[0]) == pytest.approx(np.mean(values), abs=1e-6)
    if len(values) > 1:
        assert float(cell[1]) == pytest.approx(np.std(values, ddof=1), abs=1e-6)
    else:
        assert cell[1] == ""


# --------------------------------------------------------------------------- the real CLI


def test_csv_equals_statistics_recomputed_from_the_run_folders(compared) -> None:  # type: ignore[no-untyped-def]
    out, _ = compared
    table = _csv(out)
    assert list(table) == list(STRATEGIES)
    finals = {s: [summary["final_accuracy"] for summary, _ in _runs(out, s)] for s in STRATEGIES}
    weakest = min(np.mean(v) for v in finals.values())
    target = math.floor(0.9 * weakest * 100) / 100  # the documented default
    for strategy, row in table.items():
        runs = _runs(out, strategy)
        summaries = [summary for summary, _ in runs]

        def pair(key: str, row: dict = row) -> tuple[str, str]:  # type: ignore[type-arg]
            return row[f"{key}_mean"], row[f"{key}_std"]

        assert row["n_seeds"] == "2" and row["seeds"] == "0 1" and row["reference"] == "fedavg"
        _check(pair("final_accuracy"), finals[strategy])
        low, high = stats.t.interval(0.95, 1, loc=np.mean(finals[strategy]), scale=stats.sem(finals[strategy]))
        assert (float(row["final_accuracy_ci_low"]), float(row["final_accuracy_ci_high"])) == pytest.approx(
            (low, high), abs=1e-6
        )
        _check(pair("accuracy_auc"), [_auc(rows) for _, rows in runs])
        _check(pair("accuracy_at_best_val"), [_at_best_val(rows) for _, rows in runs])
        for bits in ("4", "8", "32"):
            _check(pair(f"accuracy_{bits}bit"), [s["final_accuracy_by_bitwidth"][bits] for s in summaries])
        _check(pair("mb_up"), [s["bytes_up_total"] / 1e6 for s in summaries])
        _check(pair("mb_down"), [s["bytes_down_total"] / 1e6 for s in summaries])
        _check(pair("sim_seconds"), [s["sim_seconds_total"] for s in summaries])
        assert float(row["target_accuracy"]) == pytest.approx(target)
        reached = [mb for mb in (_mb_to(rows, target) for _, rows in runs) if mb is not None]
        assert row["seeds_reached_target"] == str(len(reached))
        if reached:
            _check(pair("mb_to_target"), reached)
        else:
            assert row["mb_to_target_mean"] == row["mb_to_target_std"] == ""
    paired = stats.ttest_rel(finals["fedpaq"], finals["fedavg"])
    assert float(table["fedpaq"]["final_accuracy_p_paired"]) == pytest.approx(paired.pvalue, abs=1e-6)
    assert table["fedpaq"]["final_accuracy_p_wilcoxon"] == ""  # below 5 seeds
    assert table["fedavg"]["final_accuracy_p_paired"] == ""  # the reference


def test_markdown_has_one_row_per_strategy_and_states_the_setup(compared) -> None:  # type: ignore[no-untyped-def]
    out, result = compared
    text = (out / "comparison.md").read_text()
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| strategy")))
    header, rows = lines[start], lines[start + 2 : start + 2 + len(STRATEGIES)]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == list(STRATEGIES)
    assert "acc @4-bit (%)" in header and "MB up" in header and "MB total" in header
    assert "acc @best val (%)" in header and "mean acc over rounds (%)" in header
    target = float(_csv(out)["fedavg"]["target_accuracy"])
    assert f"MB to {target * 100:.4g} %" in header and f"rounds to {target * 100:.4g} %" in header
    assert "Seeds**: 0–1 (2)" in text and "digits, 10 clients" in text
    assert "Validation**: 10 % of the training data held out on the server, stratified" in text
    assert "### Paired against fedavg" in text and "| fedpaq | final acc (pts) | 2 |" in text
    assert "## How to read this" in text and "Holm" in text and "scipy.stats.ttest_rel" in text
    assert "fedsparse compare" in text and "--strategies fedavg,fedpaq" in text
    assert text in result.stdout  # the table is echoed


def test_figure_is_a_png_image(compared) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    out, _ = compared
    image = plt.imread(out / "comparison.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_a_seed_gives_every_strategy_the_same_federation(compared) -> None:  # type: ignore[no-untyped-def]
    out, _ = compared

    def federation(strategy: str, seed: int) -> list[list[tuple]]:  # type: ignore[type-arg]
        rows = _runs(out, strategy)[SEEDS.index(seed)][1]
        return [[(c["id"], c["num_examples"], c["bitwidth"]) for c in row["clients"]] for row in rows]

    for seed in SEEDS:
        assert federation("fedavg", seed) == federation("fedpaq", seed)
        config = yaml.safe_load((out / "fedpaq" / f"seed{seed}" / "config.yaml").read_text())
        assert config["seed"] == seed and config["strategy"]["name"] == "fedpaq"
    assert federation("fedavg", 0) != federation("fedavg", 1)  # the seeds do differ
    # the strategies do differ: FedPAQ uploads quantized deltas
    assert _runs(out, "fedavg")[0][0]["final_accuracy"] != _runs(out, "fedpaq")[0][0]["final_accuracy"]


def test_every_run_is_a_full_run_folder(compared, capsys) -> None:  # type: ignore[no-untyped-def]
    out, _ = compared
    assert main(["plot", str(out / "fedpaq" / "seed1")]) == 0
    assert (out / "fedpaq" / "seed1" / "accuracy_vs_mb.png").is_file()


def test_a_second_invocation_reuses_finished_runs_and_completes_interrupted_ones(compared, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    source, _ = compared
    out = tmp_path / "out"
    shutil.copytree(source, out)
    metrics = {(s, k): out / s / f"seed{k}" / "metrics.jsonl" for s in STRATEGIES for k in SEEDS}
    for path in metrics.values():
        os.utime(path, (1_000_000, 1_000_000))
    # as if interrupted: after its last checkpoint, and before its first one
    (out / "fedpaq" / "seed1" / "summary.json").unlink()
    (out / "fedavg" / "seed0" / "summary.json").unlink()
    (out / "fedavg" / "seed0" / "checkpoint.safetensors").unlink()

    assert main(_compare_args(out)) == 0
    stdout = capsys.readouterr().out
    assert "(2 of 4 runs already done)" in stdout
    assert stdout.count("reused") == 2
    assert "fedpaq seed 1: " in stdout and "(resumed after round 3)" in stdout
    rerun = {key for key, path in metrics.items() if path.stat().st_mtime != 1_000_000}
    assert rerun == {("fedpaq", 1), ("fedavg", 0)}
    # resumed or rerun, they reproduce the original runs: the comparison is unchanged
    assert (out / "comparison.csv").read_text() == (source / "comparison.csv").read_text()


def test_jobs_run_in_parallel_processes_to_the_same_comparison(compared, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source, _ = compared
    result = _cli(*_compare_args(tmp_path / "parallel"), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "running 4 runs, 2 at a time" in result.stdout
    assert (tmp_path / "parallel" / "comparison.csv").read_text() == (source / "comparison.csv").read_text()
    assert _cli(*_compare_args(tmp_path / "none"), "--jobs", "0").returncode == 2


# --------------------------------------------------------------------------- errors


def test_unknown_and_incompatible_strategies_exit_2_naming_them(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    code = main(["compare", QUICKSTART, "--strategies", "fedavg,nope,fedweit,prowd", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.splitlines()
    assert any("unknown strategy 'nope'" in line for line in lines)
    assert any("'fedweit'" in line and "data.tasks" in line for line in lines)
    assert any("'prowd'" in line and "server_samples" in line for line in lines)
    assert not any("fedavg" in line and "cannot run" in line for line in lines)
    assert all(line.startswith("error: ") for line in lines) and "Traceback" not in err
    assert not out.exists()  # nothing ran


def test_a_fault_of_the_config_itself_is_reported_once_without_blaming_a_strategy(capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["compare", QUICKSTART, "--strategies", "fedavg,fedpaq", "--set", "federation.clients_per_round=50"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert lines == ["error: federation.clients_per_round: must be <= federation.num_clients (10)"]


def test_runs_of_another_config_are_refused_before_anything_runs(compared, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    source, _ = compared
    out = tmp_path / "out"
    shutil.copytree(source, out)
    args = _compare_args(out)
    args[args.index("federation.rounds=3")] = "federation.rounds=2"
    before = {p: p.stat().st_mtime for p in out.rglob("metrics.jsonl")}
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "holds a run of another config (federation.rounds: 3 there, 2 here)" in err
    assert "--overwrite" in err and "Traceback" not in err
    assert {p: p.stat().st_mtime for p in out.rglob("metrics.jsonl")} == before


# --------------------------------------------------------------------------- planning


def test_seeds_are_the_config_seed_plus_k_for_every_strategy(tmp_path) -> None:
    plan = plan_comparison(QUICKSTART, ["seed=5"], strategies=["fedavg", "fedprox"], seeds=2, out=tmp_path)
    assert [(r.strategy, r.seed, r.run_dir.relative_to(tmp_path).as_posix()) for r in plan.runs] == [
        ("fedavg", 5, "fedavg/seed5"),
        ("fedprox", 5, "fedprox/seed5"),
        ("fedavg", 6, "fedavg/seed6"),
        ("fedprox", 6, "fedprox/seed6"),
    ]
    assert all(r.cfg.strategy.name == r.strategy and r.cfg.seed == r.seed for r in plan.runs)


def test_the_yaml_compare_section_is_validated_and_the_flags_override_it(tmp_path) -> None:
    from fedsparse.config import ConfigError, dump_config, load_config

    raw = yaml.safe_load(Path(QUICKSTART).read_text())
    raw["compare"] = {"strategies": ["fedprox", "fedavg"], "seeds": 4, "target": 0.5}
    config = tmp_path / "with_compare.yaml"
    config.write_text(yaml.safe_dump(raw))

    plan = plan_comparison(config)
    assert plan.strategies == ["fedprox", "fedavg"] and plan.seeds == [0, 1, 2, 3] and plan.target == 0.5
    assert plan.out == Path("runs") / "with_compare-compare"
    assert plan.command() == f"fedsparse compare {config}"  # the section is in the config
    assert plan.reference == "fedprox"  # the first strategy
    plan = plan_comparison(config, strategies=["fedavg"], seeds=1, target=0.8)
    assert plan.strategies == ["fedavg"] and plan.seeds == [0] and plan.target == 0.8
    assert plan.command() == f"fedsparse compare {config} --strategies fedavg --seeds 1 --target 0.8"
    plan = plan_comparison(config, reference="fedavg")
    assert plan.reference == "fedavg" and plan.command() == f"fedsparse compare {config} --reference fedavg"
    assert plan_comparison(config, ["compare.reference=fedavg"]).reference == "fedavg"
    # `fedsparse run` accepts the section, and a run's resolved config leaves it out
    assert "compare" not in yaml.safe_load(dump_config(load_config(config)))

    with pytest.raises(ConfigError) as error:
        plan_comparison(config, ["compare.seeds=0", "compare.target=1.5", "compare.strategies=[fedavg, fedavg]"])
    assert sorted(error.value.problems) == [
        "compare.seeds: must be >= 1",
        "compare.strategies: listed more than once: fedavg",
        "compare.target: must be <= 1.0",
    ]
    with pytest.raises(ConfigError) as error:
        plan_comparison(config, reference="fedpaq")
    assert error.value.problems == ["--reference: 'fedpaq' is not one of the strategies compared (fedprox, fedavg)"]
    with pytest.raises(ConfigError) as error:
        load_config(config, ["compare.bogus=1"])
    assert error.value.problems == ["compare.bogus: unknown field"]


def test_a_config_without_data_validation_holds_out_ten_percent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = plan_comparison(QUICKSTART, strategies=["fedavg"], seeds=1, out=tmp_path)
    assert plan.validation_defaulted and all(run.cfg.data.validation == 0.1 for run in plan.runs)
    plan = plan_comparison(QUICKSTART, ["data.validation=0"], strategies=["fedavg"], seeds=1, out=tmp_path)
    assert not plan.validation_defaulted and plan.base.data.validation == 0


# --------------------------------------------------------------------------- pure helpers


def test_first_reaching_counts_the_bytes_of_rounds_without_an_evaluation() -> None:
    rows = [
        {"round": 1, "bytes_up": 1_000_000, "bytes_down": 2_000_000, "sim_seconds_total": 1.0},
        {"round": 2, "bytes_up": 1_000_000, "bytes_down": 2_000_000, "sim_seconds_total": 2.0, "accuracy": 0.6},
        {"round": 3, "bytes_up": 1_000_000, "bytes_down": 2_000_000, "sim_seconds_total": 3.0},
        {"round": 4, "bytes_up": 1_000_000, "bytes_down": 2_000_000, "sim_seconds_total": 4.0, "accuracy": 0.8},
        {"round": 5, "bytes_up": 1_000_000, "bytes_down": 2_000_000, "sim_seconds_total": 5.0, "accuracy": 0.7},
    ]
    hit = first_reaching(rows, 0.75)
    assert hit is not None and (hit.round, hit.megabytes, hit.sim_seconds) == (4, 12.0, 4.0)
    hit = first_reaching(rows, 0.6)  # at or above
    assert hit is not None and hit.round == 2 and hit.megabytes == 6.0
    assert first_reaching(rows, 0.81) is None


def test_mean_std_is_the_sample_std_and_skips_missing_values() -> None:
    assert mean_std([0.5, 0.7, None]) == Stat(pytest.approx(0.6), pytest.approx(math.sqrt(0.02)), 2)
    assert mean_std([0.5]) == Stat(0.5, None, 1)
    assert mean_std([None]) == Stat(None, None, 0)


def test_default_target_is_90_percent_of_the_weakest_mean_floored_to_a_percent() -> None:
    from fedsparse.comparison import SeedResult

    def result(strategy: str, accuracy: float) -> SeedResult:
        return SeedResult(strategy, 0, Path("."), {"final_accuracy": accuracy}, [])

    results = [result("a", 0.95), result("a", 0.97), result("b", 0.80), result("b", 0.86)]
    assert default_target(results) == 0.74  # 0.9 × 0.83 = 0.747


def test_a_folder_that_is_not_a_run_is_not_written_into(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    (out / "fedavg" / "seed0").mkdir(parents=True)
    (out / "fedavg" / "seed0" / "notes.txt").write_text("mine")
    assert main(["compare", QUICKSTART, "--strategies", "fedavg", "--seeds", "1", "--out", str(out)]) == 1
    assert f"error: {out / 'fedavg' / 'seed0'} holds files that are not a run" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "fedavg" / "seed0").iterdir()) == ["notes.txt"]


def test_plot_redraws_a_compare_folder_from_its_runs(compared, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    source, _ = compared
    out = tmp_path / "out"
    shutil.copytree(source, out)
    for figure in out.rglob("*.png"):
        figure.unlink()
    assert main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for strategy in STRATEGIES:
        for seed in SEEDS:
            assert str(out / strategy / f"seed{seed}" / "accuracy_vs_round.png") in printed
    assert printed[-1] == str(out / "comparison.png")
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_refuses_a_folder_without_runs(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["plot", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {tmp_path}: no metrics.jsonl here or in its runs (not a run or compare folder)"
    ]
