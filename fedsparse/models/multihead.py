"""One shared trunk, one classifier head per task: the multi-head net of continual learning.

In task-incremental learning (docs/methods.md §3) the task id is known at test time, so each
task gets its own small output layer and tasks do not compete for output units. The
trunk is any registry model with its final ``Linear`` removed, so the heads are exactly
the classifier that model would have had, one copy per task of the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from fedsparse.models.registry import build_model

TRUNK, HEADS = "trunk", "heads"


class MultiHeadNet(nn.Module):
    """``trunk`` → ``heads[active]``; :meth:`select` picks the task before a forward pass."""

    def __init__(self, trunk: nn.Sequential, heads: nn.ModuleList) -> None:
        super().__init__()
        self.trunk = trunk
        self.heads = heads
        self.active = 0

    def select(self, task: int) -> None:
        if not 0 <= task < len(self.heads):
            raise ValueError(f"task {task} has no head (the net has {len(self.heads)})")
        self.active = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads[self.active](self.trunk(x))

    def body_state(self) -> dict[str, torch.Tensor]:
        """The shared part: the trunk's tensors, named as in :meth:`state_dict`."""
        return {name: t for name, t in self.state_dict().items() if name.startswith(f"{TRUNK}.")}

    def heads_state(self) -> dict[str, torch.Tensor]:
        """The private part: every task's head, named as in :meth:`state_dict`."""
        return {name: t for name, t in self.state_dict().items() if name.startswith(f"{HEADS}.")}

    def load_part(self, state: Mapping[str, torch.Tensor], part: str) -> None:
        """Load exactly the tensors of ``part`` (``trunk`` or ``heads``); any other
        tensor, or a missing one, is an error."""
        own = self.body_state() if part == TRUNK else self.heads_state()
        if set(state) != set(own):
            raise ValueError(f"{part}: expected tensors {sorted(own)}, got {sorted(state)}")
        getattr(self, part).load_state_dict({name[len(part) + 1 :]: t for name, t in state.items()})


def shared_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a model shares with the server: a multi-head net its trunk (each task's head
    stays with the client that learns it), any other model all of itself."""
    return model.body_state() if isinstance(model, MultiHeadNet) else model.state_dict()


def split_classifier(model: nn.Module) -> tuple[nn.Sequential, nn.Linear]:
    """A registry model's trunk and its final classifier layer."""
    if not isinstance(model, nn.Sequential) or not isinstance(model[-1], nn.Linear):
        raise ValueError(f"a multi-head net needs a Sequential model ending in Linear, got {type(model).__name__}")
    return cast(nn.Sequential, model[:-1]), model[-1]


def build_multihead(
    name: str, input_shape: tuple[int, int, int], outputs: int, num_heads: int, **options: object
) -> MultiHeadNet:
    """The registry model ``name`` with ``num_heads`` classifiers of ``outputs`` classes.

    Heads are built in task order after the trunk, so the same global seed gives every
    process (server, clients) the same initial heads.
    """
    trunk, first_head = split_classifier(build_model(name, input_shape, outputs, **options))
    heads = [first_head] + [nn.Linear(first_head.in_features, outputs) for _ in range(num_heads - 1)]
    return MultiHeadNet(trunk, nn.ModuleList(heads))
