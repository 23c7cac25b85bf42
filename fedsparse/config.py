"""The experiment schema: one pydantic tree that mirrors the YAML file.

Everything a run reads comes through :func:`load_config`, including ``--set`` overrides,
so a bad value is caught with the same message whether it came from the file or from
the command line. Errors are collected, not raised one by one, and each names its YAML
path (``federation.rounds: must be >= 1``).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import math
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from fedsparse.catalog import STRATEGIES
from fedsparse.data.sources import DATASETS
from fedsparse.plugins import PluginError, import_plugins
from fedsparse.registry import did_you_mean
from fedsparse.sections import QUICK, DataConfig, ModelConfig, Strict, TrainingConfig, quick
from fedsparse.tuning.space import KnobSpec


class ConfigError(ValueError):
    """A config is invalid; ``problems`` holds one ``path: message`` line per fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ProfileConfig(Strict):
    """A kind of device and its share of the federation; later methods add fields."""

    name: str = "default"
    share: float = Field(1.0, gt=0.0, le=1.0)
    bitwidth: int = Field(32, description="32 = float32, 16 = float16, 2-15 = integer bits")
    speed: float = Field(1.0, gt=0.0, description="compute speed, a multiple of federation.reference_gflops")
    bandwidth_mbps: float | None = Field(
        None, gt=0.0, description="link bandwidth each way in Mbit/s; null: transfers take no simulated time"
    )
    width: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="HeteroFL/FedRolex model width (kept fraction); null: from speed, see devices.heterofl_width",
    )

    @field_validator("bitwidth")
    @classmethod
    def _known_bitwidth(cls, value: int) -> int:
        if value != 32 and not 2 <= value <= 16:
            raise ValueError("must be 32 (float32), 16 (float16) or 2..15 (integer bits)")
        return value


class FederationConfig(TrainingConfig):
    """Who takes part and how rounds run; the local-training fields come from
    :class:`~fedsparse.sections.TrainingConfig`, which clients receive as it is."""

    num_clients: int = Field(10, ge=1, le=1_000_000)
    clients_per_round: int = Field(10, ge=1)
    rounds: int = Field(10, ge=1)
    min_replies: int = Field(1, ge=1, description="fewer valid replies: round skipped")
    eval_every: int = Field(1, ge=1, description="server-side evaluation period (test and validation sets)")
    evaluate_test: bool = Field(
        True,
        description="evaluate on the test split (false: only on data.validation's set; `fedsparse tune` "
        "sets it, so tuning never reads the test set)",
    )
    client_eval_every: int = Field(0, ge=0, description="federated evaluation; 0 = off")
    round_timeout: float = Field(600.0, gt=0.0, description="seconds to wait for replies")
    deadline_seconds: float | None = Field(
        None,
        gt=0.0,
        description="simulated seconds the server waits in a round: a client slower than this (simulation "
        "clock) is dropped from the aggregate and the round ends at the deadline (null: wait for everyone)",
    )
    profiles: list[ProfileConfig] = Field(default_factory=lambda: [ProfileConfig()], min_length=1)
    reference_gflops: float = Field(
        1.0, gt=0.0, description="training GFLOP/s of a speed-1.0 device (the simulation clock)"
    )
    clock: Literal["simulated", "measured"] | None = Field(
        None,
        description="where a client's round time comes from: simulated (counted FLOPs and bytes over its "
        "profile) or measured (the seconds the client reports it trained, plus its profile's transfer time); "
        "null: measured on deployed SuperNodes, simulated otherwise",
    )
    clock_jitter: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="device-time noise: each client's simulated round time is multiplied by a seeded factor "
        "uniform in [1 - jitter, 1 + jitter], drawn anew per client and round",
    )
    max_num_examples: int | None = Field(
        None,
        ge=1,
        description="deployed devices that declare no num-examples in their node config: the most num-examples "
        "a reply may report (null: twice the largest training set the data section gives a client); "
        "simulated clients are bounded by their partition",
    )
    max_skipped_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="a run that skips more than this share of its rounds ends with a warning naming the most "
        "frequent rejection reasons (summary status 'degraded'); one that aggregates no round fails",
    )


class ClientResources(Strict):
    num_cpus: float = Field(1.0, gt=0.0)
    num_gpus: float = Field(0.0, ge=0.0)


class EngineConfig(Strict):
    backend: Literal["inline", "ray", "flower-ray"] = Field(
        "inline",
        description="inline: in-process; ray: clients in Ray actors (GPU shares, clusters); "
        "flower-ray: Flower's own Ray simulation engine",
    )
    ray_address: str | None = Field(None, description="attach to this Ray cluster (backend ray or flower-ray)")
    client_resources: ClientResources = ClientResources()
    client_app: str | None = Field(
        None,
        description="a Flower ClientApp of your own, 'package.module:attribute' (importable from the "
        "working folder), run on the simulated nodes instead of fedsparse's (inline and ray engines); "
        "float32, under strategies whose clients train the model they receive (fedavg, fedavg_momentum, Flower's)",
    )
    client_run_config: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description="the run config engine.client_app reads (Context.run_config), as "
        "[tool.flwr.app.config] gives it under flwr run",
    )

    @field_validator("client_app")
    @classmethod
    def _object_reference(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:[\w.]+", value):
            raise ValueError(f"expected 'package.module:attribute', got {value!r}")
        return value


TrackerName = Literal["tensorboard", "mlflow", "wandb"]  # each is also its package's module and its extra


def _listed_once(value: list[str]) -> list[str]:
    """A list of names in which none appears twice."""
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return value


class OutputConfig(Strict):
    """Where a run's results go and which experiment trackers see them. A tracker field
    left null leaves the library to its own defaults and environment variables."""

    dir: str = "runs"
    name: str | None = Field(None, description="run folder name, inside dir; default: derived")
    plots: bool = True
    progress: bool = True
    checkpoint: bool = Field(True, description="write the server's state after every round (for --resume)")
    trackers: list[TrackerName] = Field(
        default_factory=list,
        description="experiment trackers that get the config and every round's metrics row: "
        "tensorboard (event files in <run folder>/tensorboard), mlflow, wandb; "
        "each needs its extra, e.g. pip install 'fedsparse[mlflow]'",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking store or server (e.g. sqlite:///runs/mlflow.db, http://host:5000); "
        "null: MLFLOW_TRACKING_URI, else MLflow's own default (a store in the working folder)",
    )
    mlflow_experiment: str | None = Field(
        None, description="MLflow experiment name; null: MLFLOW_EXPERIMENT_NAME, else 'fedsparse'"
    )
    wandb_project: str | None = Field(None, description="W&B project; null: WANDB_PROJECT, else W&B's default")
    wandb_mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="W&B mode; null: WANDB_MODE, else online (offline runs upload later with wandb sync)"
    )

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str | None) -> str | None:
        """A name is one folder inside ``dir``: a shared config cannot aim the run elsewhere."""
        if name is not None and (name in ("", ".", "..") or any(sep in name for sep in "/\\")):
            raise ValueError("must be a single folder name (no path separators, not '.' or '..')")
        return name

    @field_validator("trackers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return _listed_once(value)


class StrategyConfig(BaseModel):
    """``strategy: {name: ..., <name>: {params}}``: one block per registered strategy
    (built-in or plugin, looked up when a config is validated), each validated against
    that strategy's parameter schema.

    Every block is present with its defaults, so ``--set strategy.name=fedavg`` switches
    strategy on a config written for another one without any other edit.
    """

    model_config = ConfigDict(extra="allow")

    name: str = "fedavg"

    @model_validator(mode="before")
    @classmethod
    def _blocks(cls, raw: Any, info: ValidationInfo) -> Any:
        if not isinstance(raw, dict) or quick(info):
            return raw  # pydantic reports a type error; the quick check leaves the blocks to the full one
        blocks: dict[str, Any] = {"name": raw.get("name", "fedavg")}
        errors: list[InitErrorDetails] = [
            {"type": "extra_forbidden", "loc": (key,), "input": raw[key]}
            for key in raw
            if key != "name" and key not in STRATEGIES
        ]
        for name in STRATEGIES.names():
            try:
                blocks[name] = STRATEGIES.get(name).params.model_validate(raw.get(name) or {})
            except ValidationError as error:
                errors += [relocated(detail, name) for detail in error.errors()]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return blocks

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        return name if quick(info) else STRATEGIES.validate_name(name)


def relocated(detail: ErrorDetails, *prefix: str | int) -> InitErrorDetails:
    """A nested model's validation error, re-raised at ``prefix`` + its own location."""
    moved: InitErrorDetails = {"type": detail["type"], "loc": (*prefix, *detail["loc"]), "input": detail["input"]}
    if "ctx" in detail:
        moved["ctx"] = detail["ctx"]
    return moved


class CompareConfig(Strict):
    """``fedsparse compare``'s defaults (its command-line flags override them)."""

    strategies: list[str] = Field(default_factory=list, description="strategies to run on the same federation")
    seeds: int = Field(3, ge=1, description="seeds seed, seed+1, ...; every strategy runs each")
    target: float | None = Field(
        None, gt=0.0, le=1.0, description="accuracy for 'MB to target'; null: 90 % of the weakest mean final accuracy"
    )
    reference: str | None = Field(
        None, description="strategy the others are tested against, paired by seed; null: the first of strategies"
    )
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per strategy, config values only it runs with (dotted path → value), e.g. its tuned ones",
    )
    tuning: dict[str, Any] | None = Field(
        None, description="how the settings were tuned, as `fedsparse tune` writes it; stated on the page"
    )

    @field_validator("strategies")
    @classmethod
    def _distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for name in [] if quick(info) else value:
            STRATEGIES.validate_name(name)
        return _listed_once(value)


class TuneConfig(Strict):
    """``fedsparse tune``'s defaults (its command-line flags override them)."""

    strategies: list[str] = Field(
        default_factory=list, description="strategies to tune (default: compare.strategies), each with the same budget"
    )
    trials: int = Field(20, ge=1, description="trials per strategy: every strategy gets the same number")
    seeds: int = Field(2, ge=1, description="tuning seeds per trial: seed+1000, seed+1001, ... (never compare's)")
    last_rounds: int = Field(
        3, ge=1, description="objective: the mean validation accuracy of the last this many evaluated rounds"
    )
    sampler_seed: int = Field(0, ge=0, description="seeds Optuna's TPE sampler (the same seed: the same trials)")
    space: dict[str, KnobSpec | None] = Field(
        default_factory=dict,
        description="replaces, adds (a range) or drops (null) a knob of the declared search space, by config path",
    )

    @field_validator("strategies")
    @classmethod
    def _distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for name in [] if quick(info) else value:
            STRATEGIES.validate_name(name)
        return _listed_once(value)


class ExperimentConfig(Strict):
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    federation: FederationConfig = FederationConfig()
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    plugins: list[str] = Field(
        default_factory=list, description="modules imported before validation: they register strategies, models, …"
    )
    engine: EngineConfig = EngineConfig()
    output: OutputConfig = OutputConfig()
    # read by `fedsparse compare` only; not part of a run's resolved config
    compare: CompareConfig | None = Field(None, exclude=True)
    # read by `fedsparse tune` only; not part of a run's resolved config
    tune: TuneConfig | None = Field(None, exclude=True)

    def strategy_params(self) -> BaseModel:
        params = getattr(self.strategy, self.strategy.name)
        assert isinstance(params, BaseModel)
        return params


# --------------------------------------------------------------------------- errors


def _friendly(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    bounds = {
        "greater_than_equal": ("must be >= {ge}", "ge"),
        "greater_than": ("must be > {gt}", "gt"),
        "less_than_equal": ("must be <= {le}", "le"),
        "less_than": ("must be < {lt}", "lt"),
    }
    if kind in bounds:
        template, key = bounds[kind]
        return template.format(**{key: ctx.get(key)})
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {error.get('input')!r})"
    return str(error["msg"])


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names the schema allows inside the section at ``loc`` (list indexes
    skipped; a strategy block's are its parameters); [] where that is not a section."""
    model: type[BaseModel] | None = ExperimentConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if model is StrategyConfig:
            model = STRATEGIES.get(part).params if part in STRATEGIES else None
        else:
            field = model.model_fields.get(str(part))
            model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return ["name", *STRATEGIES.names()] if model is StrategyConfig else list(model.model_fields)


def format_validation_error(error: ValidationError) -> list[str]:
    """One ``path: reason`` line per fault; an unknown field's line names the closest
    known field of its section, if one is close."""
    lines = []
    for detail in error.errors():
        line = f"{_path(detail['loc'])}: {_friendly(detail)}"
        if detail["type"] == "extra_forbidden" and detail["loc"]:
            line += did_you_mean(str(detail["loc"][-1]), fields_at(tuple(detail["loc"][:-1])))
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- semantics


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _ray_installed() -> bool:
    """Ray's package is importable; a bare ``ray`` folder on ``sys.path`` (Ray's session
    folder /tmp/ray, seen from a working directory of /tmp) is a namespace package, not Ray."""
    spec = importlib.util.find_spec("ray")
    return spec is not None and spec.origin is not None


def _engine_problems(cfg: ExperimentConfig) -> list[str]:
    """The Ray engines' settings against the backend, Ray being installed at all (it comes
    with the ``simulation`` extra, not with the default install), and client resources
    against the cluster's when one is named."""
    engine = cfg.engine
    if engine.backend == "inline":
        if engine.ray_address is not None:
            return ["engine.ray_address: only the Ray engines attach to a cluster; set engine.backend: ray"]
        return []
    if not _ray_installed():
        return [
            f"engine.backend: {engine.backend} needs Ray, which is not installed: pip install 'fedsparse[simulation]'"
        ]
    if engine.ray_address is None:
        return []
    from fedsparse.ray_grid import cluster_resources

    try:
        totals = cluster_resources(engine.ray_address)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError, …
        return [f"engine.ray_address: cannot attach to a Ray cluster at {engine.ray_address}: {error}"]
    problems = []
    for field, total in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        asked = getattr(engine.client_resources, field)
        if asked > totals.get(total, 0.0):
            problems.append(
                f"engine.client_resources.{field}: {asked:g} per client, but the cluster at "
                f"{engine.ray_address} has {totals.get(total, 0.0):g} {total} in all"
            )
    return problems


def federation_problems(cfg: ExperimentConfig) -> list[str]:
    """The cross-field checks of the federation's counts and shares (torch-free: the quick
    first check makes them too)."""
    problems: list[str] = []
    fed = cfg.federation
    if fed.clients_per_round > fed.num_clients:
        problems.append(f"federation.clients_per_round: must be <= federation.num_clients ({fed.num_clients})")
    if fed.min_replies > fed.clients_per_round:
        problems.append(f"federation.min_replies: must be <= federation.clients_per_round ({fed.clients_per_round})")
    share_sum = sum(p.share for p in fed.profiles)
    if not math.isclose(share_sum, 1.0, abs_tol=1e-6):
        problems.append(f"federation.profiles: shares must sum to 1 (they sum to {share_sum:g})")
    if not fed.evaluate_test and not cfg.data.validation and cfg.data.tasks is None:
        problems.append("federation.evaluate_test: false leaves nothing to evaluate; set data.validation > 0")
    return problems


def semantic_problems(cfg: ExperimentConfig) -> list[str]:
    """Checks that need more than one field, the file system or the machine."""
    problems = federation_problems(cfg)
    fed = cfg.federation
    problems += STRATEGIES.get(cfg.strategy.name).problems(cfg.strategy_params(), cfg)

    info = DATASETS.get(cfg.data.dataset).info
    if cfg.data.path is not None:
        if not Path(cfg.data.path).is_dir():
            problems.append(f"data.path: folder {cfg.data.path!r} does not exist")
    elif info.needs_path and not info.path_optional:
        problems.append(f"data.path: required for dataset {cfg.data.dataset!r}")
    part = cfg.data.partition
    if part.method == "pathological" and part.classes_per_client > info.num_classes:
        problems.append(
            f"data.partition.classes_per_client: must be <= {info.num_classes} (classes in {cfg.data.dataset})"
        )
    if part.method == "pathological" and part.classes_per_client * fed.num_clients < info.num_classes:
        problems.append(
            f"data.partition.classes_per_client: clients × classes_per_client must cover all {info.num_classes} classes"
        )

    problems += _task_problems(cfg, info.num_classes)
    problems += _tracker_problems(cfg.output)

    problems += _model_problems(cfg, info.input_shape, info.num_classes)

    problems += _engine_problems(cfg)
    problems += _client_app_problems(cfg)
    resources = cfg.engine.client_resources
    if resources.num_gpus > 0 and cfg.engine.ray_address is None and not _cuda_available():
        problems.append(
            "engine.client_resources.num_gpus: GPU shares asked for, but this machine "
            "has no CUDA GPU (Ray would wait forever); set it to 0"
        )
    return problems


def _client_app_problems(cfg: ExperimentConfig) -> list[str]:
    """A ClientApp of one's own (``engine.client_app``) against what only fedsparse's
    clients do: low-bit formats, client learners (sub-models, stateful ones), task streams."""
    engine = cfg.engine
    if engine.client_app is None:
        return ["engine.client_run_config: set only with engine.client_app"] if engine.client_run_config else []
    from fedsparse.engine import load_client_app

    try:
        load_client_app(engine.client_app)
    except ValueError as error:
        return [f"engine.client_app: {error}"]
    own = "a ClientApp of your own (engine.client_app)"
    problems = []
    if not STRATEGIES.get(cfg.strategy.name).stock_clients:
        stock = sorted(name for name in STRATEGIES.names() if STRATEGIES.get(name).stock_clients)
        problems.append(f"strategy.name: {cfg.strategy.name!r} needs fedsparse's clients; {own} runs {stock}")
    if any(profile.bitwidth != 32 for profile in cfg.federation.profiles):
        problems.append(f"federation.profiles: {own} trains at float32; set every bitwidth to 32")
    if cfg.data.tasks is not None:
        problems.append(f"data.tasks: task streams need fedsparse's clients, not {own}")
    if engine.backend == "flower-ray":
        problems.append(f"engine.backend: {own} runs on inline or ray (Flower's engine gives no run config)")
    return problems


def _model_problems(cfg: ExperimentConfig, input_shape: tuple[int, int, int], num_classes: int) -> list[str]:
    """``model.options`` against the model's builder (its keyword arguments but the
    shapes), then the built model against the strategy; each line names the model and
    the options it takes."""
    from fedsparse.models import MODELS, build_model

    name, options = cfg.model.name, cfg.model.options
    parameters = inspect.signature(MODELS.get(name)).parameters
    known = [key for key in parameters if key not in ("input_shape", "num_classes")]
    takes = f"model {name!r} takes {', '.join(known) or 'no options'}"
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = [key for key in options if key not in known]
        if unknown:
            return [f"model.options.{key}: unknown option; {takes}{did_you_mean(key, known)}" for key in unknown]
    try:
        model = build_model(name, input_shape, num_classes, **options)
    except (TypeError, ValueError) as error:
        return [f"model.options: model {name!r} cannot be built with {options} ({error}); {takes}"]
    return STRATEGIES.get(cfg.strategy.name).model_problems(model)


def _tracker_problems(output: OutputConfig) -> list[str]:
    """A tracker asked for whose package is not installed (checked without importing it)."""
    return [
        f"output.trackers: {name!r} needs the {name} package; pip install 'fedsparse[{name}]'"
        for name in output.trackers
        if importlib.util.find_spec(name) is None
    ]


def _task_problems(cfg: ExperimentConfig, num_classes: int) -> list[str]:
    """Task streams against the strategy and the rest of the federation."""
    spec = STRATEGIES.get(cfg.strategy.name)
    tasks = cfg.data.tasks
    if tasks is None:
        problems = [f"strategy.name: {cfg.strategy.name!r} learns task streams; set data.tasks"]
        if cfg.federation.lr_plateau is not None:
            problems.append("federation.lr_plateau: schedules task streams only; set data.tasks")
        return problems if spec.requires_tasks else problems[1:]
    if not spec.supports_tasks:
        runs_tasks = sorted(name for name in STRATEGIES.names() if STRATEGIES.get(name).supports_tasks)
        return [f"strategy.name: {cfg.strategy.name!r} does not run task streams (data.tasks); use one of {runs_tasks}"]
    problems = tasks.problems(num_classes)
    fed = cfg.federation
    if fed.rounds != tasks.total_rounds:
        problems.append(
            "federation.rounds: must be data.tasks.num_tasks × rounds_per_task = "
            f"{tasks.total_rounds} (got {fed.rounds})"
        )
    if fed.client_eval_every:
        problems.append(
            "federation.client_eval_every: must be 0 with data.tasks (clients report task accuracies when they train)"
        )
    if cfg.data.validation:
        problems.append(
            "data.validation: task streams hold out a validation share of each task on the clients; "
            "use data.tasks.val_fraction"
        )
    if fed.lr_plateau is not None and tasks.val_fraction == 0:
        problems.append("federation.lr_plateau: needs a validation set; set data.tasks.val_fraction > 0")
    if any(profile.bitwidth != 32 for profile in fed.profiles):
        problems.append("federation.profiles: task streams train at float32; set every bitwidth to 32")
    return problems


# --------------------------------------------------------------------------- loading


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], value), the value parsed as YAML (3, 0.1, true, [1])."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"--set {text!r}: expected KEY=VALUE, e.g. federation.rounds=5"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError([f"--set {text!r}: {where} is not a section"])
            node = child
        node[keys[-1]] = value
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError([f"{path}: cannot read ({error.strerror})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{path}: invalid YAML{where}: {problem}"]) from None
    if raw is None:
        raise ConfigError([f"{path}: empty; a config needs at least one section (configs/quickstart.yaml is one)"])
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections"])
    return raw


def with_plugins(raw: dict[str, Any], plugins: list[str]) -> dict[str, Any]:
    """``raw`` with ``plugins`` (``--plugin``) appended to its ``plugins`` list."""
    if plugins:
        listed = raw.get("plugins")
        raw["plugins"] = list(dict.fromkeys([*(listed if isinstance(listed, list) else []), *plugins]))
    return raw


def import_config_plugins(raw: dict[str, Any]) -> None:
    """Import the config's ``plugins`` first: they register names the rest is checked against."""
    plugins = raw.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(name, str) for name in plugins):
        raise ConfigError(["plugins: must be a list of module names"])
    try:
        import_plugins(plugins)
    except PluginError as error:
        raise ConfigError(error.problems) from None


def quick_problems(raw: dict[str, Any]) -> list[str]:
    """The faults of ``raw`` that show without torch, in a fraction of a second: those of
    every field but the strategy blocks (and the strategy and model names, which need the
    registries that load torch), and the cross-field checks among them
    (:func:`federation_problems`). ``[]`` does not mean valid: :func:`validate_config` checks the rest."""
    try:
        cfg = ExperimentConfig.model_validate(raw, context={QUICK: True})
    except ValidationError as error:
        return format_validation_error(error) + _problems_beside(raw, error.errors(), first_pass=True)
    return federation_problems(cfg)


def validate_config(raw: dict[str, Any], quick_first: bool = False) -> ExperimentConfig:
    """The config ``raw`` describes; :class:`ConfigError` listing every fault, those of
    single fields and those between fields (:func:`semantic_problems`) together.

    ``quick_first`` (the CLI): when :func:`quick_problems` finds faults, they alone are
    raised, before torch is imported; the faults only the full check finds (a strategy's
    parameters, model options) then come once those are fixed."""
    import_config_plugins(raw)
    problems = quick_problems(raw) if quick_first else []
    if problems:
        raise ConfigError(problems)
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        details = error.errors()
        raise ConfigError(format_validation_error(error) + _problems_beside(raw, details)) from None
    problems = semantic_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _drop(raw: Any, loc: tuple[Any, ...]) -> None:
    """Remove the value at ``loc`` from ``raw`` (the deepest part of it that exists; a
    list entry becomes an empty section), so that its default takes its place."""
    parents: list[tuple[Any, Any]] = []
    node = raw
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            parents.append((node, part))
            node = node[part]
        else:
            break
    if parents:
        container, key = parents[-1]
        if isinstance(container, dict):
            del container[key]
        else:
            container[key] = {}


# a name that failed, and the sections whose checks would then be about its default
NAME_DEPENDENTS = {"model.name": ("model.",), "strategy.name": ("strategy.",), "data.dataset": ("data.", "model.")}


def _problems_beside(raw: dict[str, Any], details: list[ErrorDetails], first_pass: bool = False) -> list[str]:
    """The cross-field problems of a config whose schema check failed: checked on a copy
    without the failing fields (defaults in their place), leaving out every line that
    names a failing field (it would be about the default, not the value given).
    ``first_pass``: the quick first check's schema and cross-field checks (:func:`quick_problems`)."""
    context, checks = ({QUICK: True}, federation_problems) if first_pass else (None, semantic_problems)
    failed = [_path(detail["loc"]) for detail in details]
    dependent = tuple(prefix for path in failed for prefix in NAME_DEPENDENTS.get(path, ()))
    repaired = copy.deepcopy(raw)
    for _ in range(3):  # a dropped section may uncover a fault inside its default's neighbours
        for detail in details:
            _drop(repaired, tuple(detail["loc"]))
        try:
            cfg = ExperimentConfig.model_validate(repaired, context=context)
        except ValidationError as error:
            details = error.errors()
            continue
        lines = checks(cfg)
        return [line for line in lines if not line.startswith(dependent) and not any(p in line for p in failed)]
    return []


def absolute_data_path(raw: dict[str, Any], base: Path) -> None:
    """A relative ``data.path`` in ``raw``, made absolute against ``base``."""
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
        data["path"] = str((base / data["path"]).resolve())


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    plugins: list[str] | None = None,
    quick_first: bool = False,
) -> ExperimentConfig:
    """Read, override and validate; raises :class:`ConfigError` listing every fault.
    ``plugins`` (``--plugin``) are added to the config's own ``plugins`` list;
    ``quick_first``: see :func:`validate_config`.

    A relative ``data.path`` is resolved against the YAML file's folder (a shipped config
    runs from any working directory); one given with ``--set``, against the working
    directory, as any path typed on a command line.
    """
    raw = read_yaml(Path(path))
    absolute_data_path(raw, Path(path).parent)
    raw = apply_overrides(raw, overrides or [])
    absolute_data_path(raw, Path.cwd())
    return validate_config(with_plugins(raw, plugins or []), quick_first)


def changed_fields(before: ExperimentConfig, after: ExperimentConfig) -> list[str]:
    """The dotted paths of the resolved fields whose values differ between two configs."""

    def walk(ours: Any, theirs: Any, path: str) -> list[str]:
        if isinstance(ours, dict) and isinstance(theirs, dict):
            keys = sorted(set(ours) | set(theirs), key=str)
            return [found for key in keys for found in walk(ours.get(key), theirs.get(key), f"{path}{key}.")]
        return [] if ours == theirs else [path.rstrip(".")]

    return walk(before.model_dump(mode="json"), after.model_dump(mode="json"), "")


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML: every default spelled out, loadable again."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
