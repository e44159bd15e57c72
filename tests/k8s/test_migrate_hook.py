"""The pre-upgrade migrate Job's script, run as its container would, against real (sqlite) stores.

On a cluster the URLs point at PostgreSQL; here sqlite stands in, which Prefect and MLflow migrate
with the same commands. A migration that fails must fail the Job, so that Helm stops the upgrade.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from .conftest import TELEMETRY_OFF, Objects, find


def migrate(objects: Objects, prefect_url: str, mlflow_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    container = find(objects, "Job", "driftloop-migrate")["spec"]["template"]["spec"]["containers"][0]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(TELEMETRY_OFF)
    env.update(
        PREFECT_API_DATABASE_CONNECTION_URL=prefect_url, MLFLOW_BACKEND_STORE_URI=mlflow_url, PREFECT_HOME=str(home)
    )
    return subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=300, cwd=home)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}


def test_the_migrate_job_brings_both_schemas_to_head(
    default_objects: Objects, empty_mlflow_db: Path, tmp_path: Path
) -> None:
    mlflow_db = tmp_path / "mlflow.db"
    shutil.copyfile(empty_mlflow_db, mlflow_db)
    prefect_db = tmp_path / "prefect.db"

    result = migrate(default_objects, f"sqlite+aiosqlite:///{prefect_db}", f"sqlite:///{mlflow_db}", tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "migrate: done"
    assert {"flow_run", "deployment", "work_pool", "alembic_version"} <= tables(prefect_db)
    assert {"runs", "registered_models", "model_versions", "alembic_version"} <= tables(mlflow_db)


def test_a_failed_migration_fails_the_job(default_objects: Objects, tmp_path: Path) -> None:
    unreachable = "postgresql+asyncpg://driftloop:secret@127.0.0.1:9/prefect"
    result = migrate(default_objects, unreachable, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    assert result.returncode != 0
    assert "migrate: MLflow database" not in result.stdout
