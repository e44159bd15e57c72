"""Transient versus permanent: what a dependency failed at is retried, what the input is to blame for never."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from service.data import read_frame, storage_error
from service.errors import (
    ConfigError,
    ContractViolation,
    DataSourceError,
    DataSourceUnavailable,
    RegistryUnavailable,
    is_transient,
)
from service.mlflow_errors import classify


class ReadTimeout(Exception):
    """Named as httpx and requests name theirs, with no common base class."""


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (RegistryUnavailable("MLflow at x did not answer"), True),
        (DataSourceUnavailable("s3://b/k: storage did not answer"), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (ReadTimeout("read timed out"), True),
        (ConfigError("drift.thresold: unknown key"), False),
        (ContractViolation("batch.csv", ["column 'x' is missing"]), False),
        (DataSourceError("batch.csv: file not found"), False),
        (ValueError("could not convert string to float"), False),
        (KeyError("humidity"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_only_a_dependencys_failure_is_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (FileNotFoundError("no such key"), DataSourceError),
        (PermissionError("access denied"), DataSourceError),
        (pd.errors.ParserError("bad line"), DataSourceError),
        (ValueError("not a parquet file"), DataSourceError),
        (ConnectionResetError("connection reset"), DataSourceUnavailable),
        (TimeoutError("read timed out"), DataSourceUnavailable),
        (OSError(5, "503 Slow Down"), DataSourceUnavailable),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.__name__,
)
def test_storage_failures_are_told_apart_from_bad_files(exc: Exception, kind: type) -> None:
    error = storage_error("s3://bucket/batch.csv", "read as csv", exc)
    assert type(error) is kind and "s3://bucket/batch.csv" in str(error)


def test_a_file_that_is_not_csv_is_bad_input_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(b'a,b\n1,"unterminated\n')
    with pytest.raises(DataSourceError, match=r"batch\.csv"):
        read_frame(str(path))


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("TEMPORARILY_UNAVAILABLE", RegistryUnavailable),
        ("INTERNAL_ERROR", RegistryUnavailable),
        ("REQUEST_LIMIT_EXCEEDED", RegistryUnavailable),
        ("INVALID_PARAMETER_VALUE", "RegistryError"),
        ("PERMISSION_DENIED", "RegistryError"),
    ],
)
def test_mlflow_errors_are_unavailable_only_for_5xx_and_429(code: str, kind: object) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    raised = MlflowException("boom", error_code=getattr(databricks_pb2, code))
    error = classify("http://mlflow:5000", "read weather-dev@champion", raised)
    assert type(error).__name__ == (kind if isinstance(kind, str) else kind.__name__)
    assert "http://mlflow:5000" in str(error)
