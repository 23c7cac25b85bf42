"""Dense float codec: model tensors ⇄ Flower ``ArrayRecord``.

The wire format is NumPy's ``.npy`` inside Flower's ``Array`` (never pickle). Floating
tensors travel as float32 whatever their training dtype, so a float32 model costs
exactly 4 bytes per parameter plus Flower's per-array header.
"""

from __future__ import annotations

import functools
import io
import math
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
        # a 0-d tensor (an optimiser's step count) stays 0-d: np.ascontiguousarray would make it (1,)
        record[name] = Array(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    return record


@functools.lru_cache(maxsize=4096)
def _parse_npy_header(preamble: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """NumPy's own (validating) header parser, once per distinct header.

    It runs ``ast.literal_eval`` (~50 µs); a model's tensors repeat the same few headers
    every round, and the screening, client and codec paths read each of them.
    """
    stream = io.BytesIO(preamble)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    return tuple(shape), bool(fortran_order), dtype


def _preamble_length(data: bytes) -> int:
    """Bytes before the payload: magic, version, header length field, header."""
    if data[:6] != b"\x93NUMPY" or len(data) < 12:
        raise ValueError("not a .npy payload")
    if data[6] == 1:
        return 10 + int.from_bytes(data[8:10], "little")
    return 12 + int.from_bytes(data[8:12], "little")


def npy_view(array: Array) -> np.ndarray:
    """A read-only view of an ``Array``'s ``.npy`` payload, without copying it.

    ``Array.numpy()`` (``np.load``) copies the payload; on the server's hot path every
    reply is read twice (screening, aggregation) and on the client once. Object
    dtypes (pickles) are refused, as ``np.load(allow_pickle=False)`` refuses them; a
    payload shorter than its header promises raises ``ValueError``.
    """
    data = array.data
    offset = _preamble_length(data)
    shape, fortran_order, dtype = _parse_npy_header(data[:offset])
    if dtype.hasobject:
        raise ValueError("object arrays (pickles) are not accepted")
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def decode_state(record: ArrayRecord) -> OrderedDict[str, torch.Tensor]:
    """Tensors that own their memory (safe to train in place)."""
    return OrderedDict((name, torch.from_numpy(npy_view(array).copy())) for name, array in record.items())


def encode_model(model: torch.nn.Module) -> ArrayRecord:
    return encode_state(model.state_dict())
