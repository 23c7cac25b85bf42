"""A FedWeIT client's whole network: decomposed trunk, private heads, its tasks' history.

Built from the plain multi-head net of the run (same seed, same initial weights as every
other strategy's), with each Linear / Conv2d of the trunk decomposed and one private
head per task learned. Everything a client must remember between rounds and tasks is in
:meth:`DecomposedNet.state_dict` plus :meth:`DecomposedNet.structure` (which tasks,
which finished, how large the current knowledge base), so a client that runs in a fresh
process each round rebuilds it exactly (:meth:`DecomposedNet.restore`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedsparse.decompose.layers import DecomposedLayer, decompose
from fedsparse.models.multihead import MultiHeadNet

BASE = "base"
STORED = "stored"  # DecomposedLayer.stored: the finished tasks' theta, in state-dict keys
Knowledge = Mapping[str, torch.Tensor]  # layer name → (K, *weight shape)


class DecomposedNet(nn.Module):
    def __init__(self, plain: MultiHeadNet) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*[decompose(layer) or layer for layer in plain.trunk])
        # initial heads, copied when a task starts (not part of the state: rebuilt from the seed)
        self._initial_heads = [{k: v.detach().clone() for k, v in h.state_dict().items()} for h in plain.heads]
        first_head = plain.heads[0]
        assert isinstance(first_head, nn.Linear)
        self._head_shape: tuple[int, int] = (first_head.out_features, first_head.in_features)
        self.heads = nn.ModuleDict()
        self.tasks: list[int] = []  # learned, in order; the last one may still be running
        self.finished: list[int] = []
        self._active_head: str | None = None

    # ------------------------------------------------------------ layers
    def layers(self) -> dict[str, DecomposedLayer]:
        """Decomposed layers by module path (``trunk.0``)."""
        return {f"trunk.{i}": m for i, m in enumerate(self.trunk) if isinstance(m, DecomposedLayer)}

    def base_names(self) -> list[str]:
        """The names the shared base travels under (``trunk.0.base``)."""
        return [f"{name}.{BASE}" for name in self.layers()]

    def base_state(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{BASE}": layer.base.detach() for name, layer in self.layers().items()}

    def base_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self.base_state().items()}

    @torch.no_grad()
    def load_global_base(self, state: Mapping[str, torch.Tensor]) -> None:
        """Take the server's base where it is non-zero; keep the own one elsewhere.

        The server zeroes the output units no client sent this round (docs/methods.md §3).
        """
        for name, layer in self.layers().items():
            incoming = state[f"{name}.{BASE}"]
            if tuple(incoming.shape) != tuple(layer.base.shape):
                raise ValueError(f"{name}.{BASE}: shape {tuple(incoming.shape)} != {tuple(layer.base.shape)}")
            where = incoming != 0
            layer.base[where] = incoming[where].to(layer.base.dtype)

    # ------------------------------------------------------------ tasks
    @property
    def current(self) -> int | None:
        """The task being learned, if the last one has not finished."""
        return self.tasks[-1] if self.tasks and self.tasks[-1] not in self.finished else None

    def select(self, task: int) -> None:
        if task not in self.tasks:
            raise ValueError(f"task {task} was never learned (learned: {self.tasks})")
        for layer in self.layers().values():
            layer.task = str(task)
        self._active_head = str(task)

    def add_task(self, task: int, knowledge: Knowledge | None = None) -> None:
        if self.current is not None:
            raise RuntimeError(f"task {self.current} has not finished")
        if task in self.tasks:
            raise ValueError(f"task {task} was learned already")
        knowledge = knowledge or {}
        for name, layer in self.layers().items():
            layer.add_task(str(task), knowledge.get(name))
        head = nn.Linear(self._head_shape[1], self._head_shape[0])
        head.load_state_dict(self._initial_heads[task])
        self.heads[str(task)] = head
        self.tasks.append(task)

    def finish_task(self, threshold: float) -> dict[str, torch.Tensor]:
        """End the current task; its hard-sparsified A by base name (what is uploaded)."""
        task = self.current
        if task is None:
            raise RuntimeError("no task is running")
        for layer in self.layers().values():
            layer.finish_task(str(task), threshold)
        self.finished.append(task)
        return {f"{name}.{BASE}": layer.adaptive[str(task)].detach() for name, layer in self.layers().items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._active_head is None:
            raise RuntimeError("select a task before the forward pass")
        return self.heads[self._active_head](self.trunk(x))

    # ------------------------------------------------------------ loss
    def regularizer(self, lambda1: float, lambda2: float, weight_decay: float) -> torch.Tensor:
        """The current task's loss terms beyond cross-entropy (docs/methods.md §3)."""
        task = self.current
        if task is None:
            raise RuntimeError("no task is running")
        key = str(task)
        first_task = len(self.tasks) == 1
        total = torch.zeros((), device=next(self.parameters()).device)
        for layer in self.layers().values():
            adaptive, mask = layer.adaptive[key], layer.masks[key]
            total = total + lambda1 * adaptive.abs().sum()
            total = total + weight_decay * 0.5 * (adaptive.pow(2).sum() + mask.pow(2).sum())
            if first_task:  # the official client decays B during the first task only
                total = total + weight_decay * 0.5 * layer.base.pow(2).sum()
            for past in self.finished:
                total = total + lambda2 * layer.drift(str(past))
        return total

    def keep_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """Per base name, which output units the current task uploads."""
        task = self.current if self.current is not None else self.tasks[-1]
        return {f"{name}.{BASE}": layer.keep_units(str(task), sparsity) for name, layer in self.layers().items()}

    def sparse_base(self, sparsity: float) -> dict[str, torch.Tensor]:
        """B ⊙ keep: the base with the least-gated units zeroed, as it goes to the server."""
        keep = self.keep_masks(sparsity)
        return {name: base * keep[name].view(-1, *([1] * (base.dim() - 1))) for name, base in self.base_state().items()}

    # ------------------------------------------------------------ size
    def kept_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Everything the client keeps, split in two: what serves its tasks (B, masks,
        biases, A, attention, knowledge, heads) and what only further training needs (the
        finished tasks' stored theta, which the lambda2 drift penalty compares against)."""
        serving: list[torch.Tensor] = []
        training_only: list[torch.Tensor] = []
        for key, tensor in self.state_dict().items():
            (training_only if f".{STORED}." in key else serving).append(tensor)
        return serving, training_only

    # ------------------------------------------------------------ persistence
    def structure(self) -> dict[str, list[int] | int]:
        current = self.current
        first = next(iter(self.layers().values()))
        kb_size = len(first.attention[str(current)]) if current is not None and str(current) in first.attention else 0
        return {"tasks": list(self.tasks), "finished": list(self.finished), "knowledge": kb_size}

    @classmethod
    def restore(
        cls, plain: MultiHeadNet, structure: Mapping[str, object], state: Mapping[str, torch.Tensor]
    ) -> DecomposedNet:
        """Rebuild the net a client saved: same tasks, same roles, same tensors."""
        net = cls(plain)
        tasks = [int(t) for t in structure["tasks"]]  # type: ignore[attr-defined]
        finished = [int(t) for t in structure["finished"]]  # type: ignore[attr-defined]
        kb_size = int(structure["knowledge"])  # type: ignore[call-overload]
        for task in tasks:
            placeholder = None
            if task not in finished and kb_size:
                placeholder = {name: torch.zeros(kb_size, *layer.base.shape) for name, layer in net.layers().items()}
            net.add_task(task, placeholder)
            if task in finished:
                for layer in net.layers().values():
                    layer.stored.put(str(task), torch.zeros_like(layer.base))
                    layer.freeze(str(task))
                net.finished.append(task)
        for name, layer in net.layers().items():
            for task in finished:
                if f"{name}.knowledge_terms.{task}" in state:
                    layer.knowledge_terms.put(str(task), torch.zeros_like(layer.base))
        net.load_state_dict(dict(state), strict=True)
        return net
