"""Shared test world: telemetry off, one Prefect test API per session, and per-test stores and data.

Every test gets its own MLflow store (sqlite beside its config in ``tmp_path``) and its own
``PREFECT_HOME``; the Prefect API server is started once per session because it takes ~10 s.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.processes import TELEMETRY_OFF  # stdlib and yaml only: Prefect and MLflow are not loaded yet

# Before Prefect or MLflow is imported anywhere: nothing phones home from a test run.
os.environ.update(TELEMETRY_OFF)


@pytest.fixture(autouse=True)
def _own_tracking_store(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tracking URI leaking in from the shell would send test runs to someone's real server.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLOOP_CONFIG", raising=False)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def prefect(prefect_api: str, tmp_path: Path) -> Iterator[str]:
    """The session's Prefect API, with this test's own PREFECT_HOME (result storage, caches)."""
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    home = tmp_path / "prefect-home"
    with temporary_settings({PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}):
        yield prefect_api


@pytest.fixture
def cli_env(prefect_api: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the installed ``driftloop`` script against the session's Prefect API."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(TELEMETRY_OFF)
    env.update({"PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect-home")})
    return env


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite store with its schema migrated once: copying it saves each test ~3 s."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def world(tmp_path: Path, empty_mlflow_db: Path) -> Callable[..., Path]:
    """Write a demo stream and a model config under ``tmp_path``; return the config's path.

    Batches ``drift_at`` and later are drifted. Keyword ``config`` entries override the defaults.
    """
    from service.demo_data import make_stream, write_stream

    def build(
        n_batches: int = 6,
        rows: int = 600,
        reference_rows: int = 1500,
        drift_at: int = 4,
        config: dict[str, Any] | None = None,
    ) -> Path:
        stream = make_stream(n_batches=n_batches, rows=rows, reference_rows=reference_rows, drift_at=drift_at)
        write_stream(stream, tmp_path / "data")
        document: dict[str, Any] = {
            "model": {"name": "weather", "task": "classification", "target": "weather", "ignore": ["date"]},
            "data": {"reference": "data/reference.csv", "current": "data/stream/*.csv"},
            "evaluation": {"min_gain": 0.01},
        }
        for section, values in (config or {}).items():
            if isinstance(values, dict):
                document.setdefault(section, {}).update(values)
            else:
                document[section] = values
        shutil.copyfile(empty_mlflow_db, tmp_path / "mlflow.db")
        path = tmp_path / "driftloop.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return build
