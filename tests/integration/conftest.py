"""The cluster's servers, on 127.0.0.1: PostgreSQL (databases prefect and mlflow), ``prefect server`` on
PostgreSQL, ``mlflow server`` on PostgreSQL proxying artifacts to a tmp folder, and a Prefect *process*
work pool ``driftloop`` with one worker, holding the deployments of ``flows/prefect.yaml`` (flows run
from this checkout instead of the image's /opt/driftloop; schedules paused). The process pool stands in
for the Kubernetes one: only the pool type differs. Started once per session by ``service.stack.servers.Stack``
(the same code as ``driftloop stack up``), stopped at the end.

Tests talk to the servers as the cluster's clients do: the Prefect API (client, events) and MLflow's
REST API. Each test uses its own model name, so tests share the servers but not registry state.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.stack.postgres import postgres_bin
from service.stack.servers import Stack

INSTALL_HINT = "run .ci/install-integration (as root) first"
# Flow runs of these tests fail fast on an unreachable MLflow instead of MLflow's default ~2 minutes
# of HTTP retries: the flows' own task retries (1, 4, 10 s) are what the tests exercise.
FAST_MLFLOW_FAILURE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def _require_tools() -> None:
    if postgres_bin() is None:
        pytest.fail(f"PostgreSQL server binaries not found: {INSTALL_HINT}", pytrace=False)
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.fail(f"psycopg2 is not installed (MLflow's postgresql store needs it): {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_tools()
    root = tmp_path_factory.mktemp("stack")
    local = Stack(root, backend="postgresql", worker_env=FAST_MLFLOW_FAILURE)
    local.up()
    try:
        yield local
    finally:
        local.down()
        if os.environ.get("DRIFTLOOP_KEEP_STACK_LOGS"):
            shutil.copytree(root / "logs", os.environ["DRIFTLOOP_KEEP_STACK_LOGS"], dirs_exist_ok=True)


@pytest.fixture
def prefect_client_settings(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """This process talks to the stack's Prefect API (whatever another suite's harness set before)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    home = tmp_path / "prefect-home"
    with temporary_settings(
        {PREFECT_API_URL: stack.prefect_url, PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}
    ):
        yield stack.prefect_url


@dataclass
class World:
    """A model's data and config under a test's tmp folder, its registry on the stack's MLflow server."""

    name: str
    config_path: Path
    stream: Path
    held: Path
    tracking_uri: str

    @property
    def job_variables(self) -> dict[str, Any]:
        """The flow run's process reads this world's tracking server (the worker's default is the stack's)."""
        return {"env": {"MLFLOW_TRACKING_URI": self.tracking_uri}}

    def batches(self) -> list[Path]:
        return sorted(self.stream.glob("*.csv"))

    def hold(self, *numbers: int) -> None:
        """Keep batches out of the stream (they have not arrived yet)."""
        self.held.mkdir(exist_ok=True)
        for number in numbers:
            shutil.move(self.stream / f"batch_{number:03d}.csv", self.held / f"batch_{number:03d}.csv")

    def deliver(self, *numbers: int) -> None:
        for number in numbers:
            shutil.move(self.held / f"batch_{number:03d}.csv", self.stream / f"batch_{number:03d}.csv")

    def registry(self, tracking_uri: str | None = None) -> Any:
        from service.config_file import load_config
        from service.registry import Registry

        config = load_config(self.config_path)
        if tracking_uri:
            config.registry.tracking_uri = tracking_uri
        return Registry(config)

    def state(self, tracking_uri: str | None = None) -> dict[str, dict[str, Any]]:
        """Versions and where each alias points, per environment: what a promotion may change."""
        registry = self.registry(tracking_uri)
        return {
            env: {
                "versions": [v.version for v in registry.versions(env)],
                **{
                    alias: getattr(registry.at_alias(env, alias), "version", None)
                    for alias in ("champion", "challenger", "previous")
                },
            }
            for env in registry.config.environments
        }

    def runs(self, stage: str, tracking_uri: str | None = None) -> list[Any]:
        registry = self.registry(tracking_uri)
        return registry.client.search_runs([registry.experiment_id(stage)], max_results=1000)


@pytest.fixture
def make_world(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., World]:
    from service.demo_data import make_stream, write_stream

    # The test process reads the registry through the config's tracking_uri (the MLflow server).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def build(
        name: str,
        n_batches: int = 5,
        drift_at: int = 4,
        rows: int = 400,
        tracking_uri: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> World:
        folder = tmp_path / name
        stream = make_stream(n_batches=n_batches, rows=rows, reference_rows=1200, drift_at=drift_at)
        write_stream(stream, folder / "data")
        document = {
            "model": {"name": name, "task": "classification", "target": "weather", "ignore": ["date"]},
            "data": {"reference": "data/reference.csv", "current": "data/stream/*.csv"},
            "evaluation": {"min_gain": 0.01},
            "promotion": {"staging": "auto", "prod": "approval"},
            "registry": {"tracking_uri": tracking_uri or stack.mlflow_url},
        }
        for section, values in (config or {}).items():
            document.setdefault(section, {}).update(values)
        config_path = folder / "driftloop.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return World(name, config_path, folder / "data" / "stream", folder / "held", tracking_uri or stack.mlflow_url)

    return build
