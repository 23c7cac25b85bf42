"""The inline engine's Grid: delivery, per-node Contexts, isolation, errors and deadlines."""

from __future__ import annotations

import logging
import time

import pytest
import torch
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode
from flwr.supercore.run import Run

from fedsparse.inline import InlineGrid, client_threads

RUN_ID = 1  # the server_identity fixture's run id

app = ClientApp()
seen: dict[str, object] = {}


@app.query()
def count(message: Message, context: Context) -> Message:
    """Counts its calls in the node's Context and reports what it saw."""
    record = context.state.config_records.setdefault("counter", ConfigRecord({"calls": 0}))
    record["calls"] = int(record["calls"]) + 1
    seen["threads"] = torch.get_num_threads()
    torch.rand(1000)  # consumes this process's global RNG
    message.content["ask"]["tampered"] = True  # must not reach the server's copy
    if message.content["ask"].get("fail"):
        raise RuntimeError("device crashed")
    if message.content["ask"].get("sleep"):
        time.sleep(float(message.content["ask"]["sleep"]))  # type: ignore[arg-type]
    reply = ConfigRecord({"calls": record["calls"], "partition": context.node_config["partition-id"]})
    return Message(RecordDict({"reply": reply}), reply_to=message)


def grid_with(num_nodes: int, threads: int = 1) -> InlineGrid:
    return InlineGrid(app, num_nodes, Run.create_empty(run_id=RUN_ID), threads=threads)


def ask(node: int, **values: object) -> Message:
    return Message(RecordDict({"ask": ConfigRecord(values)}), dst_node_id=node, message_type=MessageType.QUERY)  # type: ignore[arg-type]


def calls_of(grid: InlineGrid, node: int) -> int:
    return int(grid.context_of(node).state.config_records["counter"]["calls"])


@pytest.mark.usefixtures("server_identity")
class TestInlineGrid:
    def test_nodes_get_flower_node_configs_with_every_partition_once(self) -> None:
        grid = grid_with(7)
        nodes = list(grid.get_node_ids())
        assert len(set(nodes)) == 7
        configs = [grid.context_of(n).node_config for n in nodes]
        assert sorted(int(c["partition-id"]) for c in configs) == list(range(7))
        assert {c["num-partitions"] for c in configs} == {7}

    def test_context_state_persists_across_rounds_per_node(self) -> None:
        grid = grid_with(3)
        first, second, _ = grid.get_node_ids()
        for _ in range(3):
            replies = list(grid.send_and_receive([ask(first), ask(second)]))
        assert calls_of(grid, first) == calls_of(grid, second) == 3
        assert sorted(r.content["reply"]["calls"] for r in replies) == [3, 3]
        assert {r.metadata.src_node_id for r in replies} == {first, second}
        assert all(r.metadata.message_id and r.metadata.reply_to_message_id for r in replies)

    def test_a_raising_client_answers_with_an_error_and_its_context_is_unchanged(self) -> None:
        grid = grid_with(2)
        node, other = grid.get_node_ids()
        grid.send_and_receive([ask(node)])
        (reply,) = grid.send_and_receive([ask(node, fail=True)])
        assert reply.has_error() and reply.error.code == ErrorCode.CLIENT_APP_RAISED_EXCEPTION
        assert "device crashed" in reply.error.reason
        assert calls_of(grid, node) == 1  # the failed call's increment is rolled back
        (healthy,) = grid.send_and_receive([ask(other)])
        assert not healthy.has_error()

    def test_the_client_works_on_its_own_copy_of_the_message(self) -> None:
        grid = grid_with(1)
        sent = ask(next(iter(grid.get_node_ids())))
        grid.send_and_receive([sent])
        assert "tampered" not in sent.content["ask"]

    def test_clients_run_with_the_configured_threads_and_their_own_rng(self) -> None:
        server_threads = torch.get_num_threads()
        grid = grid_with(1, threads=1 if server_threads > 1 else 2)
        node = next(iter(grid.get_node_ids()))
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        grid.send_and_receive([ask(node)])
        assert seen["threads"] != server_threads
        assert torch.get_num_threads() == server_threads
        assert torch.equal(torch.rand(3), expected)  # the client's draws did not shift the server's

    def test_replies_after_the_deadline_are_dropped_and_later_clients_not_run(self) -> None:
        grid = grid_with(3)
        slow, fast, last = grid.get_node_ids()
        replies = list(grid.send_and_receive([ask(fast), ask(slow, sleep=0.4), ask(last)], timeout=0.2))
        assert [r.metadata.src_node_id for r in replies] == [fast]
        assert calls_of(grid, slow) == 1
        assert "counter" not in grid.context_of(last).state.config_records

    def test_the_reply_listener_hears_each_reply_as_it_arrives(self) -> None:
        grid = grid_with(3)
        nodes = list(grid.get_node_ids())

        def calls_made() -> int:
            return sum(
                int(grid.context_of(n).state.config_records.get("counter", {"calls": 0})["calls"]) for n in nodes
            )

        heard: list[tuple[int, int, int]] = []  # (done, sent, calls made so far)
        grid.report_replies(lambda done, sent: heard.append((done, sent, calls_made())))
        replies = list(grid.send_and_receive([ask(n) for n in nodes]))
        assert len(replies) == 3 and heard == [(1, 3, 1), (2, 3, 2), (3, 3, 3)]
        grid.report_replies(None)
        grid.send_and_receive([ask(nodes[0])])
        assert len(heard) == 3

    def test_push_then_pull(self) -> None:
        grid = grid_with(2)
        nodes = list(grid.get_node_ids())
        ids = list(grid.push_messages([ask(n) for n in nodes]))
        assert len(ids) == 2
        replies = list(grid.pull_messages(ids))
        assert sorted(r.metadata.reply_to_message_id for r in replies) == sorted(ids)
        assert list(grid.pull_messages(ids)) == []  # each message is delivered once

    def test_messages_to_unknown_nodes_are_logged_and_not_sent(self, caplog: pytest.LogCaptureFixture) -> None:
        grid = grid_with(1)
        with caplog.at_level(logging.ERROR, logger="fedsparse"):
            assert list(grid.push_messages([ask(12345)])) == []
        assert "unknown destination node 12345" in caplog.text


@pytest.mark.parametrize(
    ("num_cpus", "env", "expected"),
    [(1.0, None, 1), (0.5, None, 1), (2.7, None, 2), (1.0, "3", 3)],
)
def test_client_threads_follow_rays_rule(
    monkeypatch: pytest.MonkeyPatch, num_cpus: float, env: str | None, expected: int
) -> None:
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert client_threads(num_cpus) == expected
