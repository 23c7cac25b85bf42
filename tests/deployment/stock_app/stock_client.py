"""A stock Flower ClientApp: plain PyTorch, no fedsparse import, no query handler.

It trains the model the federation agreed on (an MLP, 64-32-10) on data of its own: a
share of scikit-learn's digits without the seeded 20% test split (pixels scaled to
[0, 1] and standardized with mean 0.3, std 0.37), of a size that differs from device to
device and from the partition fedsparse's config would give it (``SHARES``), and
evaluates on its own third of the test split. It replies what any Flower client
replies: one float32 ArrayRecord and a MetricRecord with ``num-examples`` and metric
names of its own (``train_loss``; ``eval_loss``, ``eval_acc``). The device whose
``partition-id`` is the run config's ``forge-partition`` trains honestly but claims
10^12 training examples, as a hostile device would.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

app = ClientApp()

SHARES = (0.45, 0.35, 0.20)  # of the agreed training data, by partition id: 646, 502, 287 samples
FORGED = 10**12
EPOCHS = 3
BATCH = 32
LR = 0.1


def net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


def local_data(partition: int, partitions: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """(train, eval): this device's contiguous share of the training data, its third of the test split."""
    digits = load_digits()
    x = (digits.images / 16.0 - 0.3) / 0.37
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    start = int(len(y_train) * sum(SHARES[:partition]))
    end = start + int(len(y_train) * SHARES[partition])
    return _tensors(x_train[start:end], y_train[start:end]), _tensors(
        x_test[partition::partitions], y_test[partition::partitions]
    )


def _model_and_data(message: Message, context: Context) -> tuple[nn.Module, tuple[tuple[torch.Tensor, ...], ...]]:
    model = net()
    model.load_state_dict(message.content["arrays"].to_torch_state_dict())
    node = context.node_config
    return model, local_data(int(node["partition-id"]), int(node["num-partitions"]))


@app.train()
def train(message: Message, context: Context) -> Message:
    model, ((x, y), _) = _model_and_data(message, context)
    partition = int(context.node_config["partition-id"])
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(partition)
    loss = torch.tensor(0.0)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=generator).split(BATCH):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    claimed = FORGED if partition == int(context.run_config.get("forge-partition", -1)) else len(y)
    metrics = MetricRecord({"train_loss": float(loss), "num-examples": claimed})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=message)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    model, (_, (x, y)) = _model_and_data(message, context)
    with torch.no_grad():
        logits = model(x)
    metrics = MetricRecord(
        {
            "eval_loss": float(nn.functional.cross_entropy(logits, y)),
            "eval_acc": float((logits.argmax(1) == y).float().mean()),
            "num-examples": len(y),
        }
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=message)
