"""FedWeIT's decomposed linear and convolution layers (docs/methods.md §3).

The weight a layer uses for task t is

    theta_t = B ⊙ sigmoid(m_t) + A_t + sum_j alpha_t,j · KB_j

with B the base shared through the server, m_t mask logits over the output units
(whole filters / neurons), A_t the private task-adaptive weights, and the knowledge base
KB (other clients' sparse A from finished tasks) mixed by learnable attention alpha_t.
The sigmoid is applied in the forward pass so the mask learns (the official code keeps
the raw mask). Each task also has its own bias.

A layer holds every task it has learned: the current one trainable, past ones kept for
evaluation and for the lambda2 term, which pins their effective weights while B drifts.
As in the official client, only B and the current task's variables train: at a task's
end its A is hard-sparsified (|A| <= lambda1 → 0) and frozen with its mask and bias, so
a past A stays exactly as sparse as it was uploaded, and theta without the knowledge
term is stored; the knowledge term itself is folded into one frozen tensor, so the
knowledge base need not be kept.

Tasks are keyed by their pool id (``"3"``: module attribute names cannot be integers).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# sigmoid(m0) = 2/3: with A initialised to B/3, a new task starts with theta = B exactly
MASK_INIT_LOGIT = math.log(2.0)
ADAPTIVE_INIT_SHARE = 1.0 / 3.0


class Tensors(nn.Module):
    """Named frozen tensors that belong in the state dict (stored weights, knowledge)."""

    def put(self, key: str, tensor: torch.Tensor) -> None:
        if key in self._buffers:
            self._buffers[key] = tensor
        else:
            self.register_buffer(key, tensor)

    def get(self, key: str) -> torch.Tensor:
        tensor = self._buffers[key]
        assert tensor is not None
        return tensor

    def has(self, key: str) -> bool:
        return key in self._buffers

    def drop(self, key: str) -> None:
        del self._buffers[key]


class DecomposedLayer(nn.Module):
    """Shared machinery of :class:`DecomposedLinear` and :class:`DecomposedConv2d`."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.base = nn.Parameter(weight.detach().clone())
        self.initial_bias = None if bias is None else bias.detach().clone()
        self.masks = nn.ParameterDict()
        self.adaptive = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        self.attention = nn.ParameterDict()
        self.knowledge = Tensors()  # current task: (K, *weight shape)
        self.stored = Tensors()  # past tasks: theta without the knowledge term, at task end
        self.knowledge_terms = Tensors()  # past tasks: sum_j alpha_j KB_j, frozen at task end
        self.task: str | None = None

    @property
    def units(self) -> int:
        return int(self.base.shape[0])

    def _unit_view(self, per_unit: torch.Tensor) -> torch.Tensor:
        return per_unit.view(-1, *([1] * (self.base.dim() - 1)))

    # ------------------------------------------------------------ tasks
    def add_task(self, task: str, knowledge: torch.Tensor | None = None) -> None:
        """Start learning ``task``: fresh mask, A = B/3, own bias, attention over ``knowledge``."""
        self.masks[task] = nn.Parameter(torch.full((self.units,), MASK_INIT_LOGIT))
        self.adaptive[task] = nn.Parameter(self.base.detach() * ADAPTIVE_INIT_SHARE)
        bias = self.initial_bias if self.initial_bias is not None else torch.zeros(self.units)
        self.biases[task] = nn.Parameter(bias.clone())
        if knowledge is not None and len(knowledge):
            if tuple(knowledge.shape[1:]) != tuple(self.base.shape):
                raise ValueError(
                    f"knowledge entries have shape {tuple(knowledge.shape[1:])}, the layer {tuple(self.base.shape)}"
                )
            self.knowledge.put(task, knowledge.detach().clone())
            self.attention[task] = nn.Parameter(torch.full((len(knowledge),), 1.0 / len(knowledge)))

    def masked_base(self, task: str) -> torch.Tensor:
        return self.base * self._unit_view(torch.sigmoid(self.masks[task]))

    def knowledge_term(self, task: str) -> torch.Tensor | None:
        if self.knowledge_terms.has(task):
            return self.knowledge_terms.get(task)
        if self.knowledge.has(task):
            return torch.tensordot(self.attention[task], self.knowledge.get(task), dims=1)
        return None

    def effective_weight(self, task: str) -> torch.Tensor:
        weight = self.masked_base(task) + self.adaptive[task]
        term = self.knowledge_term(task)
        return weight if term is None else weight + term

    def finish_task(self, task: str, threshold: float) -> None:
        """Hard-sparsify A, store theta, fold the knowledge term, freeze the task."""
        with torch.no_grad():
            adaptive = self.adaptive[task]
            adaptive[adaptive.abs() <= threshold] = 0.0
            self.stored.put(task, (self.masked_base(task) + adaptive).detach().clone())
            term = self.knowledge_term(task)
            if term is not None:
                self.knowledge_terms.put(task, term.detach().clone())
        if self.knowledge.has(task):
            self.knowledge.drop(task)
            del self.attention[task]
        self.freeze(task)

    def freeze(self, task: str) -> None:
        """A finished task's A, mask and bias no longer train."""
        for variables in (self.adaptive, self.masks, self.biases):
            variables[task].requires_grad_(False)

    def drift(self, task: str) -> torch.Tensor:
        """||B ⊙ sigmoid(m_i) + A_i - theta_i,stored||² / 2 for a finished task i."""
        return 0.5 * (self.masked_base(task) + self.adaptive[task] - self.stored.get(task)).pow(2).sum()

    def keep_units(self, task: str, sparsity: float) -> torch.Tensor:
        """Boolean per output unit: False for the ``sparsity`` share with the lowest gate.

        Ranked by the gate sigmoid(m) (equivalently the logit), not |m|: with the sigmoid
        in the forward pass a strongly negative logit is a unit switched off.
        """
        drop = math.floor(sparsity * self.units)
        keep = torch.ones(self.units, dtype=torch.bool)
        if drop:
            keep[torch.argsort(self.masks[task].detach(), stable=True)[:drop]] = False
        return keep

    # ------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.task is None:
            raise RuntimeError("select a task before the forward pass")
        return self.apply_weight(x, self.effective_weight(self.task), self.biases[self.task])

    def apply_weight(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class DecomposedLinear(DecomposedLayer):
    def __init__(self, layer: nn.Linear) -> None:
        super().__init__(layer.weight, layer.bias)

    def apply_weight(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight, bias)


class DecomposedConv2d(DecomposedLayer):
    def __init__(self, layer: nn.Conv2d) -> None:
        if layer.groups != 1 or layer.padding_mode != "zeros":
            raise ValueError("decomposed convolutions support groups=1 and zero padding")
        super().__init__(layer.weight, layer.bias)
        self.stride, self.padding, self.dilation = layer.stride, layer.padding, layer.dilation

    def apply_weight(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)


def decompose(layer: nn.Module) -> DecomposedLayer | None:
    """The decomposed twin of a Linear or Conv2d; None for layers without weights to split."""
    if isinstance(layer, nn.Linear):
        return DecomposedLinear(layer)
    if isinstance(layer, nn.Conv2d):
        return DecomposedConv2d(layer)
    return None


def decomposition_problems(model: nn.Module) -> list[str]:
    """Why FedWeIT cannot decompose ``model`` (empty: it can). It splits each Linear and
    Conv2d of a flat ``nn.Sequential`` trunk; a layer with parameters of another kind
    (a norm layer, a residual block) would be neither shared nor any task's own."""
    if not isinstance(model, nn.Sequential):
        return [f"model.name: FedWeIT decomposes a flat nn.Sequential, got {type(model).__name__}"]
    others = [
        f"{name} ({type(module).__name__})"
        for name, module in model.named_children()
        if not isinstance(module, (nn.Linear, nn.Conv2d)) and any(True for _ in module.parameters())
    ]
    if not others:
        return []
    return [
        "model.name: FedWeIT decomposes each Linear and Conv2d of a flat nn.Sequential; "
        f"layers {', '.join(others)} have parameters it cannot split"
    ]
