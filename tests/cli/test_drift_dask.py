"""`driftloop drift --engine dask`, run as the installed console script against a real Dask cluster
(tests/dask_support.py): the fast engine's answer, exit 3 naming the address when the scheduler does not
answer, exit 2 for a bad column; dask is imported only by this engine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_drift_command import DRIFTLOOP, frame


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    reference, current = tmp_path / "reference.csv", tmp_path / "current.parquet"
    frame(3000, seed=1, drift=0.0).to_csv(reference, index=False)
    frame(2000, seed=2, drift=1.0).to_parquet(current, index=False, row_group_size=500)
    return str(reference), str(current)


def drift(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    clean["PYTHONPROFILEIMPORTTIME"] = "1"  # every module imported, on stderr
    return subprocess.run(
        [DRIFTLOOP, "drift", *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=600
    )


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def errors(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


def test_drift_on_dask_answers_as_the_fast_engine(dask_scheduler: str, files: tuple[str, str]) -> None:
    reference, current = files
    # when the same files are checked by both engines
    fast = drift("--reference", reference, "--current", current, "--json")
    on_dask = drift(
        "--reference", reference, "--current", current, "--json", "--engine", "dask", "--dask-scheduler", dask_scheduler
    )
    # then both exit 1 (drift) with the same verdicts and scores; only the dask engine imported dask
    assert (fast.returncode, on_dask.returncode) == (1, 1), errors(on_dask.stderr)[-3000:]
    assert json.loads(on_dask.stdout) == json.loads(fast.stdout)
    assert "distributed" in imported(on_dask.stderr)
    assert not {"dask", "distributed"} & imported(fast.stderr)


def test_help_imports_no_dask() -> None:
    result = subprocess.run(
        [DRIFTLOOP, "drift", "--help"],
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--engine" in result.stdout and "--dask-scheduler" in result.stdout
    assert not {"dask", "distributed"} & imported(result.stderr)


def test_an_unreachable_scheduler_exits_3_naming_its_address(files: tuple[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    reference, current = files
    # given the address in the environment, as the chart gives it to flow runs
    env = {"DRIFTLOOP_DASK_SCHEDULER": address, "DRIFTLOOP_DASK_CONNECT_TIMEOUT": "2"}
    result = drift("--reference", reference, "--current", current, "--engine", "dask", env=env)
    # then exit 3 (a service failed: retry), one line naming the address, and no verdict
    assert result.returncode == 3, errors(result.stderr)
    assert errors(result.stderr).startswith(f"error: the Dask scheduler at {address} did not answer within 2 s")
    assert len(errors(result.stderr).splitlines()) == 1
    assert result.stdout == ""


def test_a_bad_column_exits_2_naming_the_file_and_column(dask_scheduler: str, files: tuple[str, str], tmp_path) -> None:
    reference, _ = files
    bad = frame(1000, seed=3, drift=0.0).astype({"age": str})
    bad.loc[10, "age"] = "forty"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    env = {"DRIFTLOOP_DASK_SCHEDULER": dask_scheduler}
    result = drift("--reference", reference, "--current", str(tmp_path / "bad.csv"), "--engine", "dask", env=env)
    assert result.returncode == 2, errors(result.stderr)
    assert f"{tmp_path / 'bad.csv'} breaks the data contract" in errors(result.stderr)
    assert "column 'age' has dtype object: expected numeric values (found e.g. ['forty'])" in errors(result.stderr)


def test_an_unknown_engine_exits_2_naming_the_choices(files: tuple[str, str]) -> None:
    reference, current = files
    result = drift("--reference", reference, "--current", current, "--engine", "spark")
    assert result.returncode == 2
    assert errors(result.stderr) == "error: --engine 'spark' is not an engine: expected fast, evidently or dask"
