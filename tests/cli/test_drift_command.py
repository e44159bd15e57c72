"""`driftloop drift` on parquet files, run as the installed console script: Evidently is imported and its
report drawn only when ``--report`` asks for it, and the verdict is the same either way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")


def frame(rows: int, seed: int, drift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + drift, 0.5, rows),
            "age": rng.normal(40, 10, rows),
            "channel": rng.choice(["web", "store", "phone"], rows, p=[0.5 - 0.3 * drift, 0.3, 0.2 + 0.3 * drift]),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    frame(3000, seed=1, drift=0.0).to_parquet(reference, index=False)
    frame(2000, seed=2, drift=1.0).to_parquet(current, index=False)
    return str(reference), str(current)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The drift command needs no Prefect or MLflow server; PYTHONPROFILEIMPORTTIME lists every module the
    # process imports on stderr, as `python -X importtime` does.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    return subprocess.run([DRIFTLOOP, "drift", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_drift_without_report_imports_neither_evidently_nor_scipy_and_writes_no_report(
    files: tuple[str, str], tmp_path: Path
) -> None:
    # given two parquet files that drifted, in an empty working folder
    reference, current = files
    workdir = tmp_path / "work"
    workdir.mkdir()
    # when checked without --report
    result = run("--reference", reference, "--current", current, "--json", cwd=workdir)
    # then the verdict is given, neither Evidently nor scipy was imported, and no file was written
    assert result.returncode == 1, result.stderr[-3000:]
    verdict = json.loads(result.stdout)
    assert verdict["dataset_drift"] is True and verdict["report"] is None
    modules = imported(result.stderr)
    assert "service.adhoc" in modules  # the import listing works: the check itself is in it
    assert not {name for name in modules if name == "evidently" or name.startswith("evidently.")}
    # Distances (what Evidently picks above 1,000 reference rows) need no scipy, whose import takes seconds.
    assert not {name for name in modules if name == "scipy" or name.startswith("scipy.")}
    assert list(workdir.iterdir()) == []


def test_drift_with_report_writes_evidentlys_report_and_the_same_verdict(
    files: tuple[str, str], tmp_path: Path
) -> None:
    # given two parquet files that drifted
    reference, current = files
    report = tmp_path / "out" / "report.html"
    # when checked with and without --report
    with_report = run("--reference", reference, "--current", current, "--json", "--report", str(report), cwd=tmp_path)
    without = run("--reference", reference, "--current", current, "--json", cwd=tmp_path)
    # then the report is Evidently's page, and the verdicts are the same
    assert with_report.returncode == without.returncode == 1, with_report.stderr[-3000:]
    assert "evidently" in imported(with_report.stderr)
    assert report.read_text().lstrip().lower().startswith("<!doctype html")
    drawn, plain = json.loads(with_report.stdout), json.loads(without.stdout)
    assert drawn.pop("report") == str(report) and plain.pop("report") is None
    assert drawn == plain


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_drift_exits_2_naming_the_file_and_the_column_with_bad_values(
    files: tuple[str, str], tmp_path: Path, suffix: str
) -> None:
    # given a batch, as csv or parquet, whose numeric column holds text and whose other numeric column
    # holds infinite values
    reference, _ = files
    bad = frame(2000, seed=2, drift=0.0).astype({"age": str})
    bad.loc[:2, "age"] = "unknown"
    bad.loc[:4, "amount"] = np.inf
    current = tmp_path / f"current{suffix}"
    bad.to_parquet(current, index=False) if suffix == ".parquet" else bad.to_csv(current, index=False)
    # when checked (a column at a time)
    result = run("--reference", reference, "--current", str(current), cwd=tmp_path)
    # then it exits 2 with one message naming the file and both columns, and no traceback
    assert result.returncode == 2, result.stderr[-3000:]
    errors = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    assert str(current) in errors and "Traceback" not in errors
    assert "column 'age' has dtype object: expected numeric values (found e.g. ['unknown'])" in errors
    assert "column 'amount' has 5 infinite values" in errors
