"""The sweep scripts' shared options: ``--rerun`` re-executes into a folder of its own,
never over the published archive or page."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ..conftest import REPO
from ..helpers import sweep_module


def test_rerun_moves_runs_archive_and_page_away_from_the_published_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = sweep_module()
    parser = sweep.sweep_parser(None, "bhfl")
    monkeypatch.setattr(sys, "argv", ["bhfl.py", "--seeds", "5"])
    published = sweep.sweep_args(parser, "bhfl")
    assert published.archive == REPO / "docs" / "results" / "data" / "bhfl"
    monkeypatch.setattr(sys, "argv", ["bhfl.py", "--seeds", "5", "--rerun"])
    rerun = sweep.sweep_args(parser, "bhfl")
    fresh = REPO / "runs" / "bhfl-rerun"
    assert (rerun.out, rerun.archive, rerun.results) == (fresh / "runs", fresh / "archive", fresh / "bhfl.md")
    monkeypatch.setattr(sys, "argv", ["bhfl.py", "--rerun", "--archive", "/tmp/mine"])
    assert sweep.sweep_args(parser, "bhfl").archive == Path("/tmp/mine")  # an explicit folder is kept


def test_every_page_names_its_rerun_command() -> None:
    for page in ("bhfl", "adaptcl", "fcl"):
        text = (REPO / "docs" / "results" / f"{page}.md").read_text()
        assert f"python simulations/{page}.py --seeds 5" in text and "--rerun`" in text, page
