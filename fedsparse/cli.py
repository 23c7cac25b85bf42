"""``fedsparse run | validate | plot | compare | tune | list | data``.

User errors (a bad config, missing data, an impossible federation) end with a one-line
reason per fault on stderr and a non-zero exit, never a traceback; they are found before
any engine starts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def _fail(lines: Sequence[str], code: int) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The config ``args`` name; a config whose plain fields have faults fails before torch
    is imported (``quick_first``), in a fraction of a second."""
    from fedsparse.config import load_config

    return load_config(args.config, args.set, args.plugin, quick_first=True)


def cmd_validate(args: argparse.Namespace) -> int:
    from fedsparse.config import ConfigError

    try:
        cfg = _load(args)
    except ConfigError as error:
        return _fail(error.problems, EXIT_BAD_CONFIG)
    print(
        f"{args.config}: ok ({cfg.strategy.name}, {cfg.data.dataset}, "
        f"{cfg.federation.num_clients} clients, {cfg.federation.rounds} rounds)"
    )
    return EXIT_OK


EXTENDABLE = ("federation.rounds", "output.")  # what --set may change of a run continued with --resume


def _resume_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The run's own resolved config, or with ``--set``, that config with a new round
    count or output options (extending a finished run); anything else is refused."""
    from fedsparse.config import ConfigError, load_config
    from fedsparse.results import CONFIG_FILE, SUMMARY_FILE

    if args.config or args.out or args.plugin:
        raise ConfigError(
            [
                "--resume continues a run with its own config: give no CONFIG, --plugin or --out "
                "(--set federation.rounds=N extends it)"
            ]
        )
    run_dir = Path(args.resume)
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError([f"{run_dir}: no {CONFIG_FILE} here (not a run directory)"])
    cfg = load_config(run_dir / CONFIG_FILE)
    if not args.set:
        if (run_dir / SUMMARY_FILE).is_file():
            raise ConfigError(
                [f"{run_dir}: this run has finished; nothing to resume (--set federation.rounds=N extends it)"]
            )
        return cfg, run_dir
    return _extended(cfg, run_dir, args.set), run_dir


def _extended(cfg: ExperimentConfig, run_dir: Path, overrides: list[str]) -> ExperimentConfig:
    """``cfg`` with ``overrides``, which may change only :data:`EXTENDABLE` fields, to a
    round count past the run's checkpoint."""
    from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
    from fedsparse.config import ConfigError, changed_fields, load_config
    from fedsparse.results import CONFIG_FILE

    changed = load_config(run_dir / CONFIG_FILE, overrides)
    refused = [path for path in changed_fields(cfg, changed) if not path.startswith(EXTENDABLE)]
    if refused:
        raise ConfigError([f"--resume --set may change only federation.rounds and output.* (not {', '.join(refused)})"])
    try:
        done = load_checkpoint(checkpoint_path(run_dir)).round
    except CheckpointError as error:
        raise ConfigError([f"{error}; a run without one cannot be continued"]) from None
    if changed.federation.rounds <= done:
        raise ConfigError([f"federation.rounds: {run_dir} has completed {done} rounds; give more to extend it"])
    return changed


def cmd_run(args: argparse.Namespace) -> int:
    """``fedsparse run``; the console names each start-up step, reading the config first
    (:mod:`fedsparse.startup`), unless ``--no-progress``."""
    from fedsparse import startup

    with startup.announcing(console=not args.no_progress):
        startup.step(f"checking {args.resume or args.config or 'the command'}")
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    from fedsparse.config import ConfigError

    try:
        if args.resume:
            cfg, run_dir = _resume_config(args)
        elif args.config:
            from fedsparse.runner import new_run_dir

            cfg = _load(args)
            run_dir = Path(args.out) if args.out else new_run_dir(cfg, Path(args.config).stem)
        else:
            raise ConfigError(["give a CONFIG to run, or --resume RUN_DIR"])
    except ConfigError as error:
        return _fail(error.problems, EXIT_BAD_CONFIG)
    if args.no_progress:
        cfg.output.progress = False
    from fedsparse.runner import RunFailed, RunInterrupted, io_problem

    try:
        summary = _execute_run(args, cfg, run_dir)
    except RunFailed as error:
        return _fail([str(error)], EXIT_FAILED)
    except OSError as error:
        return _fail([io_problem(error)], EXIT_FAILED)
    except RunInterrupted as interrupt:
        return _interrupted(str(interrupt))
    except KeyboardInterrupt:
        return _interrupted("interrupted before round 1 started; run the same command again")
    _print_outcome(summary, run_dir)
    return EXIT_OK


def _execute_run(args: argparse.Namespace, cfg: ExperimentConfig, run_dir: Path) -> dict[str, Any]:
    from fedsparse.runlog import quiet_flower
    from fedsparse.runner import prepare_run_dir, run_experiment

    if not args.resume:
        prepare_run_dir(run_dir, args.overwrite)
    with quiet_flower(args.verbose):
        return run_experiment(cfg, run_dir, resume=bool(args.resume), log_level=args.log_level)


def _print_outcome(summary: dict[str, Any], run_dir: Path) -> None:
    from fedsparse.results import total_megabytes

    accuracy, val_accuracy = summary["final_accuracy"], summary.get("final_val_accuracy")
    scores = [] if accuracy is None else [f"final accuracy {accuracy:.4f}"]
    scores += [] if val_accuracy is None else [f"validation {val_accuracy:.4f}"]
    megabytes = total_megabytes(summary)
    print(f"{' · '.join(scores) or 'not evaluated'} · {megabytes:.2f} MB moved · results in {run_dir}")


def _interrupted(line: str) -> int:
    """Ctrl-C or SIGTERM: ``line`` alone on stderr, the shell's exit status for an interrupt."""
    from fedsparse.interrupts import INTERRUPTED_EXIT

    print(line, file=sys.stderr)
    return INTERRUPTED_EXIT


def _rerun_line(args: argparse.Namespace) -> str:
    """What a user sees after interrupting ``compare`` or ``tune``: the command that continues."""
    command = shlex.join(["fedsparse", *args.argv])
    return f"interrupted; finished runs are kept and an interrupted one resumes from its checkpoint: {command}"


def cmd_plot(args: argparse.Namespace) -> int:
    """A run folder: its plots. A ``compare`` folder: every finished run's, and the
    comparison figure from them."""
    from fedsparse.comparison.report import replot
    from fedsparse.plots import plot_run
    from fedsparse.results import METRICS_FILE

    run_dir = Path(args.run_dir)
    if (run_dir / METRICS_FILE).is_file():
        paths = plot_run(run_dir)
    else:
        paths = replot(run_dir)
        if not paths:
            return _fail(
                [f"{run_dir}: no {METRICS_FILE} here or in its runs (not a run or compare folder)"], EXIT_FAILED
            )
    for path in paths:
        print(path)
    return EXIT_OK


def _plan_then_run(
    args: argparse.Namespace,
    make_plan: Callable[[list[str] | None], Any],
    execute: Callable[[Any], tuple[list[Path], str]],
) -> int:
    """``compare`` and ``tune``: plan from ``--strategies`` (a config fault: exit 2), run
    the plan with Flower's logs quiet unless ``--verbose`` (a failure: exit 1; an
    interrupt: the command that continues, 130), then print its page and its files."""
    from fedsparse.comparison import CompareError
    from fedsparse.config import ConfigError
    from fedsparse.runlog import quiet_flower
    from fedsparse.runner import RunFailed

    if args.jobs < 1:
        return _fail(["--jobs: must be >= 1"], EXIT_BAD_CONFIG)
    strategies = None if args.strategies is None else [s.strip() for s in args.strategies.split(",") if s.strip()]
    try:
        plan = make_plan(strategies)
    except ConfigError as error:
        return _fail(error.problems, EXIT_BAD_CONFIG)
    try:
        with quiet_flower(args.verbose):
            paths, text = execute(plan)
    except CompareError as error:
        return _fail(error.problems, EXIT_FAILED)
    except RunFailed as error:
        return _fail([str(error)], EXIT_FAILED)
    except KeyboardInterrupt:
        return _interrupted(_rerun_line(args))
    print(text, end="")
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from fedsparse.comparison import compare, plan_comparison

    def make_plan(strategies: list[str] | None) -> Any:
        return plan_comparison(
            args.config,
            args.set,
            strategies=strategies,
            seeds=args.seeds,
            target=args.target,
            out=args.out,
            plugins=args.plugin,
            reference=args.reference,
        )

    def execute(plan: Any) -> tuple[list[Path], str]:
        return compare(plan, overwrite=args.overwrite, progress=not args.no_progress, jobs=args.jobs)

    return _plan_then_run(args, make_plan, execute)


def cmd_tune(args: argparse.Namespace) -> int:
    from fedsparse.tuning import tune
    from fedsparse.tuning.plan import plan_tune

    def make_plan(strategies: list[str] | None) -> Any:
        return plan_tune(
            args.config,
            args.set,
            strategies=strategies,
            trials=args.trials,
            seeds=args.seeds,
            out=args.out,
            plugins=args.plugin,
        )

    def execute(plan: Any) -> tuple[list[Path], str]:
        paths, text, _ = tune(plan, overwrite=args.overwrite, progress=not args.no_progress, jobs=args.jobs)
        return paths, text

    return _plan_then_run(args, make_plan, execute)


def _knobs_line(strategy: str) -> str:
    """``tunes mu log-uniform [0.0001, 1]``: what ``fedsparse tune`` may change of ``strategy``."""
    from fedsparse.tuning.space import strategy_knobs

    knobs = strategy_knobs(strategy)
    return "tunes " + "; ".join(f"{k.path.rsplit('.', 1)[1]} {k.describe()}" for k in knobs) if knobs else ""


def cmd_list(args: argparse.Namespace) -> int:
    from fedsparse.catalog import STRATEGIES
    from fedsparse.plugins import PluginError, import_plugins
    from fedsparse.registry import registries
    from fedsparse.tuning.space import shared_knobs

    try:
        import_plugins(args.plugin)
    except PluginError as error:
        return _fail(error.problems, EXIT_BAD_CONFIG)
    for heading, registry in registries().items():
        print(f"{heading}:")
        names = registry.names()
        width = max(map(len, names), default=0)
        for name in names:
            where = registry.provenance(name)
            origin = where.distribution or where.module
            print(f"  {name:<{width}}  {where.summary}  [{origin}]".rstrip())
            knobs = _knobs_line(name) if registry is STRATEGIES else ""
            if knobs:
                print(f"  {'':<{width}}    {knobs}")
    print("every strategy also tunes: " + "; ".join(f"{k.path} {k.describe()}" for k in shared_knobs()))
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    from fedsparse.data import DataError
    from fedsparse.data.local import describe, import_dataset

    if args.action == "info":
        print("\n".join(describe()))
        return EXIT_OK
    try:
        target = import_dataset(args.dataset, Path(args.folder))
    except (DataError, KeyError) as error:
        return _fail([str(error).strip("'\"")], EXIT_FAILED)
    print(f"{args.dataset}: copied to {target}")
    return EXIT_OK


def _add_compare_command(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="run several strategies on the same federation, tabulate and plot them"
    )
    with_config(compare)
    compare.add_argument(
        "--strategies", metavar="A,B,...", help="comma-separated strategy names (default: compare.strategies)"
    )
    compare.add_argument("--seeds", type=int, help="seeds per strategy: seed, seed+1, ... (default: compare.seeds, 3)")
    compare.add_argument(
        "--target",
        type=float,
        metavar="ACC",
        help="accuracy in (0, 1] for 'MB to target' "
        "(default: compare.target, else 90%% of the weakest mean final accuracy)",
    )
    compare.add_argument(
        "--reference",
        metavar="NAME",
        help="strategy the others are tested against, paired by seed (default: compare.reference, else the first)",
    )
    compare.add_argument("--out", help="comparison folder (default: output.dir/<config>-compare)")
    compare.add_argument("--overwrite", action="store_true", help="re-run runs in --out made with another config")
    with_execution(compare, "runs at once, each in its own process, or each a Ray task on engine.ray_address")
    compare.set_defaults(handler=cmd_compare)


def with_execution(sub: argparse.ArgumentParser, jobs_help: str) -> None:
    """The options of a command that runs many runs: ``--jobs`` (same results whatever
    N), ``--no-progress``, ``--verbose``."""
    sub.add_argument("--jobs", type=int, default=1, metavar="N", help=f"{jobs_help} (same results)")
    sub.add_argument("--no-progress", action="store_true", help="no live round display during each run")
    sub.add_argument("--verbose", action="store_true", help="show Flower's and Ray's logs")


def _add_tune_command(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune", help="tune several strategies with the same budget, by validation accuracy (Optuna)"
    )
    with_config(tune)
    tune.add_argument(
        "--strategies",
        metavar="A,B,...",
        help="comma-separated strategy names (default: tune.strategies, else compare.strategies)",
    )
    tune.add_argument("--trials", type=int, help="trials per strategy, the same for all (default: tune.trials, 20)")
    tune.add_argument("--seeds", type=int, help="tuning seeds per trial: seed+1000, ... (default: tune.seeds, 2)")
    tune.add_argument("--out", help="tune folder (default: output.dir/<config>-tune)")
    tune.add_argument("--overwrite", action="store_true", help="start studies in --out made with another plan again")
    with_execution(
        tune, "runs at once (the trials of different strategies and seeds), each in its own process or a Ray task"
    )
    tune.set_defaults(handler=cmd_tune)


def _add_list_command(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser(
        "list", help="the strategies, client learners, models and datasets a config can name, and where each is from"
    )
    listing.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="import MODULE first")
    listing.set_defaults(handler=cmd_list)


def _add_data_command(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="local dataset copies: where each dataset is read from, import one")
    actions = data.add_subparsers(dest="action", required=True)
    actions.add_parser("info", help="the data root and where each dataset is read from")
    importing = actions.add_parser("import", help="copy a dataset folder into the data root ($FEDSPARSE_DATA)")
    importing.add_argument("dataset", help="dataset name, e.g. mnist")
    importing.add_argument("folder", help="folder holding the dataset's files (mnist: the four *-ubyte.gz files)")
    data.set_defaults(handler=cmd_data)


def with_config(sub: argparse.ArgumentParser, optional: bool = False) -> None:
    """The config argument and the options that change it: ``--set``, ``--plugin``."""
    sub.add_argument("config", nargs="?" if optional else None, help="experiment YAML file")
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set federation.rounds=5 (repeatable)",
    )
    sub.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: it registers strategies, models, datasets (repeatable; kept in the config)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedsparse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a simulated federation")
    with_config(run, optional=True)
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last checkpoint; with --set federation.rounds=N, "
        "extend a run (finished or not) to N rounds",
    )
    run.add_argument("--out", help="run directory (default: output.dir/<name>)")
    run.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument("--verbose", action="store_true", help="show Flower's and Ray's logs")
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="what goes into the run folder's run.log (default INFO)",
    )
    run.set_defaults(handler=cmd_run)

    validate = commands.add_parser("validate", help="check a config and exit")
    with_config(validate)
    validate.set_defaults(handler=cmd_validate)

    plot = commands.add_parser("plot", help="(re)draw the plots of a run, or of every run in a compare folder")
    plot.add_argument("run_dir", help="a run folder, or a `fedsparse compare` folder")
    plot.set_defaults(handler=cmd_plot)

    _add_compare_command(commands)

    _add_tune_command(commands)
    _add_list_command(commands)
    _add_data_command(commands)
    return parser


def _version() -> str:
    """``fedsparse 0.1.0 (Flower 1.x)``, from the installed distributions (nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("fedsparse")
    except PackageNotFoundError:
        ours = "(not installed)"
    try:
        flower = version("flwr")
    except PackageNotFoundError:
        flower = "not installed"
    return f"fedsparse {ours} (Flower {flower})"


RUNS_FEDERATIONS = ("run", "compare", "tune")  # commands that SIGTERM stops as Ctrl-C does


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` names (default: this process's arguments); its exit status."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command in RUNS_FEDERATIONS:
        from fedsparse.interrupts import sigterm_as_interrupt

        sigterm_as_interrupt()
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
