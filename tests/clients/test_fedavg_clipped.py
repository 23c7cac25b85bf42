"""The clipping learner: updates longer than ``clip_norm`` arrive scaled down to it,
shorter ones untouched, counters kept as trained."""

from __future__ import annotations

import numpy as np
import torch

from fedsparse import protocol
from fedsparse.clients.app import app
from fedsparse.clients.fedavg_clipped import clipped
from fedsparse.task import ClientTask
from fedsparse.wire import encode_model, float_tensors

from ..helpers import context_for, train_message


def test_a_long_update_is_scaled_to_the_clip_norm_and_a_short_one_kept() -> None:
    received = {"w": torch.zeros(2), "steps": torch.tensor(3)}
    long = clipped({"w": torch.tensor([3.0, 4.0]), "steps": torch.tensor(5)}, received, clip_norm=1.0)
    torch.testing.assert_close(long["w"], torch.tensor([0.6, 0.8]))
    assert int(long["steps"]) == 5
    short = clipped({"w": torch.tensor([0.3, 0.4]), "steps": torch.tensor(5)}, received, clip_norm=1.0)
    torch.testing.assert_close(short["w"], torch.tensor([0.3, 0.4]))


def test_the_clients_upload_moves_at_most_clip_norm_from_what_it_received(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    model = task.initial_model()
    sent = encode_model(model)
    norms = {}
    for clip_norm in (0.05, 1e6):
        message = train_message(task, sent, node_id=1000)
        protocol.with_learner(message.content[protocol.CONFIG], "clipped", {"clip_norm": clip_norm})
        reply = app(message, context_for(0, 10))
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        uploaded, start = float_tensors(reply.content[protocol.ARRAYS]), float_tensors(sent)
        norms[clip_norm] = float(np.sqrt(sum(float(((uploaded[k] - start[k]).double() ** 2).sum()) for k in start)))
    assert norms[0.05] <= 0.05 * (1 + 1e-5)
    assert norms[1e6] > 0.05  # unclipped, the same training moves further
