"""The config sections a client needs: data, model and local training.

They are part of the experiment config (:mod:`fedsparse.config`) and travel to every
client as they are, inside the client task (:class:`fedsparse.task.ClientTask`), so a
new field here reaches the clients with no other edit. This module imports no strategy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fedsparse.data.hub import HubDataset, declare
from fedsparse.data.partition import PartitionConfig
from fedsparse.data.sources import DATASETS
from fedsparse.data.tasks import TasksConfig
from fedsparse.tuning.space import tunable

QUICK = "quick"  # the validation context's flag of the quick first check (fedsparse.config.quick_problems)


def quick(info: ValidationInfo) -> bool:
    """Whether this validation is the quick first check, which skips the lookups that load
    torch (the strategies' and the models' registries); the full validation makes them."""
    return bool(info.context and info.context.get(QUICK))


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class DataConfig(Strict):
    # before ``dataset``: a declared hub dataset is registered under ``dataset``'s name
    hub: HubDataset | None = Field(None, description="declares data.dataset: a hub image dataset (fedsparse.data.hub)")
    dataset: str = "digits"
    path: str | None = Field(None, description="local folder: an IDX copy (mnist, fashion_mnist), a hub-layout copy")
    partition: PartitionConfig = PartitionConfig()
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="digits only")
    server_samples: int = Field(
        0, ge=0, description="training samples held out for the server (e.g. ProWD's distillation buffer)"
    )
    validation: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="share of the training data held out on the server, stratified by label and seeded, as a "
        "validation set for tuning and model selection (never the test split); 0: none. `fedsparse compare` and "
        "`fedsparse tune` make it 0.1 when the config leaves it unset",
    )
    tasks: TasksConfig | None = Field(
        None, description="continual learning: each client learns a stream of tasks (partition is then unused)"
    )

    @field_validator("dataset")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        if "hub" not in info.data:
            return name  # data.hub is invalid, and reported: nothing to check the name against
        hub = info.data["hub"]
        if hub is not None:
            declare(name, hub)
            return name
        return DATASETS.validate_name(name)


class ModelConfig(Strict):
    name: str = "cnn"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        if quick(info):
            return name  # the models load torch: checked by the full validation
        from fedsparse.models import MODELS

        return MODELS.validate_name(name)


class PlateauConfig(Strict):
    """Reduce-on-plateau on a task stream, per client and task (FedWeIT's official client).

    After each round's local training the client measures its loss on the current task's
    validation set (``data.tasks.val_fraction``); when that loss has not improved on the
    task's best for ``patience`` rounds, the learning rate is divided by ``factor`` and the
    count starts again. The rate and count carry over between rounds; a new task starts at
    ``lr``.
    """

    patience: int = Field(3, ge=1, description="rounds without a new best validation loss before a drop")
    factor: float = Field(3.0, gt=1.0, description="the learning rate is divided by this at each drop")


class AugmentConfig(Strict):
    """Train-time image augmentation, drawn from the client's seeded generator: a random
    crop of the image padded by ``crop_padding`` pixels (zeros), and a left-right flip
    with probability 1/2 (off for digits and characters, which flipping changes)."""

    crop_padding: int = Field(0, ge=0, description="pixels of padding before a random crop of the original size")
    flip: bool = Field(False, description="flip left-right with probability 1/2")


class TrainingConfig(Strict):
    """A client's local training (the ``federation`` section's fields that clients use)."""

    local_epochs: int = Field(1, ge=1, json_schema_extra=tunable(1, 5))
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0.0, json_schema_extra=tunable(1e-3, 0.3, log=True))
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.0, ge=0.0, lt=1.0, json_schema_extra=tunable(0.0, 0.95))
    weight_decay: float = Field(0.0, ge=0.0)
    lr_plateau: PlateauConfig | None = Field(
        None, description="task streams: divide the learning rate when the task's validation loss stalls"
    )
    augment: AugmentConfig | None = Field(None, description="train-time image augmentation (null: none)")
    restricted_softmax: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="FedRS (Li & Zhan, 2021): in local training, the logits of classes absent from the client's "
        "data are scaled by this alpha (0: they get no update; null: off), against label skew",
    )
