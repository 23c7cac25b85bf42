from __future__ import annotations

import pytest
import torch

from fedsparse.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_forward_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, shape, 10)
    assert model(torch.zeros(4, *shape)).shape == (4, 10)


def test_cnn_parameter_count_matches_the_formula() -> None:
    c1, c2, hidden = 16, 32, 64
    for size, pooled in ((28, 7), (8, 2)):
        expected = (
            (1 * 9 * c1 + c1) + (c1 * 9 * c2 + c2) + (c2 * pooled * pooled * hidden + hidden) + (hidden * 10 + 10)
        )
        assert count_parameters(build_model("cnn", (1, size, size), 10)) == expected


def test_widths_are_arguments() -> None:
    small = build_model("cnn", (1, 28, 28), 10, channels=(4, 8), hidden=16)
    assert count_parameters(small) < count_parameters(build_model("cnn", (1, 28, 28), 10)) / 4


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        build_model("mlp", (1, 8, 8), 10, depth=3)
