"""ResNet-18 with GroupNorm: the standard size, no running statistics, training on
MNIST-sized input, and every strategy either running it or saying why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsparse.catalog import STRATEGIES
from fedsparse.config import ConfigError
from fedsparse.models import build_model, count_parameters
from fedsparse.results import read_summary
from fedsparse.runner import run_experiment

from ..helpers import config_of

SMALL = "model={name: resnet18, options: {widths: [8, 8, 16, 16]}}"


def test_it_has_resnet18s_parameters_and_no_running_statistics() -> None:
    model = build_model("resnet18", (3, 32, 32), 10)
    assert count_parameters(model) == 11_173_962  # ResNet-18 for CIFAR-10 (GroupNorm has BatchNorm's affine pair)
    assert list(model.buffers()) == []


def test_it_trains_on_mnist_and_reports_its_size(tmp_path: Path) -> None:
    cfg = config_of(
        "mnist_iid.yaml",
        "model={name: resnet18, options: {widths: [8, 16, 32, 64]}}",
        "federation.num_clients=2",
        "federation.clients_per_round=2",
        "federation.rounds=2",
        "federation.local_epochs=3",
        "data.partition.max_samples_per_client=600",
    )
    run_experiment(cfg, tmp_path)
    summary = read_summary(tmp_path)
    assert summary["model_parameters"] == count_parameters(
        build_model("resnet18", (1, 28, 28), 10, widths=(8, 16, 32, 64))
    )
    assert summary["final_accuracy"] > 0.3  # 1200 training images and 2 rounds from scratch; chance is 0.1


PRUNES = {"heterofl", "fedrolex", "adaptcl"}


@pytest.mark.parametrize("strategy", [name for name in STRATEGIES.names() if not STRATEGIES.get(name).requires_tasks])
def test_every_strategy_runs_it_or_says_why_not(tmp_path: Path, strategy: str) -> None:
    overrides = (SMALL, f"strategy.name={strategy}", "federation.rounds=1", "data.server_samples=100")
    if strategy in PRUNES:
        with pytest.raises(ConfigError, match="ResidualBlock is not supported by structured pruning"):
            config_of("quickstart.yaml", *overrides)
        return
    run_experiment(config_of("quickstart.yaml", *overrides), tmp_path)
    assert read_summary(tmp_path)["rounds_completed"] == 1


def test_fedweit_says_why_it_cannot_decompose_it() -> None:
    with pytest.raises(ConfigError, match=r"FedWeIT decomposes .* layers 1 \(GroupNorm\), 3 \(ResidualBlock\)"):
        config_of("fcl_split_mnist.yaml", SMALL, "strategy.name=fedweit")
