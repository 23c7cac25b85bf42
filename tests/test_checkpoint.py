"""The checkpoint file: exact round trips of every encoding, RNG states, damage refused."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from fedsparse.checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore_rng_of, save_checkpoint, with_rng
from fedsparse.quant import Precision
from fedsparse.wire import encode_at, encode_sparse_state, encode_state


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 5, generator=generator)
    weight[::2] = 0.0  # rows a sparse codec drops
    return {"w": weight, "b": torch.randn(6, generator=generator), "step": torch.tensor(3.0)}


def _same(left: ArrayRecord, right: ArrayRecord) -> bool:
    return list(left) == list(right) and all(
        (a.dtype, tuple(a.shape), a.stype, a.data) == (b.dtype, tuple(b.shape), b.stype, b.data)
        for a, b in zip(left.values(), right.values(), strict=True)
    )


def test_every_encoding_and_value_comes_back_byte_for_byte(tmp_path: Path) -> None:
    state = _state()
    records = {
        "dense": encode_state(state),
        "four-bit": encode_at(state, Precision.from_bitwidth(4)),
        "sparse": encode_sparse_state({k: v.numpy() for k, v in state.items() if v.ndim}),
        "empty": ArrayRecord(),
    }
    values = {"rates": {"3": 0.25}, "fastest": None, "ledger": [[1, 0, "up", "train", 4096]]}
    save_checkpoint(tmp_path / "c.safetensors", Checkpoint(7, records, values))
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    assert loaded.round == 7 and loaded.values == values
    assert set(loaded.records) == set(records)
    for name, record in records.items():
        assert _same(loaded.records[name], record), name
    assert tuple(loaded.records["dense"]["step"].shape) == ()  # a 0-d tensor stays 0-d
    assert not list(tmp_path.glob("*.partial"))


def test_restored_rng_states_repeat_the_same_draws(tmp_path: Path) -> None:
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "c.safetensors", with_rng(Checkpoint(1)))
    draws = (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(), random.random())
    restore_rng_of(load_checkpoint(tmp_path / "c.safetensors"))
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(), random.random()) == draws


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_a_damaged_or_missing_checkpoint_is_refused_with_its_path(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, Checkpoint(2, {"m": encode_state(_state())}, {"k": 1}))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04\x95 not a safetensors file" * 10)  # e.g. a pickle
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
