"""A real `prefect server` with the chart's basic auth, and the chart's Prefect clients against it.

The credentials are the chart's own: the chart is rendered (real helm) as `helm install` renders it,
with `lookup` answered by a stand-in Kubernetes API (tests/k8s/lookup_cluster.py), so it generates the
auth Secret; each process gets the environment its pod would get, with every secretKeyRef resolved
from that Secret. The server runs on sqlite (the database does not matter to auth); the worker is the
Kubernetes worker itself, polling once, with no Kubernetes API needed while no run is due.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.stack.processes import Service, base_env, executable, free_port
from tests.k8s.conftest import ROOT, find, parse
from tests.k8s.lookup_cluster import lookup_cluster, render_on_cluster

NAMESPACE = "driftloop"
API_TOKEN = "s3cret-token"


def pod_env(objects: list[dict[str, Any]], kind: str, name: str, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The auth variables of a rendered pod's container, as the kubelet would resolve them."""
    obj = find(objects, kind, name)
    spec = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
    env = {}
    for item in spec["containers"][0].get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


@pytest.fixture(scope="module")
def chart() -> dict[str, Any]:
    """The chart as installed: its objects and its generated Secrets' data."""
    with lookup_cluster(NAMESPACE) as cluster:
        result = render_on_cluster(cluster)
    assert result.returncode == 0, result.stderr
    objects = parse(result.stdout)
    secrets = {
        obj["metadata"]["name"]: {key: base64.b64decode(value).decode() for key, value in obj["data"].items()}
        for obj in objects
        if obj["kind"] == "Secret"
    }
    return {"objects": objects, "secrets": secrets}


def env_of(chart: dict[str, Any], kind: str, name: str) -> dict[str, str]:
    return pod_env(chart["objects"], kind, name, chart["secrets"])


@pytest.fixture(scope="module")
def server(chart: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` with the auth environment of the chart's prefect-server Deployment."""
    root = tmp_path_factory.mktemp("prefect-auth-server")
    auth = env_of(chart, "Deployment", "driftloop-prefect-server")
    assert set(auth) >= {"PREFECT_SERVER_API_AUTH_STRING"}
    port = free_port()
    env = base_env(
        PREFECT_HOME=str(root / "home"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        PREFECT_SERVER_API_AUTH_STRING=auth["PREFECT_SERVER_API_AUTH_STRING"],
    )
    argv = [executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    service = Service("prefect-server", argv, env, root, f"http://127.0.0.1:{port}/api/health")
    service.start(timeout=180)
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        service.stop()


def status_of(url: str, auth_string: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth_string is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth_string.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def client_env(chart: dict[str, Any], kind: str, name: str, server: str, home: Path) -> dict[str, str]:
    """A client process's environment: its pod's auth variables, pointed at the test's server."""
    return base_env(PREFECT_API_URL=server, PREFECT_HOME=str(home), **env_of(chart, kind, name))


def run_register(chart: dict[str, Any], env: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    """The rendered register script, as Job driftloop-register runs it (the repository for /opt/driftloop)."""
    data = find(chart["objects"], "ConfigMap", "driftloop-work-pool")["data"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "register.sh").write_text(data["register.sh"])
    (folder / "base-job-template.json").write_text(data["base-job-template.json"])
    env = {
        **env,
        "WORK_POOL": "driftloop",
        "BASE_JOB_TEMPLATE": str(folder / "base-job-template.json"),
        "DRIFTLOOP_HOME": str(ROOT),
        "PREFECT_FILE": "flows/prefect.yaml",
        "WAIT_SECONDS": "60",
    }
    return subprocess.run(
        ["sh", str(folder / "register.sh")], env=env, cwd=folder, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def registered(chart: dict[str, Any], server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The register Job run twice: without the auth string, then with the one its pod gets."""
    folder = tmp_path_factory.mktemp("register")
    anonymous = base_env(PREFECT_API_URL=server, PREFECT_HOME=str(folder / "anonymous-home"))
    refused = run_register(chart, anonymous, folder / "anonymous")
    env = client_env(chart, "Job", "driftloop-register", server, folder / "home")
    accepted = run_register(chart, env, folder / "authenticated")
    return {"refused": refused, "accepted": accepted}


def test_the_server_refuses_calls_without_the_auth_string(chart: dict[str, Any], server: str) -> None:
    auth_string = chart["secrets"]["driftloop-auth"]["prefect-auth-string"]
    assert status_of(f"{server}/admin/version") == 401
    assert status_of(f"{server}/admin/version", "driftloop:wrong-password") == 401
    assert status_of(f"{server}/admin/version", auth_string) == 200
    # The probes of the chart's Deployment still answer without it.
    assert status_of(f"{server}/health") == 200


def test_the_register_script_needs_the_auth_string_and_works_with_it(
    registered: dict[str, Any], chart: dict[str, Any], server: str
) -> None:
    refused = registered["refused"]
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    accepted = registered["accepted"]
    assert accepted.returncode == 0, accepted.stdout[-3000:] + accepted.stderr[-3000:]
    assert "register: creating work pool driftloop" in accepted.stdout
    auth_string = chart["secrets"]["driftloop-auth"]["prefect-auth-string"]
    assert status_of(f"{server}/work_pools/driftloop", auth_string) == 200
    assert status_of(f"{server}/deployments/name/sweep/sweep", auth_string) == 200


def worker_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The chart's worker command, polling the pool once instead of forever."""
    argv = [executable("prefect"), "worker", "start", "--pool", "driftloop", "--type", "kubernetes"]
    argv += ["--install-policy", "never", "--no-create-pool-if-not-found", "--run-once", "--name", "auth-test"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_the_worker_polls_the_pool_with_the_auth_string_only(
    registered: dict[str, Any], chart: dict[str, Any], server: str, tmp_path: Path
) -> None:
    anonymous = worker_once(base_env(PREFECT_API_URL=server, PREFECT_HOME=str(tmp_path / "anonymous")))
    assert anonymous.returncode != 0 and "401" in anonymous.stdout + anonymous.stderr
    env = client_env(chart, "Deployment", "driftloop-prefect-worker", server, tmp_path / "home")
    polled = worker_once(env)
    assert polled.returncode == 0, polled.stdout[-3000:] + polled.stderr[-3000:]
    request = urllib.request.Request(
        f"{server}/work_pools/driftloop/workers/filter",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(chart["secrets"]["driftloop-auth"]["prefect-auth-string"].encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        workers = json.loads(response.read())
    assert "auth-test" in {worker["name"] for worker in workers}


@pytest.fixture
def api_with_pod_env(
    chart: dict[str, Any], server: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[[bool], TestClient]:
    """The driftloop API over a model config, with (or without) its pod's Prefect credentials."""
    from service.api.app import create_app
    from service.settings import Settings

    config_path = world(n_batches=1, drift_at=2)

    def build(with_auth: bool) -> TestClient:
        monkeypatch.setenv("PREFECT_API_URL", server)
        monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
        if with_auth:
            for name, value in env_of(chart, "Deployment", "driftloop-api").items():
                if name.startswith("PREFECT_"):
                    monkeypatch.setenv(name, value)
        return TestClient(create_app(Settings(models_dir=config_path.parent, api_token=API_TOKEN)))

    return build


def test_the_api_starts_a_flow_run_with_its_pods_auth_string(
    registered: dict[str, Any], api_with_pod_env: Callable[[bool], TestClient], chart: dict[str, Any], server: str
) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    refused = api_with_pod_env(False).post("/models/weather/check", headers=headers)
    assert refused.status_code == 503
    assert "answered 401" in refused.json()["detail"] and "PREFECT_API_AUTH_STRING" in refused.json()["detail"]
    started = api_with_pod_env(True).post("/models/weather/check", headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["flow_run_id"]
    auth_string = chart["secrets"]["driftloop-auth"]["prefect-auth-string"]
    assert status_of(f"{server}/flow_runs/{run_id}", auth_string) == 200


def test_events_are_recorded_with_the_auth_string(
    chart: dict[str, Any], server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import orchestrator

    resource = {"prefect.resource.id": "driftloop.model.weather"}
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    with pytest.raises(orchestrator.OrchestratorError, match="answered 401"):
        orchestrator.emit_event("driftloop.test", resource, {}, server)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", chart["secrets"]["driftloop-auth"]["prefect-auth-string"])
    assert orchestrator.emit_event("driftloop.test", resource, {}, server)


def test_the_helm_test_pod_checks_the_prefect_api_with_its_auth_string(
    chart: dict[str, Any], server: str, tmp_path: Path
) -> None:
    """The test pod's own script and Prefect checks, with the cluster URL swapped for the test server's."""
    container = find(chart["objects"], "Pod", "driftloop-test-connection")["spec"]["containers"][0]
    script, checks = container["command"][:3], container["command"][3:]
    prefect_checks = [
        arg.replace("http://driftloop-prefect-server:4200/api", server)
        for triple in zip(checks[0::3], checks[1::3], checks[2::3], strict=True)
        if triple[0].startswith("prefect")
        for arg in triple
    ]
    assert [arg for arg in prefect_checks if arg.startswith("http")] == [f"{server}/health", f"{server}/admin/version"]
    anonymous = subprocess.run([*script, *prefect_checks], env=base_env(), capture_output=True, text=True, timeout=60)
    assert anonymous.returncode == 1 and "FAIL prefect-auth" in anonymous.stdout
    env = client_env(chart, "Pod", "driftloop-test-connection", server, tmp_path / "home")
    passed = subprocess.run([*script, *prefect_checks], env=env, capture_output=True, text=True, timeout=60)
    assert passed.returncode == 0, passed.stdout
    assert "ok   prefect-auth" in passed.stdout
