"""MLflow's basic-auth app as the chart runs it, on 127.0.0.1, for the integration and browser suites.

The server is started by the chart's own start script (helm/driftloop/files/mlflow-auth-server.sh) from
the chart's own ini (files/mlflow-auth.ini), with the environment variables the chart's Deployment sets
(tests/k8s/test_mlflow_auth_chart.py checks that the rendered chart sets the same ones), on a throwaway
PostgreSQL database that holds MLflow's tables and its users. The database URL carries a URL-encoded
password (``%40``), which MLflow's ini parser would take for interpolation if the script did not escape
it. Users are made by the chart's hook script (files/mlflow-users.py), as the hook Job runs it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from service.stack.postgres import Postgres, postgres_bin, postgres_folder
from service.stack.processes import Service, base_env, free_port

FILES = Path(__file__).resolve().parents[1] / "helm" / "driftloop" / "files"
START_SCRIPT = FILES / "mlflow-auth-server.sh"
USERS_SCRIPT = FILES / "mlflow-users.py"
AUTH_INI = FILES / "mlflow-auth.ini"

Credentials = tuple[str, str]


@dataclass
class AuthMlflow:
    url: str
    admin: Credentials
    service: Credentials
    reader: Credentials
    root: Path
    database_url: str

    def client_env(self, user: Credentials | None) -> dict[str, str]:
        """A client process's environment: MLflow's client sends these two variables as basic auth."""
        env = base_env()
        if user is not None:
            env.update({"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]})
        return env

    def users_hook(self, reader_password: str | None = None) -> subprocess.CompletedProcess[str]:
        """files/mlflow-users.py with the variables the hook Job gets (one reader)."""
        env = base_env(
            MLFLOW_TRACKING_URI=self.url,
            MLFLOW_AUTH_ADMIN_USERNAME=self.admin[0],
            MLFLOW_AUTH_ADMIN_PASSWORD=self.admin[1],
            MLFLOW_SERVICE_USERNAME=self.service[0],
            MLFLOW_SERVICE_PASSWORD=self.service[1],
            MLFLOW_READERS=json.dumps([{"username": self.reader[0], "passwordEnv": "MLFLOW_READER_0_PASSWORD"}]),
            MLFLOW_READER_0_PASSWORD=reader_password or self.reader[1],
            WAIT_SECONDS="60",
        )
        return subprocess.run([sys.executable, str(USERS_SCRIPT)], env=env, capture_output=True, text=True, timeout=180)

    def call(self, method: str, path: str, user: Credentials | None = None, **kwargs: Any) -> requests.Response:
        """One REST call, as ``user`` (None: anonymous)."""
        return requests.request(method, f"{self.url}{path}", auth=user, timeout=30, **kwargs)


@contextmanager
def auth_mlflow_server(root: Path) -> Iterator[AuthMlflow]:
    bin_dir = postgres_bin()
    assert bin_dir is not None, "PostgreSQL server binaries not found: run .ci/install-integration (as root) first"
    postgres = Postgres(postgres_folder(root), free_port(), bin_dir).start(databases=("mlflow",))
    port = free_port()
    # Trust auth ignores the password: it is here for the ini's sake (see the module docstring).
    database_url = f"postgresql+psycopg2://postgres:{quote('p@ss%word', safe='')}@127.0.0.1:{postgres.port}/mlflow"
    admin = ("admin", secrets.token_urlsafe(24))
    server = Service(
        "mlflow-auth",
        [
            "sh",
            str(START_SCRIPT),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        base_env(
            # `mlflow` beside this Python first, as the image's PATH has it.
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            MLFLOW_BACKEND_STORE_URI=database_url,
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_AUTH_CONFIG_TEMPLATE=str(AUTH_INI),
            MLFLOW_AUTH_CONFIG_PATH=str(root / "tmp" / "mlflow-auth" / "basic_auth.ini"),
            MLFLOW_AUTH_DATABASE_URI=database_url,
            MLFLOW_AUTH_ADMIN_USERNAME=admin[0],
            MLFLOW_AUTH_ADMIN_PASSWORD=admin[1],
        ),
        root,
        health_url=f"http://127.0.0.1:{port}/health",
    )
    try:
        server.start(timeout=240)
        yield AuthMlflow(
            url=f"http://127.0.0.1:{port}",
            admin=admin,
            service=("driftloop", secrets.token_urlsafe(24)),
            reader=("alice", secrets.token_urlsafe(16)),
            root=root,
            database_url=database_url,
        )
    finally:
        server.stop()
        postgres.stop()
