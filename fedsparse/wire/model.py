"""Loading a received record, in any codec, into a model."""

from __future__ import annotations

import warnings

import torch
from flwr.app import ArrayRecord

from fedsparse.wire.quantized import decode_float_state


def load_into(model: torch.nn.Module, record: ArrayRecord) -> None:
    """Load arrays into ``model``; strict, so a missing or extra key is an error.

    Dense float32 payloads arrive as read-only views (no copy); ``load_state_dict``
    copies into the parameters, so nothing writes to them.
    """
    model.load_state_dict(float_tensors(record), strict=True)


def float_tensors(record: ArrayRecord) -> dict[str, torch.Tensor]:
    """A record as float tensors, sharing the payload's memory where it can (read-only)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return {name: torch.from_numpy(values) for name, values in decode_float_state(record).items()}
