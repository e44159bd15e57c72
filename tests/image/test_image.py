"""The built image: what it holds, and each process the chart runs from it starting as user 10001 on a
read-only root filesystem with /tmp a tmpfs and no capabilities (the chart's restricted pods)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import GIT_SHA, background

TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def config(docker: str, image: str) -> dict:
    result = subprocess.run([docker, "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]["Config"]


def test_image_runs_as_numeric_non_root_user_from_opt_driftloop(config: dict) -> None:
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/opt/driftloop"
    # No entrypoint: Kubernetes Jobs pass `prefect flow-run execute` as args, the chart a command.
    assert not config["Entrypoint"]


def test_image_environment_turns_telemetry_off_and_writes_only_under_tmp(config: dict) -> None:
    env = dict(item.split("=", 1) for item in config["Env"])
    assert TELEMETRY_OFF.items() <= env.items()
    writable = ("HOME", "PREFECT_HOME", "PREFECT_UI_STATIC_DIRECTORY", "MPLCONFIGDIR", "XDG_CACHE_HOME", "TMPDIR")
    for name in writable:
        assert env[name] == "/tmp" or env[name].startswith("/tmp/"), name
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["DRIFTLOOP_GIT_SHA"] == GIT_SHA
    assert config["Healthcheck"]["Test"] == ["NONE"]  # probes are the chart's; see the Dockerfile


def test_cli_works_as_user_10001_on_read_only_root(container) -> None:
    result = container("driftloop", "--help", user="10001")
    assert result.returncode == 0, result.stderr
    assert "drift" in result.stdout and "serve" in result.stdout


def test_libraries_import_on_read_only_root(container) -> None:
    code = "import evidently, mlflow, prefect, prefect_kubernetes, sklearn, psycopg2, boto3, service, flows; print(1)"
    result = container("python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_code_is_where_the_deployments_pull_step_expects_it(container) -> None:
    deployments = yaml.safe_load(Path(__file__).resolve().parents[2].joinpath("flows/prefect.yaml").read_text())
    [step] = deployments["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    entrypoints = [deployment["entrypoint"].split(":")[0] for deployment in deployments["deployments"]]
    result = container("sh", "-c", f"cd {directory} && ls {' '.join(entrypoints)} flows/prefect.yaml")
    assert result.returncode == 0, result.stderr


def test_no_build_tools_and_nothing_writable_outside_tmp(container) -> None:
    script = (
        "for tool in gcc cc g++ make; do command -v $tool >/dev/null && echo has $tool; done; "
        "for dir in /opt/driftloop /opt/venv /etc /; do touch $dir/probe 2>/dev/null && echo wrote $dir; done; "
        "touch /tmp/probe && echo tmp ok"
    )
    result = container("sh", "-c", script)
    found = result.stdout.split("\n")
    assert [line for line in found if line.startswith(("has gcc", "has cc", "has g++", "has make", "wrote"))] == []
    assert "tmp ok" in found


def test_prefect_server_starts_on_read_only_root(docker: str, container) -> None:
    port = free_port()
    name = f"driftloop-test-prefect-{port}"
    started = container(
        "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), detach=True, name=name
    )
    assert started.returncode == 0, started.stderr
    with background(docker, name):
        assert wait_for_http(f"http://127.0.0.1:{port}/api/health") == "true"
        # The UI is served too: Prefect copies it to PREFECT_UI_STATIC_DIRECTORY, on /tmp.
        page = urllib.request.Request(f"http://127.0.0.1:{port}/dashboard", headers={"Accept": "text/html"})
        with urllib.request.urlopen(page, timeout=10) as response:
            assert "<html" in response.read().decode().lower()


def test_mlflow_server_starts_on_read_only_root(docker: str, container) -> None:
    port = free_port()
    name = f"driftloop-test-mlflow-{port}"
    command = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", "sqlite:////tmp/mlflow.db", "--artifacts-destination", "/tmp/mlartifacts"]
    started = container(*command, detach=True, name=name)
    assert started.returncode == 0, started.stderr
    with background(docker, name):
        assert wait_for_http(f"http://127.0.0.1:{port}/health") == "OK"
        experiments = wait_for_http(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5")
        assert "Default" in experiments
