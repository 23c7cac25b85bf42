"""A stock Flower ClientApp written as Flower's quickstart-pytorch writes one: no fedsparse
import, a ``Net``, ``load_data`` through Flower Datasets' ``IidPartitioner`` (here over
scikit-learn's digits, offline), and the training settings from the run config
(``local-epochs``, ``batch-size``, ``lr``: ``[tool.flwr.app.config]`` under ``flwr run``,
``engine.client_run_config`` in a fedsparse simulation). It replies what any Flower
client replies: an ArrayRecord and a MetricRecord with ``num-examples``.
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr_datasets.partitioner import IidPartitioner
from sklearn.datasets import load_digits
from torch import nn

app = ClientApp()


class Net(nn.Sequential):
    """An MLP, 64-32-10 (fedsparse's ``mlp`` with ``hidden: [32]``: the same weights)."""

    def __init__(self) -> None:
        super().__init__(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def load_data(partition_id: int, num_partitions: int) -> tuple[Dataset, Dataset]:
    """This node's IID share of the digits, split 80/20 into train and test (seed 42)."""
    digits = load_digits()
    pixels = ((digits.images / 16.0 - 0.3) / 0.37).reshape(len(digits.target), -1).astype(np.float32)
    partitioner = IidPartitioner(num_partitions=num_partitions)
    partitioner.dataset = Dataset.from_dict({"x": pixels, "y": digits.target})
    split = partitioner.load_partition(partition_id).train_test_split(test_size=0.2, seed=42)
    return split["train"].with_format("torch"), split["test"].with_format("torch")


def _model(message: Message) -> nn.Module:
    model = Net()
    model.load_state_dict(message.content["arrays"].to_torch_state_dict())
    return model


@app.train()
def train(message: Message, context: Context) -> Message:
    model = _model(message)
    data, _ = load_data(int(context.node_config["partition-id"]), int(context.node_config["num-partitions"]))
    run = context.run_config
    optimizer = torch.optim.SGD(model.parameters(), lr=float(run["lr"]))
    loader = torch.utils.data.DataLoader(data, batch_size=int(run["batch-size"]), shuffle=True)
    loss = torch.tensor(0.0)
    for _ in range(int(run["local-epochs"])):
        for batch in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(batch["x"]), batch["y"])
            loss.backward()
            optimizer.step()
    metrics = MetricRecord({"train_loss": loss.item(), "num-examples": len(data)})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=message)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    model = _model(message)
    _, test = load_data(int(context.node_config["partition-id"]), int(context.node_config["num-partitions"]))
    data = test[:]
    with torch.no_grad():
        logits = model(data["x"])
    metrics = MetricRecord(
        {
            "eval_loss": float(nn.functional.cross_entropy(logits, data["y"])),
            "eval_acc": float((logits.argmax(1) == data["y"]).float().mean()),
            "num-examples": len(test),
        }
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=message)
