"""The facts of one federation that the round loop and its callbacks share.

Built once from the config: the client task, the data the server holds (the test split
and the held-out samples, or the clients' task streams), each client's number format and
simulated device, the model every party starts from, the simulation clock's view of
a client's round, and the bound on the weight of a client's reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import ArrayRecord, Message

from fedsparse import protocol
from fedsparse.clock import SimulationClock
from fedsparse.compat import records_of
from fedsparse.config import ExperimentConfig
from fedsparse.data import ArrayDataset, ContinualData
from fedsparse.devices import client_devices, client_precisions, client_widths, precision_of
from fedsparse.ledger import ByteLedger
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.quant import Precision
from fedsparse.screening import ExampleBound
from fedsparse.strategy import StrategyContext
from fedsparse.task import ClientTask
from fedsparse.training import pick_device


class Federation:
    def __init__(self, cfg: ExperimentConfig, deployed: bool = False) -> None:
        """``deployed``: the clients are real devices with data of their own, which the
        server does not know (it bounds their replies' weight otherwise: :meth:`example_bound`)."""
        self.cfg = cfg
        self.deployed = deployed
        # clients with data of their own, which the server does not know: real devices,
        # and a ClientApp of the user's (engine.client_app), which loads its own data
        self.own_data = deployed or cfg.engine.client_app is not None
        self._largest_train_size: dict[int, int] = {}  # by task-stream stage (0 without streams)
        self.task = ClientTask.from_experiment(cfg)
        self.device = pick_device(self.task.use_gpu)
        fed = cfg.federation
        # a continual run's data are the clients' task streams; otherwise partitions and a test set
        self.streams: ContinualData | None = self.task.continual_data() if cfg.data.tasks is not None else None
        self.test_set: ArrayDataset | None = None
        self.server_data: ArrayDataset | None = None
        self.validation_set: ArrayDataset | None = None  # data.validation's server-side split
        self.train_sizes: list[int] = []
        if self.streams is None:
            data = self.task.federated_data()
            self.test_set, self.server_data = data.test, data.server
            self.validation_set = data.validation if len(data.validation) else None
            self.train_sizes = [data.train_size(client) for client in range(fed.num_clients)]
        self.model = self.task.initial_model()
        self.precisions = tuple(
            client_precisions(fed.num_clients, [p.bitwidth for p in fed.profiles], [p.share for p in fed.profiles])
        )
        # every format present, evaluated each round; least precise first
        self.eval_precisions = sorted(set(self.precisions), key=lambda p: p.rank)
        info = self.streams.info if self.streams is not None else data.info
        self.clock = SimulationClock(
            client_devices(fed.num_clients, fed.profiles),
            reference_flops=fed.reference_gflops * 1e9,
            input_shape=info.input_shape,
            build_model=self.task.build_model,
            jitter=fed.clock_jitter,
            seed=cfg.seed,
        )
        self.clock_mode = fed.clock or "simulated"  # deployment resolves null to measured before this

    def precision_of(self, client: int) -> Precision:
        return precision_of(self.precisions, client)

    def strategy_context(self, directory: NodeDirectory) -> StrategyContext:
        fed = self.cfg.federation
        return StrategyContext(
            sampler=ClientSampler(directory, fed.clients_per_round, self.cfg.seed),
            client_eval=fed.client_eval_every > 0,
            precisions=self.precisions,
            build_model=self.task.build_model,
            server_data=self.server_data,
            seed=self.cfg.seed,
            widths=tuple(client_widths(fed.num_clients, fed.profiles)),
            tasks=self.cfg.data.tasks,
        )

    def train_size(self, client: int, server_round: int) -> int:
        """Samples ``client`` trains on in ``server_round``: its partition, or its current task's share."""
        if self.streams is None:
            return self.train_sizes[client]
        return self.streams.train_size(client, self.streams.stage_of_round(server_round))

    def example_bound(self, client: int, server_round: int, directory: NodeDirectory) -> ExampleBound | None:
        """The most ``num-examples`` a reply of ``client`` may report in ``server_round``;
        none for an id outside the federation.

        Simulated, the client's training set (its partition, or its current task's share).
        Deployed, or under a ClientApp of the user's (``engine.client_app``), a client's
        data is its own: the ``num-examples`` it declared at
        discovery, else ``federation.max_num_examples``, else twice the largest training
        set the config gives any client (so a forged 10^12 is still rejected, and one
        device of a k-device round carries at most 2/(k+1) of the weight when the others
        hold their partition's share).
        """
        fed = self.cfg.federation
        if not 0 <= client < fed.num_clients:
            return None
        if not self.own_data:
            return ExampleBound(self.train_size(client, server_round), "training samples this client holds")
        if client in directory.declared_examples:
            return ExampleBound(directory.declared_examples[client], "examples its node config declares")
        if fed.max_num_examples is not None:
            return ExampleBound(fed.max_num_examples, "examples federation.max_num_examples allows")
        return ExampleBound(
            2 * self.largest_train_size(server_round),
            "examples allowed to a device that declares none (twice the largest partition; "
            "set num-examples in its node config or federation.max_num_examples)",
        )

    def largest_train_size(self, server_round: int) -> int:
        """The largest training set the config's data section gives any client in ``server_round``."""
        stage = 0 if self.streams is None else self.streams.stage_of_round(server_round)
        if stage not in self._largest_train_size:
            clients = range(self.cfg.federation.num_clients)
            self._largest_train_size[stage] = max(self.train_size(client, server_round) for client in clients)
        return self._largest_train_size[stage]

    def client_seconds(
        self,
        messages: Sequence[Message],
        directory: NodeDirectory,
        ledger: ByteLedger,
        server_round: int,
        replies: Sequence[Message] = (),
    ) -> dict[int, float]:
        """Seconds of every client asked to train in ``server_round``.

        Simulated: compute is the training FLOPs of the model it was sent (a sub-model
        counts as such) on its partition for the configured epochs; transfer, the bytes the
        ledger saw it receive and send this round over its bandwidth. A client whose reply
        was rejected still took that time: a synchronous server waited for it. Measured
        (``federation.clock``): a client that replied (``replies``) with the seconds it
        trained takes those plus the same transfer time.
        """
        seconds = self.simulated_seconds(messages, directory, ledger, server_round)
        if self.clock_mode != "measured":
            return seconds
        moved = ledger.round_clients(server_round)
        for reply in replies:
            client = directory.client_of(reply.metadata.src_node_id)
            metrics = protocol.metrics_of(reply.content)
            if metrics is None or protocol.TRAIN_SECONDS not in metrics or client not in seconds:
                continue
            traffic = moved.get(client, {})
            transfer = self.clock.transfer_seconds(client, traffic.get("bytes_up", 0) + traffic.get("bytes_down", 0))
            seconds[client] = float(metrics[protocol.TRAIN_SECONDS]) + transfer  # type: ignore[arg-type]
        return seconds

    def simulated_seconds(
        self, messages: Sequence[Message], directory: NodeDirectory, ledger: ByteLedger, server_round: int
    ) -> dict[int, float]:
        """The simulation clock's seconds of every client asked to train in ``server_round``."""
        moved = ledger.round_clients(server_round)
        full_model = tuple((name, tuple(t.shape)) for name, t in self.model.state_dict().items())
        seconds = {}
        for message in messages:
            client = directory.client_of(message.metadata.dst_node_id)
            # no arrays sent: the client trains its own model
            sent = records_of(message.content, ArrayRecord).get(protocol.ARRAYS)
            shapes = full_model if sent is None else tuple((name, tuple(a.shape)) for name, a in sent.items())
            traffic = moved.get(client, {})
            seconds[client] = self.clock.client_seconds(
                client,
                server_round,
                shapes,
                samples=self.train_size(client, server_round),
                epochs=self.cfg.federation.local_epochs,
                bytes_moved=traffic.get("bytes_up", 0) + traffic.get("bytes_down", 0),
            )
        return seconds
