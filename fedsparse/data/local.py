"""Local dataset copies: where each dataset is read from, and importing a folder into
the data root (``fedsparse data info`` / ``fedsparse data import``)."""

from __future__ import annotations

from pathlib import Path

from fedsparse.data.hub import HubLoader
from fedsparse.data.root import data_root, import_copy, local_copy
from fedsparse.data.sources import DATASETS, DataError, idx_files


def where(dataset: str) -> str:
    """Where a run with no ``data.path`` reads ``dataset`` from, in words."""
    source = DATASETS.get(dataset)
    if isinstance(source.load, HubLoader) and local_copy(dataset) is not None:
        return f"local copy {local_copy(dataset)} (the hub's layout)"
    if not source.info.needs_path:
        return "embedded in a package" if dataset == "digits" else "the Hugging Face hub"
    folder = local_copy(dataset)
    return f"local copy {folder}" if folder is not None else "the Hugging Face hub (no local copy)"


def import_dataset(dataset: str, source: Path) -> Path:
    """Check that ``source`` holds a complete copy of ``dataset`` (by loading it), then
    copy it into the data root; returns the new folder. :class:`DataError` says what is
    wrong otherwise."""
    info = DATASETS.get(dataset).info
    if not info.needs_path:
        raise DataError(f"{dataset} has no local-folder format to import (it is embedded or read from the hub)")
    if not source.is_dir():
        raise DataError(f"{source} is not a folder")
    files = idx_files(source)
    DATASETS.get(dataset).load(source, 0, 0.2)
    return import_copy(dataset, source, files)


def describe() -> list[str]:
    """One line per dataset: where it would be read from; the data root first."""
    return [f"data root: {data_root()}"] + [f"{name}: {where(name)}" for name in DATASETS.names()]
