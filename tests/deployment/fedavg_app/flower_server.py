"""A ServerApp running Flower's built-in FedAvg (``flwr.serverapp.strategy.FedAvg``).

Only the glue is ours: the initial model and a centralized evaluation on the digits test
split, both read from the run config's ``fedsparse`` table like the clients read their
task. The results go to ``$FEDSPARSE_RUNS_ROOT/flower-fedavg/<run id>.json``.
"""

from __future__ import annotations

import json

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedsparse.deployment import experiment_from_run_config, runs_root
from fedsparse.task import ClientTask
from fedsparse.training import evaluate

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    task = ClientTask.from_experiment(experiment_from_run_config(context.run_config))
    model = task.initial_model()
    test_set = task.federated_data().test

    def central(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        stats = evaluate(model, test_set, "cpu")
        return MetricRecord({"accuracy": stats.accuracy, "loss": stats.loss})

    nodes = task.num_clients
    strategy = FedAvg(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=int(context.run_config["num-server-rounds"]),
        evaluate_fn=central,
    )
    out = runs_root() / "flower-fedavg" / f"{grid.run.run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    records = {
        "train": result.train_metrics_clientapp,
        "evaluate_clientapp": result.evaluate_metrics_clientapp,
        "evaluate_serverapp": result.evaluate_metrics_serverapp,
    }
    out.write_text(
        json.dumps({kind: {str(r): dict(m) for r, m in by_round.items()} for kind, by_round in records.items()})
    )
