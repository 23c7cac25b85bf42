"""A secure federation loses a device and gets it back: TLS on every link, SuperNode
authentication, and one SuperNode SIGKILLed mid-run and restarted, with real processes.

The SuperLink serves TLS with a certificate signed by a private CA (made with the
README's openssl commands) and admits only SuperNodes whose public keys the user
registered with ``flwr supernode register``; a node with any other key is refused.
The run is SCAFFOLD (configs/deployment_stateful.yaml), whose clients keep their control
variate c_i in ``Context.state``, on disk under their node config's ``state-dir``. Once
node2 has sent its round-1 reply, it is SIGKILLed with its SuperExec and ClientApp (a
device losing power): the SuperLink stops hearing its heartbeat and answers for it
("Node Unavailable"), and the rounds go on with the other two (min_replies 2). node2 is
started again with the same key (so the same node id: the server keeps serving it as
client 2) and the same ``state-dir``, and trains again in a later round.

It cannot reproduce the uninterrupted run: the SuperLink refuses to activate a node it
still counts online, which a SIGKILLed node stays until its heartbeat lapses (30-60 s),
so the restarted node misses a round or more. What shows it continued with its state:
its ClientApp says it restored round 1's state, and SCAFFOLD's invariant holds at the
end, the server's c = mean over all clients of their c_i (each node's newest file). A
node that came back with an empty state would break it by exactly its lost c_2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedsparse.checkpoint import checkpoint_path, load_checkpoint
from fedsparse.clients.scaffold import CONTROL_STATE
from fedsparse.results import read_metrics, read_summary
from fedsparse.wire import decode_float_state

from ..conftest import REPO
from .apps import MIN_ACCURACY, RUN_SECONDS, model_bytes
from .conftest import NODES, node_config
from .processes import CONNECTION, Federation, Process, Tls, node_key

pytestmark = pytest.mark.deployment

CONFIG = "configs/deployment_stateful.yaml"
ROUNDS = 4
RESTORED = "node state restored from"  # clients/app.py logs it when a node reads its state back


def _wait_for_first_reply(node: Process) -> None:
    """Until the node has sent its round-1 reply (the SuperNode logs each one sent)."""
    deadline = time.monotonic() + RUN_SECONDS
    while "Sent successfully" not in node.log().partition("Sending: train")[2]:
        assert node.running() and time.monotonic() < deadline, node.log()[-3000:]
        time.sleep(0.2)


def _node_id(node: Process) -> str:
    return node.log().split("SuperNode ID:")[1].split()[0]


def _newest_control(state_dir: Path) -> dict[str, np.ndarray]:
    newest = sorted(state_dir.rglob("round-*.safetensors"))[-1]
    return decode_float_state(load_checkpoint(newest).records[CONTROL_STATE])


def _secure_federation(fed: Federation, keys: dict[str, tuple[Path, Path]], configs: dict[str, str]) -> list[Process]:
    """The SuperLink, the registered keys, a stranger refused and the three devices."""
    fed.start_superlink()
    for _, public in keys.values():
        registered = fed.flwr("supernode", "register", str(public), CONNECTION, "--format", "json")
        assert json.loads(registered.stdout)["success"], registered.stdout + registered.stderr
    stranger, _ = node_key(fed.root / "keys", "stranger")
    refused = fed.start_supernode("stranger", node_config(0), key=stranger)
    nodes = fed.start_supernodes(configs, keys={name: private for name, (private, _) in keys.items()})
    refused.popen.wait(timeout=RUN_SECONDS)
    assert refused.popen.returncode != 0 and "Failed to activate SuperNode" in refused.log(), refused.log()
    listed = json.loads(fed.flwr("supernode", "list", CONNECTION, "--format", "json").stdout)
    assert len(listed["nodes"]) == NODES, listed
    return nodes


def test_secure_federation_survives_a_killed_device_that_comes_back_with_its_state(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(tls=Tls.make(tmp_path / "certificates"), supernode_auth=True)
    keys = {f"node{i}": node_key(fed.root / "keys", f"node{i}") for i in range(NODES)}
    state_dirs = {name: fed.root / name / "state" for name in keys}
    # node0 and node1 stand for devices 4x slower, so node2 is idle, its round 1 sent, when it dies
    configs = {
        name: f'{node_config(i)} state-dir="{state_dirs[name]}"' + (" throttle=0.25" if i < 2 else "")
        for i, name in enumerate(keys)
    }
    nodes = _secure_federation(fed, keys, configs)

    run_id = fed.submit(REPO, config=CONFIG)
    _wait_for_first_reply(nodes[2])
    nodes[2].kill()
    back = fed.restart_supernode("node2", configs["node2"], keys["node2"][0])
    assert _node_id(back) == _node_id(nodes[2])  # its key keeps its identity
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))

    run_dir = fed.run_dir("deployment", run_id)
    rows = read_metrics(run_dir)
    missed = [row["round"] for row in rows if [r["id"] for r in row["rejected"]] == [2]]
    assert [row["round"] for row in rows if row["rejected"]] == missed, rows  # only node2 ever fails
    assert missed == list(range(2, 2 + len(missed))) and 2 + len(missed) <= ROUNDS, missed  # away, then back
    for row in rows:
        if row["round"] in missed:
            dead = row["clients"][2]
            assert "Node Unavailable" in row["rejected"][0]["reason"]
            assert (dead["bytes_down"], dead["bytes_up"], dead["num_examples"]) == (2 * model_bytes("cnn"), 0, None)
    assert f"{RESTORED} {state_dirs['node2']}" in back.log() and "round-000001.safetensors" in back.log()

    # SCAFFOLD's c (checkpointed as strategy.c) is the mean of every client's c_i only if
    # node2 went on from its own c_2
    server = decode_float_state(load_checkpoint(checkpoint_path(run_dir)).records["strategy.c"])
    clients = [_newest_control(state_dirs[name]) for name in keys]
    for name, c in server.items():
        np.testing.assert_allclose(NODES * c, sum(c_i[name] for c_i in clients), rtol=1e-4, atol=1e-6)
    assert read_summary(run_dir)["final_accuracy"] > MIN_ACCURACY
