"""A stock Flower ClientApp: plain PyTorch, no fedsparse import, no query handler.

It trains the model the federation agreed on (an MLP, 64-32-10) on its share of the
digits the federation agreed to train on (scikit-learn's digits without the seeded 20%
test split, pixels scaled to [0, 1] and standardized with mean 0.3, std 0.37), and
replies what any Flower client replies: one float32 ArrayRecord and a MetricRecord with
``num-examples``.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

app = ClientApp()

SAMPLES = 300  # each client's share of the agreed training data
EPOCHS = 3
BATCH = 32
LR = 0.1


def net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def local_data(partition: int, partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_digits()
    x = (digits.images / 16.0 - 0.3) / 0.37
    x_train, _, y_train, _ = train_test_split(x, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    x_mine, y_mine = x_train[partition::partitions][:SAMPLES], y_train[partition::partitions][:SAMPLES]
    return torch.tensor(x_mine, dtype=torch.float32), torch.tensor(y_mine, dtype=torch.int64)


@app.train()
def train(message: Message, context: Context) -> Message:
    model = net()
    model.load_state_dict(message.content["arrays"].to_torch_state_dict())
    x, y = local_data(int(context.node_config["partition-id"]), int(context.node_config["num-partitions"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(int(context.node_config["partition-id"]))
    loss = torch.tensor(0.0)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=generator).split(BATCH):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    metrics = MetricRecord({"train_loss": float(loss), "num-examples": len(y)})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=message)
