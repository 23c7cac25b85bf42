"""What a client must store to serve every task it has learned, in bytes."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from fedsparse.wire import sparse_bytes


def stored_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Each tensor in the smaller of two formats: dense float32, or the sparse wire format
    (its non-zeros' values plus their positions, :func:`fedsparse.wire.sparse_bytes`)."""
    return sum(min(4 * t.numel(), sparse_bytes(t.detach().cpu())) for t in tensors)
