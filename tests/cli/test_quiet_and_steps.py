"""Quiet by default, the libraries' own output with -v, and the steps a long command says as it goes."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.silences import silences
from service.cli import progress
from service.cli.quiet import QUIET_ENV
from service.progress import step

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")

NOISY = """
import warnings
{setup}
from mlflow.utils.logging_utils import enable_logging, eprint
enable_logging()  # as MLflow itself does after saving a model
eprint("Registered model 'm' already exists. Creating a new version of this model...")
warnings.warn("scipy: precision loss", RuntimeWarning)
"""


@pytest.mark.parametrize(
    ("setup", "shown"), [("", True), ("from service.cli.quiet import quiet_libraries\nquiet_libraries()", False)]
)
def test_quiet_silences_mlflow_prints_and_warnings_even_after_mlflow_reenables_them(setup: str, shown: bool) -> None:
    # Not this process's environment as is: a CliRunner test before may have set the quiet variables in it.
    env = {key: value for key, value in os.environ.items() if key not in QUIET_ENV}
    result = subprocess.run([sys.executable, "-c", NOISY.format(setup=setup)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ("Registered model 'm' already exists" in result.stderr) is shown
    assert ("precision loss" in result.stderr) is shown


def test_verbose_after_the_command_shows_mlflows_own_output_on_a_real_run(
    cli_env: dict[str, str], world: Callable[..., Path]
) -> None:
    # given a model with no champion and no MLflow store yet: MLflow logs that it creates one
    config = world(n_batches=1, drift_at=2)
    (config.parent / "mlflow.db").unlink()
    # when the pass runs with -v after the command
    result = subprocess.run(
        [DRIFTLOOP, "run", "--config", str(config), "-v"], env=cli_env, capture_output=True, text=True, timeout=900
    )
    # then MLflow's own lines are there, as asked
    assert result.returncode == 0, result.stderr[-3000:]
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in result.stderr


def test_steps_are_printed_one_line_each_into_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.printed_steps(verbose=False):
        step("fitting %s on %d rows", "HistGradientBoostingClassifier", 1800)
        step("registering the model in %s", "weather-dev")
    step("not printed: nobody listens outside the block")
    assert capsys.readouterr().out == (
        "  · fitting HistGradientBoostingClassifier on 1800 rows\n  · registering the model in weather-dev\n"
    )


def test_on_a_terminal_the_current_step_counts_its_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0.0)
    screen = io.StringIO()
    printer = progress.StepPrinter(screen, live=True)
    printer.handle(_record("starting the mlflow-server"))
    printer.tick()
    printer.handle(_record("waiting for it"))
    printer.end_line()
    assert screen.getvalue() == (
        "  · starting the mlflow-server\r  · starting the mlflow-server … 0 s\n  · waiting for it\n"
    )


def _record(message: str) -> object:
    import logging

    return logging.LogRecord("driftloop.progress", logging.INFO, __file__, 0, message, (), None)


def test_the_longest_silence_runs_from_the_last_line_to_the_exit() -> None:
    lines = [(1.0, "batch 1 arrives"), (1.5, "  · fitting"), (9.5, "done")]
    gaps = sorted(silences(lines, ended=10.0), key=lambda gap: gap.seconds, reverse=True)
    assert (gaps[0].seconds, gaps[0].before, gaps[0].after) == (8.0, "  · fitting", "done")
    assert [round(gap.seconds, 1) for gap in silences(lines, ended=10.0)] == [1.0, 0.5, 8.0, 0.5]
