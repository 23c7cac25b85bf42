"""A talkative start: each start-up step on the console as it begins and in run.log with
its seconds, and the clients' replies reported inside a round."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsparse import startup
from fedsparse.callbacks.progress import ProgressDisplay
from fedsparse.config import apply_overrides, read_yaml, validate_config
from fedsparse.data.federated import load_federated_data
from fedsparse.runlog import RUN_LOG
from fedsparse.runner import run_experiment

from .helpers import QUICKSTART_STEPS, REPO

STEPS = list(QUICKSTART_STEPS)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[tuple[int, int, int]]]:
    """The quickstart for 2 rounds, console on (stdout captured: plain lines); what it
    printed, and every (round, done, sent) the progress display heard."""
    out = tmp_path_factory.mktemp("startup") / "run"
    raw = apply_overrides(read_yaml(REPO / "configs" / "quickstart.yaml"), ["federation.rounds=2"])
    heard: list[tuple[int, int, int]] = []
    load_federated_data.cache_clear()  # as in a fresh process: partitioning runs (and is announced) once per process
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ProgressDisplay, "on_reply", lambda self, *reply: heard.append(reply))
        printed = _printed(lambda: run_experiment(validate_config(raw), out))
    return out, printed, heard


def _printed(run) -> str:  # type: ignore[no-untyped-def]
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run()
    return buffer.getvalue()


def test_the_console_names_each_start_up_step_before_round_1(
    short_run: tuple[Path, str, list[tuple[int, int, int]]],
) -> None:
    _, printed, _ = short_run
    lines = printed.splitlines()
    assert lines[: len(STEPS)] == [f"{what}…" for what in STEPS]
    assert lines[len(STEPS)].startswith("round 1/2 · accuracy ")


def test_run_log_has_one_timed_line_per_step_in_order_then_round_1(
    short_run: tuple[Path, str, list[tuple[int, int, int]]],
) -> None:
    out, _, _ = short_run
    logged = (out / RUN_LOG).read_text().splitlines()
    ours = [line.split(startup.LOG_PREFIX, 1)[1] for line in logged if startup.LOG_PREFIX in line]
    assert [line.rsplit(" took ", 1)[0] for line in ours[:-1]] == STEPS
    assert all(line.endswith(" s") and float(line.split(" took ")[1][:-2]) >= 0 for line in ours[:-1])
    assert ours[-1].startswith("round 1 begins ") and ours[-1].endswith(" s after the start")
    first_round = next(i for i, line in enumerate(logged) if " round 1/2 · " in line)
    assert max(i for i, line in enumerate(logged) if startup.LOG_PREFIX in line) < first_round


def test_the_progress_display_hears_each_reply_of_each_round(
    short_run: tuple[Path, str, list[tuple[int, int, int]]],
) -> None:
    _, _, heard = short_run
    training = [(r, done, sent) for r, done, sent in heard if sent == 5]
    assert training == [(r, done, 5) for r in (1, 2) for done in range(1, 6)], heard


def test_without_a_run_being_started_the_marks_do_nothing() -> None:
    startup.step("anything")
    startup.open_log()
    startup.first_round()
