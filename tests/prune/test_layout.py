"""Channel wiring read off the registry's models, and refusal of what cannot be pruned."""

from __future__ import annotations

import pytest
from torch import nn

from fedsparse.catalog import prunes_model
from fedsparse.models import build_model
from fedsparse.prune import ParamAxes, channel_layout


def test_cnn_wiring() -> None:
    layout = channel_layout(build_model("cnn", (1, 8, 8), 10, channels=[4, 6], hidden=5))
    assert layout.group_sizes == (4, 6, 5) and layout.group_layers == ("0", "3", "7")
    assert layout.params["0.weight"] == ParamAxes(0, None)  # image channels are never pruned
    assert layout.params["3.weight"] == ParamAxes(1, 0)
    assert layout.params["7.weight"] == ParamAxes(2, 1, in_repeat=4)  # 8×8 pooled to 2×2
    assert layout.params["9.weight"] == ParamAxes(None, 2)  # the classifier keeps every class
    assert layout.params["9.bias"] == ParamAxes(None)


def test_vgg_norm_layers_follow_their_conv() -> None:
    layout = channel_layout(build_model("vgg", (1, 28, 28), 10))
    assert layout.params["1.weight"] == ParamAxes(0) and layout.params["1.bias"] == ParamAxes(0)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)), "BatchNorm1d is not supported"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4, 2)), "use 1 group"),
        (nn.Sequential(nn.Linear(4, 2)), "at least one hidden"),
        (nn.Linear(4, 2), "nn.Sequential"),
    ],
)
def test_unprunable_models_are_refused_with_a_reason(model: nn.Module, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        channel_layout(model)
    assert message.split()[0] in prunes_model(model)[0] and prunes_model(model)[0].startswith("model.name:")
