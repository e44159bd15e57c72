"""Real Airflow, in the venv of its own that `.ci/install-airflow` makes (Airflow's pins clash with
Prefect's): the tests drive it by subprocess, with SQLite metadata under each test's AIRFLOW_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "airflow" / "dags"
VENV = Path(os.environ.get("DRIFTLOOP_AIRFLOW_VENV", "/opt/airflow-venv"))
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED": "false",
}


def airflow_bin(name: str = "airflow") -> str:
    path = VENV / "bin" / name
    assert path.exists(), f"{path} is missing: run .ci/install-airflow"
    return str(path)


@pytest.fixture
def airflow_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The environment of an Airflow process reading DAGs from airflow/dags and models from ``models``."""

    def make(models: Path, **extra: str) -> dict[str, str]:
        home = tmp_path / "airflow-home"
        home.mkdir(exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "MLFLOW_"))}
        env.update(TELEMETRY_OFF)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
                "DRIFTLOOP_MODELS_DIR": str(models),
                **extra,
            }
        )
        return env

    return make


def airflow_python(script: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the Airflow venv's Python (where Airflow and its providers import)."""
    return subprocess.run(
        [airflow_bin("python"), "-c", script], env=env, capture_output=True, text=True, timeout=timeout, cwd=DAGS
    )


@pytest.fixture
def demo_models(tmp_path: Path, empty_mlflow_db: Path) -> Callable[[str], Path]:
    """A folder ``<tmp>/<label>/models`` holding the demo's model file over the demo's weather stream (the
    same seeded batches for every label), with its own MLflow sqlite store."""
    from service.demo import demo_config
    from service.demo_data import make_stream, write_stream

    def build(label: str) -> Path:
        root = tmp_path / label
        write_stream(make_stream(n_batches=8, rows=600, drift_at=5), root / "data")
        shutil.copyfile(empty_mlflow_db, root / "mlflow.db")
        document = {
            **demo_config(),
            "data": {"reference": str(root / "data/reference.csv"), "current": str(root / "data/stream/*.csv")},
            "registry": {"tracking_uri": f"sqlite:///{root}/mlflow.db"},
        }
        models = root / "models"
        models.mkdir()
        (models / "weather.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        return models

    return build
