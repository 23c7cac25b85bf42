"""Config validation: every bad field is named by its YAML path, nothing is started."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedsparse.config import ConfigError, apply_overrides, load_config, validate_config

from .conftest import REPO


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    return caught.value.problems


def with_changes(raw: dict, *overrides: str) -> dict:
    return apply_overrides(copy.deepcopy(raw), list(overrides))


def test_quickstart_is_valid_and_fills_defaults(quickstart_raw: dict) -> None:
    cfg = validate_config(quickstart_raw)
    assert cfg.strategy.name == "fedavg"
    assert cfg.strategy.fedprox.mu == 0.01  # every strategy block present with defaults


def test_set_switches_strategy_without_other_edits(quickstart_raw: dict) -> None:
    cfg = validate_config(with_changes(quickstart_raw, "strategy.name=fedprox", "strategy.fedprox.mu=0.5"))
    assert cfg.strategy.name == "fedprox"
    assert cfg.strategy_params().mu == 0.5


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("federation.rounds=0", "federation.rounds: must be >= 1"),
        ("federation.lr=-1", "federation.lr: must be > 0"),
        ("federation.batch_size=many", "federation.batch_size: "),
        ("strategy.name=fedmagic", "strategy.name: must be one of"),
        ("model.name=resnet999", "model.name: must be one of"),
        ("data.dataset=imagenet", "data.dataset: must be one of"),
        ("federation.roundz=3", "federation.roundz: unknown field"),
        ("strategy.fedprox.mu=-0.1", "strategy.fedprox.mu: must be >= 0"),
        ("strategy.fedprox.nu=1", "strategy.fedprox.nu: unknown field"),
        ("output.name=../../elsewhere", "output.name: must be a single folder name"),
        ("federation.clients_per_round=11", "federation.clients_per_round: must be <= federation.num_clients"),
        ("data.partition.method=random", "data.partition.method: must be one of"),
        ("model.options={widthz: 3}", "model.options.widthz: unknown option"),
        ("engine.backend=dask", "engine.backend: must be one of"),
        ("engine.ray_address=auto", "engine.ray_address: only the Ray engines"),
    ],
)
def test_bad_field_is_named(quickstart_raw: dict, override: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of(with_changes(quickstart_raw, override)))


def test_every_bad_field_is_reported_at_once(quickstart_raw: dict) -> None:
    problems = problems_of(with_changes(quickstart_raw, "federation.rounds=0", "seed=-3"))
    assert {p.split(":")[0] for p in problems} == {"federation.rounds", "seed"}


def test_shares_must_sum_to_one(quickstart_raw: dict) -> None:
    raw = with_changes(quickstart_raw, "federation.profiles=[{share: 0.5}, {share: 0.3}]")
    assert problems_of(raw) == ["federation.profiles: shares must sum to 1 (they sum to 0.8)"]


def test_missing_data_folder(quickstart_raw: dict, tmp_path: Path) -> None:
    raw = with_changes(quickstart_raw, "data.dataset=mnist", f"data.path={tmp_path / 'nope'}")
    assert problems_of(raw) == [f"data.path: folder '{tmp_path / 'nope'}' does not exist"]


def test_gpu_shares_without_gpu(quickstart_raw: dict) -> None:
    import torch

    if torch.cuda.is_available():  # the check must pass where a GPU exists
        validate_config(with_changes(quickstart_raw, "engine.client_resources.num_gpus=0.5"))
        return
    problems = problems_of(with_changes(quickstart_raw, "engine.client_resources.num_gpus=0.5"))
    assert problems[0].startswith("engine.client_resources.num_gpus: GPU shares asked for")


def test_ray_backend_without_ray_names_the_extra(quickstart_raw: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import fedsparse.config

    monkeypatch.setattr(fedsparse.config, "_ray_installed", lambda: False)
    assert problems_of(with_changes(quickstart_raw, "engine.backend=ray")) == [
        "engine.backend: ray needs Ray, which is not installed: pip install 'fedsparse[simulation]'"
    ]
    validate_config(quickstart_raw)  # the inline engine does not need Ray


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("federation:\n  rounds: [1, 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "invalid YAML at line" in caught.value.problems[0]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_cli_validate_exit_codes_and_no_traceback(tmp_path: Path, quickstart_raw: dict) -> None:
    assert run_cli("validate", "configs/quickstart.yaml").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_changes(quickstart_raw, "federation.rounds=0", "strategy.name=nope")))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    # a plain field's fault is reported by the quick check alone; the strategy's comes once it is fixed
    assert result.stderr == "error: federation.rounds: must be >= 1\n"
    bad.write_text(yaml.safe_dump(with_changes(quickstart_raw, "strategy.name=nope", "model.options={bogus: 1}")))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert "error: strategy.name: must be one of" in result.stderr
    assert "error: model.options.bogus: unknown option" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_reports_a_typo_without_importing_torch(tmp_path: Path, quickstart_raw: dict) -> None:
    """``fedsparse validate`` on a typo answers from the quick check: neither torch nor Flower is imported."""
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(with_changes(quickstart_raw, "federation.clinets_per_round=5", "seed=-1")))
    probe = (
        "import sys; from fedsparse.cli import main; code = main(['validate', sys.argv[1]]); "
        "print(code, 'torch' in sys.modules, 'flwr' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(bad)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert result.stderr.splitlines() == [
        "error: seed: must be >= 0",
        "error: federation.clinets_per_round: unknown field; did you mean 'clients_per_round'?",
    ]


def test_cli_run_refuses_bad_config_before_starting(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", "configs/quickstart.yaml", "--set", "federation.clients_per_round=0", "--out", str(out))
    assert result.returncode == 2
    assert "federation.clients_per_round: must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_set_needs_key_value() -> None:
    result = run_cli("validate", "configs/quickstart.yaml", "--set", "federation.rounds")
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stderr


def test_cli_run_never_writes_into_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.txt"
    foreign.write_text("mine")
    for flags in ([], ["--overwrite"]):
        result = run_cli("run", "configs/quickstart.yaml", "--out", str(tmp_path), *flags)
        assert result.returncode == 1 and "holds other files" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and foreign.read_text() == "mine"


def test_cli_run_with_data_path_at_a_system_folder_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("run", "configs/mnist_iid.yaml", "--set", "data.path=/etc", "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and result.stderr.startswith("error: data: ")
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- hints and every fault at once


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("federation.roundz=3", "federation.roundz: unknown field; did you mean 'rounds'?"),
        ("federaton.rounds=3", "federaton: unknown field; did you mean 'federation'?"),
        ("strategy.fedprox.muu=1", "strategy.fedprox.muu: unknown field; did you mean 'mu'?"),
        ("strategy.name=fedavgg", "did you mean 'fedavg'?"),
        ("model.name=cnnn", "did you mean 'cnn'?"),
        ("data.dataset=digit", "did you mean 'digits'?"),
        ("model.options={chanels: [4]}", "model.options.chanels: unknown option; model 'cnn' takes channels, hidden; "),
    ],
)
def test_a_typo_gets_the_closest_name(quickstart_raw: dict, override: str, expected: str) -> None:
    problems = problems_of(with_changes(quickstart_raw, override))
    assert len(problems) == 1 and expected in problems[0], problems


def test_model_option_errors_name_the_model_and_its_options_not_its_builder(quickstart_raw: dict) -> None:
    (bogus,) = problems_of(with_changes(quickstart_raw, "model.options={bogus: 1}"))
    assert bogus == "model.options.bogus: unknown option; model 'cnn' takes channels, hidden"
    (wrong,) = problems_of(with_changes(quickstart_raw, "model.options={channels: 3}"))
    assert wrong.startswith("model.options: model 'cnn' cannot be built with {'channels': 3}")
    assert "build_cnn" not in bogus + wrong


def test_field_and_cross_field_faults_are_reported_together(quickstart_raw: dict) -> None:
    raw = with_changes(
        quickstart_raw,
        "federation.rounds=0",
        "seed=-3",
        "federation.roundz=2",
        "federation.clients_per_round=11",  # more than num_clients: a cross-field fault
        "model.options={bogus: 1}",
    )
    assert {p.split(":")[0] for p in problems_of(raw)} == {
        "federation.rounds",
        "seed",
        "federation.roundz",
        "federation.clients_per_round",
        "model.options.bogus",
    }


def test_a_cross_field_check_on_a_field_that_failed_is_not_reported_about_its_default(quickstart_raw: dict) -> None:
    """num_clients is invalid: clients_per_round is not compared with num_clients' default."""
    raw = with_changes(quickstart_raw, "federation.num_clients=0", "federation.clients_per_round=11")
    assert problems_of(raw) == ["federation.num_clients: must be >= 1"]


def test_an_empty_config_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError) as caught:
        load_config(empty)
    assert caught.value.problems == [
        f"{empty}: empty; a config needs at least one section (configs/quickstart.yaml is one)"
    ]


def test_version_and_help_list_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from fedsparse.cli import build_parser, main

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("fedsparse ")
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert {"run", "validate", "plot", "compare", "tune", "list", "data"} <= set(commands)
    assert all(f"\n    {name} " in listed for name in commands), listed
