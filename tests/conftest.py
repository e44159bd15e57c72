"""Shared test world: telemetry off, one Prefect test API per session, and per-test stores and data.

Every test gets its own MLflow store (sqlite beside its config in ``tmp_path``) and its own
``PREFECT_HOME``; the Prefect API server is started once per session because it takes ~10 s.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.stack.processes import TELEMETRY_OFF  # stdlib and yaml only: Prefect and MLflow are not loaded yet

DRAIN_TIMEOUT = 60.0  # seconds for Prefect's log and event workers to send what a test left queued
EXIT_GRACE, EXIT_HUNG = 120.0, 3  # seconds the interpreter may take to exit after the run; exit code if not

# Before Prefect or MLflow is imported anywhere: nothing phones home from a test run.
os.environ.update(TELEMETRY_OFF)


def pytest_unconfigure() -> None:
    """A watchdog for the interpreter's exit, where third-party cleanup can wait without a time limit.

    Prefect drains its log and event workers at exit with no timeout; once, a worker left sending to a
    stopped server held a CI run after its last test until the 90-minute limit. The drain after each
    test should leave none; if the process still has not exited EXIT_GRACE seconds from here, this dumps
    every thread's stack and exits non-zero, so the run ends and says where it hung.
    """
    import faulthandler
    import threading

    def give_up() -> None:
        sys.stderr.write(f"\ntests finished but the process did not exit within {EXIT_GRACE:.0f} s; stacks:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(EXIT_HUNG)

    watchdog = threading.Timer(EXIT_GRACE, give_up)
    watchdog.daemon = True  # never itself a reason to wait
    watchdog.start()


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


@pytest.fixture(autouse=True)
def _prefect_services_drained(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used Prefect, its log and event workers have sent everything, or it fails.

    They are per API URL and outlive the test. One left holding logs or events for a server that a later
    fixture stops retries for hours, and Prefect drains them at exit with no time limit: a CI run hung
    after its last test until its 90-minute limit. Drained here, while the servers this test used still
    answer, none is left over; Prefect makes new ones when the next test logs or emits.
    """
    yield
    if "prefect.events.worker" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        # From a thread of its own: where the main thread runs an event loop (Playwright's sync API),
        # drain_all would return a coroutine instead of waiting.
        with ThreadPoolExecutor(max_workers=1) as pool:
            _, pending = pool.submit(service.drain_all, DRAIN_TIMEOUT).result()
        if pending:
            pytest.fail(
                f"{request.node.nodeid}: {len(pending)} Prefect {service.__name__} still had work after "
                f"{DRAIN_TIMEOUT:.0f} s: it is sending to a server that is gone or slow",
                pytrace=False,
            )


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
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible endpoint on 127.0.0.1, for s3:// data and artifacts.

    There is no AWS account here: this is moto's S3 server, run as its own process and spoken to over
    HTTP with the real clients (s3fs, boto3), in this process and in containers on the host network.
    """
    from service.stack.processes import Service, base_env, free_port

    port = free_port()
    server = Service(
        name="moto-s3",
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=base_env(),
        root=tmp_path_factory.mktemp("s3-server"),
        health_url=f"http://127.0.0.1:{port}/moto-api/",
    )
    server.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(timeout=10)


@pytest.fixture(scope="session")
def s3_env(s3_endpoint: str) -> dict[str, str]:
    """What a process needs to use that endpoint as its S3: the variables the chart's data Secret holds."""
    return {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "driftloop-test",
        "AWS_SECRET_ACCESS_KEY": "driftloop-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


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


@pytest.fixture(scope="session")
def dask_scheduler(s3_env: dict[str, str]) -> Iterator[str]:
    """The address of a real Dask cluster for ``drift.engine: dask`` (tests/dask_support.py), once per
    session; its workers reach the S3 endpoint as a flow-run pod's would, from their environment."""
    from tests.dask_support import start_cluster

    with start_cluster(env=s3_env) as cluster:
        yield cluster.scheduler_address
