"""The data root: one folder of local dataset copies, one sub-folder per dataset.

A dataset the config gives no ``data.path`` for is read from ``<data root>/<dataset>/``
when that folder exists, and downloaded from the Hugging Face hub (Flower Datasets)
otherwise. The data root is ``$FEDSPARSE_DATA``, else ``$XDG_DATA_HOME/fedsparse``
(``~/.local/share/fedsparse``), so an offline machine with local copies runs every
shipped config unchanged. ``fedsparse data import DATASET FOLDER`` puts a copy there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DATA_ROOT_ENV = "FEDSPARSE_DATA"


def data_root() -> Path:
    """``$FEDSPARSE_DATA``, else the per-user default."""
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "fedsparse"


def local_copy(dataset: str) -> Path | None:
    """The data root's folder for ``dataset``, if there is one."""
    folder = data_root() / dataset
    return folder if folder.is_dir() else None


def import_copy(dataset: str, source: Path, files: list[str]) -> Path:
    """Copy ``files`` (names inside ``source``) to the data root's folder for ``dataset``.

    The copy goes to a temporary folder first and replaces the old one only when
    complete, so an interrupted import leaves no half copy to be read later.
    """
    target = data_root() / dataset
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in files:
        shutil.copyfile(source / name, partial / name)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target
