"""Plain PyTorch local training and evaluation, shared by clients, the server's test
evaluation and the benchmark's reference loop (so the comparison is like for like)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedsparse.data import ArrayDataset
from fedsparse.sections import AugmentConfig, TrainingConfig

log = logging.getLogger(__name__)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Stats:
    loss: float
    accuracy: float
    num_examples: int


def model_input(images: np.ndarray) -> torch.Tensor:
    """``images`` as a model gets them: an (N, C, H, W) batch as a new tensor in
    channels-last memory; arrays of other ranks as they are.

    One memory layout wherever the model runs: a convolution's kernel, and with it the
    last bits of its result, follows its input's strides, and the same array arrives
    with different strides in different processes (Ray's object store rewrites the
    stride of a size-1 channel axis), so without this a seed's results would depend on
    the engine. Channels-last is also oneDNN's faster kernel for the convolutional models
    on CPU."""
    tensor = torch.from_numpy(images)
    if tensor.dim() != 4:
        return tensor
    return torch.empty(tensor.shape, dtype=tensor.dtype, memory_format=torch.channels_last).copy_(tensor)


def make_optimizer(
    params: Iterable[torch.nn.Parameter], name: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def pick_device(use_gpu: bool) -> torch.device:
    """CUDA only when the client was given a GPU share and a GPU is visible to it; a share
    without one (a GPU only declared to Ray, a CPU build of torch) trains on the CPU, with
    a warning the first time."""
    if use_gpu and not torch.cuda.is_available():
        _warn_no_cuda()
    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


@functools.cache
def _warn_no_cuda() -> None:
    log.warning("given a GPU share, but CUDA is not available in this process: training on the CPU")


def augmenter(cfg: AugmentConfig) -> Augment:
    """A batch transform (N, C, H, W) → same shape, random from ``generator``: flip, then crop."""

    def apply(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = batch.shape
        if cfg.flip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(batch.device)
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        pad = cfg.crop_padding
        if pad:
            padded = nn.functional.pad(batch, (pad, pad, pad, pad))
            top = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
            left = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
            batch = torch.stack(
                [padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(zip(top, left, strict=True))]
            )
        return batch

    return apply


class RestrictedSoftmax(nn.Module):
    """FedRS's restricted softmax: ``model``'s logits of the classes not in ``present``
    scaled by ``alpha``, so a client's update barely moves (alpha 0: does not move) the
    classifier of classes it has no samples of. Training only; the model itself is shared
    unchanged."""

    def __init__(self, model: nn.Module, present: torch.Tensor, num_classes: int, alpha: float) -> None:
        super().__init__()
        self.model = model
        scale = torch.full((num_classes,), alpha)
        scale[present] = 1.0
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.scale


def restricted(model: nn.Module, data: ArrayDataset, alpha: float) -> nn.Module:
    """``model`` under a restricted softmax for ``data``'s classes."""
    with torch.no_grad():
        num_classes = int(model(model_input(data.x[:1]).to(next(model.parameters()).device)).shape[1])
    return RestrictedSoftmax(model, torch.from_numpy(np.unique(data.y)), num_classes, alpha)


def train_epochs(
    model: nn.Module,
    data: ArrayDataset,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor] | None = None,
    augment: Augment | None = None,
) -> Stats:
    """Minibatch training; ``regularizer()`` (e.g. FedProx's proximal term, FedWeIT's
    sparsity and drift terms) is added to every batch's loss; ``augment`` transforms each
    batch's images."""
    model.to(device).train()
    x = model_input(data.x).to(device)
    y = torch.from_numpy(data.y).to(device)
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator).to(device)
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            inputs = x[idx] if augment is None else augment(x[idx], generator)
            logits = model(inputs)
            loss = loss_fn(logits, y[idx])
            objective = loss
            if regularizer is not None:
                objective = objective + regularizer()
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
    return Stats(total_loss / max(seen, 1), correct / max(seen, 1), len(y))


def fit(
    model: nn.Module,
    data: ArrayDataset,
    training: TrainingConfig,
    *,
    generator: torch.Generator,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor] | None = None,
    lr: float | None = None,
) -> Stats:
    """A client's local training as configured: ``training.local_epochs`` epochs of the
    configured optimiser over the model's trainable parameters, at ``lr`` when given
    (a schedule's current rate) else ``training.lr``, under a restricted softmax when
    ``training.restricted_softmax`` is set."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if training.restricted_softmax is not None and len(data):
        model = restricted(model, data, training.restricted_softmax)
    return train_epochs(
        model,
        data,
        epochs=training.local_epochs,
        batch_size=training.batch_size,
        optimizer=make_optimizer(
            trainable, training.optimizer, lr or training.lr, training.momentum, training.weight_decay
        ),
        generator=generator,
        device=device,
        regularizer=regularizer,
        augment=augmenter(training.augment) if training.augment is not None else None,
    )


@torch.no_grad()
def evaluate(model: nn.Module, data: ArrayDataset, device: torch.device, batch_size: int = 1024) -> Stats:
    model.to(device).eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    for start in range(0, len(data), batch_size):
        x = model_input(data.x[start : start + batch_size]).to(device)
        y = torch.from_numpy(data.y[start : start + batch_size]).to(device)
        logits = model(x)
        total_loss += float(loss_fn(logits, y))
        correct += int((logits.argmax(1) == y).sum())
    n = max(len(data), 1)
    return Stats(total_loss / n, correct / n, len(data))
