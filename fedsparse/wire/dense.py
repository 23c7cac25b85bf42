"""Dense float codec: model tensors ⇄ Flower ``ArrayRecord``.

The wire format is NumPy's ``.npy`` inside Flower's ``Array`` (never pickle). Floating
tensors travel as float32 whatever their training dtype, so a float32 model costs
exactly 4 bytes per parameter plus Flower's per-array header.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord


def encode_state(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    record = ArrayRecord()
    for name, tensor in state.items():
        array = tensor.detach().cpu().numpy()
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32, copy=False)
        record[name] = Array(np.ascontiguousarray(array))
    return record


def decode_state(record: ArrayRecord) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((name, torch.from_numpy(array.numpy().copy())) for name, array in record.items())


def encode_model(model: torch.nn.Module) -> ArrayRecord:
    return encode_state(model.state_dict())


def load_into(model: torch.nn.Module, record: ArrayRecord) -> None:
    """Load arrays into ``model``; strict, so a missing or extra key is an error."""
    model.load_state_dict(decode_state(record), strict=True)
