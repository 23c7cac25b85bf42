"""Sub-model extraction, client-side resizing and scatter-back (METHODS.md §2 steps 1, 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedsparse.models import MODELS, build_model, count_parameters
from fedsparse.prune import (
    SubUpdate,
    by_importance,
    channel_layout,
    extract,
    first_k,
    resize_to,
    scatter_mean,
    submodel_shapes,
)


def _prunable(name: str) -> bool:
    try:
        channel_layout(build_model(name, (1, 8, 8), 10))
    except ValueError:
        return False
    return True


# every registered model structured pruning takes (resnet18 is refused: tests/models/test_resnet.py)
PRUNABLE = [name for name in MODELS.names() if _prunable(name)]

SHAPE = (1, 28, 28)


def _state(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}


def _submodel(name: str, sub: dict[str, np.ndarray], **options) -> nn.Module:  # type: ignore[no-untyped-def]
    model = resize_to(build_model(name, SHAPE, 10, **options), {n: v.shape for n, v in sub.items()})
    model.load_state_dict({n: torch.from_numpy(v) for n, v in sub.items()})
    return model


@pytest.mark.parametrize("name", PRUNABLE)
def test_extract_at_rate_zero_then_scatter_back_is_the_identity(name: str) -> None:
    torch.manual_seed(0)
    state = _state(build_model(name, SHAPE, 10))
    layout = channel_layout(build_model(name, SHAPE, 10))
    kept = first_k(layout, 0.0)
    sub = extract(state, layout, kept)
    assert all(np.array_equal(sub[n], state[n]) for n in state)
    back = scatter_mean(state, layout, [SubUpdate(sub, kept, 7.0), SubUpdate(sub, kept, 2.0)])
    assert all(np.array_equal(back[n], state[n]) and back[n].dtype == state[n].dtype for n in state)


@pytest.mark.parametrize("name", PRUNABLE)
@pytest.mark.parametrize("rate", [0.3, 0.5, 0.9])
def test_a_submodel_runs_and_equals_the_full_model_restricted_to_its_channels(name: str, rate: float) -> None:
    torch.manual_seed(1)
    full_model = build_model(name, SHAPE, 10)
    layout = channel_layout(full_model)
    state = _state(full_model)
    kept = by_importance(layout, state, rate)
    model = _submodel(name, extract(state, layout, kept))
    x = torch.randn(3, *SHAPE)
    assert model(x).shape == (3, 10)
    # zeroing the dropped channels' outgoing weights in the full model gives the same function
    masked = {k: v.copy() for k, v in state.items()}
    for axes_name, axes in layout.params.items():
        if axes.in_group is not None:
            dropped = np.setdiff1d(np.arange(layout.group_sizes[axes.in_group]), kept[axes.in_group])
            cols = (dropped[:, None] * axes.in_repeat + np.arange(axes.in_repeat)).reshape(-1)
            masked[axes_name][:, cols] = 0.0
    full_model.load_state_dict({k: torch.from_numpy(v) for k, v in masked.items()})
    if name != "vgg":  # GroupNorm statistics depend on the channels present, by design
        torch.testing.assert_close(model(x), full_model(x), rtol=1e-4, atol=1e-5)


def test_cnn_submodel_parameter_count_matches_the_kept_channels() -> None:
    options = {"channels": [16, 32], "hidden": 64}
    layout = channel_layout(build_model("cnn", SHAPE, 10, **options))
    state = _state(build_model("cnn", SHAPE, 10, **options))
    for rate in (0.0, 0.25, 0.5, 0.8):
        kept = first_k(layout, rate)
        c1, c2, hidden = (len(k) for k in kept)
        expected = (1 * 9 * c1 + c1) + (c1 * 9 * c2 + c2) + (c2 * 7 * 7 * hidden + hidden) + (hidden * 10 + 10)
        sub = extract(state, layout, kept)
        assert count_parameters(_submodel("cnn", sub, **options)) == expected
        assert submodel_shapes(state, layout, kept) == {n: v.shape for n, v in sub.items()}
        assert (c1, c2, hidden) == tuple(int(np.ceil(round((1 - rate) * c, 9))) for c in (16, 32, 64))


def _tiny() -> nn.Sequential:
    """2 inputs → 3 hidden units → 2 outputs: small enough to average by hand."""
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))


def test_aggregation_over_holders_gives_exact_elementwise_means() -> None:
    layout = channel_layout(_tiny())
    glob = {
        "0.weight": np.arange(6, dtype=np.float32).reshape(3, 2),
        "0.bias": np.array([10, 20, 30], np.float32),
        "2.weight": np.arange(6, dtype=np.float32).reshape(2, 3) + 100,
        "2.bias": np.array([7, 8], np.float32),
    }
    # client A holds hidden units {0, 1} (weight 1), client B units {1, 2} (weight 3)
    a_kept, b_kept = (np.array([0, 1]),), (np.array([1, 2]),)
    a = {
        "0.weight": np.full((2, 2), 1.0, np.float32),
        "0.bias": np.array([1, 2], np.float32),
        "2.weight": np.full((2, 2), 4.0, np.float32),
        "2.bias": np.array([0, 0], np.float32),
    }
    b = {
        "0.weight": np.full((2, 2), 5.0, np.float32),
        "0.bias": np.array([6, 7], np.float32),
        "2.weight": np.full((2, 2), 8.0, np.float32),
        "2.bias": np.array([4, 8], np.float32),
    }
    out = scatter_mean(glob, layout, [SubUpdate(a, a_kept, 1.0), SubUpdate(b, b_kept, 3.0)])
    # unit 0: only A; unit 1: (1·A + 3·B)/4; unit 2: only B
    np.testing.assert_array_equal(out["0.weight"], [[1, 1], [4, 4], [5, 5]])
    np.testing.assert_array_equal(out["0.bias"], [1, (2 + 3 * 6) / 4, 7])
    np.testing.assert_array_equal(out["2.weight"], [[4, 7, 8], [4, 7, 8]])
    np.testing.assert_array_equal(out["2.bias"], [3, 6])  # both hold every class


def test_elements_no_client_held_keep_their_global_value() -> None:
    layout = channel_layout(_tiny())
    glob = {
        "0.weight": np.ones((3, 2), np.float32),
        "0.bias": np.zeros(3, np.float32),
        "2.weight": np.full((2, 3), 2.0, np.float32),
        "2.bias": np.zeros(2, np.float32),
    }
    kept = (np.array([1]),)
    sub = {n: v * 0 - 1 for n, v in extract(glob, layout, kept).items()}
    out = scatter_mean(glob, layout, [SubUpdate(sub, kept, 1.0)])
    np.testing.assert_array_equal(out["0.weight"], [[1, 1], [-1, -1], [1, 1]])
    np.testing.assert_array_equal(out["2.weight"], [[2, -1, 2], [2, -1, 2]])


def test_a_submodel_that_does_not_match_its_kept_channels_is_refused() -> None:
    layout = channel_layout(_tiny())
    glob = {n: v.detach().numpy() for n, v in _tiny().state_dict().items()}
    kept = (np.array([0, 2]),)
    wrong = extract(glob, layout, first_k(layout, 0.0))  # the full model, but sent a 2-unit one
    with pytest.raises(ValueError, match="kept channels"):
        scatter_mean(glob, layout, [SubUpdate(wrong, kept, 1.0)])
    with pytest.raises(ValueError, match="sorted, unique"):
        extract(glob, layout, (np.array([2, 0]),))


def test_flattened_inputs_follow_their_channel() -> None:
    """After Flatten, conv channel c owns linear inputs c·HW … c·HW+HW-1."""
    layout = channel_layout(build_model("cnn", SHAPE, 10, channels=[4, 6], hidden=5))
    assert layout.params["7.weight"].in_repeat == 49 and layout.params["7.weight"].in_group == 1
    state = _state(build_model("cnn", SHAPE, 10, channels=[4, 6], hidden=5))
    kept = (np.array([0, 1, 2, 3]), np.array([2, 5]), np.arange(5))
    sub = extract(state, layout, kept)
    np.testing.assert_array_equal(sub["7.weight"][:, :49], state["7.weight"][:, 2 * 49 : 3 * 49])
    np.testing.assert_array_equal(sub["7.weight"][:, 49:], state["7.weight"][:, 5 * 49 : 6 * 49])
