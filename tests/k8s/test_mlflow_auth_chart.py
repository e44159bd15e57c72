"""MLflow's basic auth in the rendered chart: the server runs MLflow's auth app through the chart's start
script, its admin and database come from Secrets, the probes use the open /health, and a hook Job makes
the service user and the read-only users. tests/integration/test_mlflow_auth.py runs the same files
(helm/driftloop/files/) against a real server with the environment asserted here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import CHART, KUBERNETES_VERSIONS, Objects, find, parse, pod_spec
from .lookup_cluster import LookupCluster, lookup_cluster, render_on_cluster
from .test_kubernetes_validate import validation_errors

FILES = CHART / "files"
MOUNT = "/etc/driftloop/mlflow-auth"
READERS = [
    {"username": "alice", "existingSecret": "mlflow-readers", "passwordKey": "alice"},
    {"username": "bob@example.com", "existingSecret": "bob-mlflow", "passwordKey": "password"},
]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    spec = pod_spec(obj)
    assert spec is not None
    return spec["containers"][0]


def env_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Each variable's value, or (Secret, key) for a secretKeyRef."""
    env = {}
    for item in container(obj).get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = (ref["name"], ref["key"]) if ref else item.get("value")
    return env


def rendered(render_with: Callable[..., Any], *overrides: str, values: dict[str, Any] | None = None) -> Objects:
    result = render_with(*overrides, values=values)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def failure(render_with: Callable[..., Any], *overrides: str, values: dict[str, Any] | None = None) -> str:
    result = render_with(*overrides, values=values)
    assert result.returncode != 0, "the render should have failed"
    return result.stderr


# --- the server -------------------------------------------------------------------------------------


def test_mlflow_runs_the_basic_auth_app_through_the_charts_start_script(default_objects: Objects) -> None:
    deployment = find(default_objects, "Deployment", "driftloop-mlflow")
    command = container(deployment)["command"]
    assert command[:2] == ["sh", f"{MOUNT}/mlflow-auth-server.sh"]
    assert command[2:6] == ["--host", "0.0.0.0", "--port", "5000"]
    # the script starts `mlflow server --app-name basic-auth` with the Deployment's arguments
    assert 'exec mlflow server --app-name basic-auth "$@"' in (FILES / "mlflow-auth-server.sh").read_text()
    mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
    assert mounts["mlflow-auth"] == {"name": "mlflow-auth", "mountPath": MOUNT, "readOnly": True}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}  # type: ignore[index]
    assert volumes["mlflow-auth"]["configMap"]["name"] == "driftloop-mlflow-auth"


def test_the_auth_configmap_carries_the_charts_files_as_they_are_and_no_secret(default_objects: Objects) -> None:
    data = find(default_objects, "ConfigMap", "driftloop-mlflow-auth")["data"]
    for key, file in {
        "basic_auth.ini": "mlflow-auth.ini",
        "mlflow-auth-server.sh": "mlflow-auth-server.sh",
        "mlflow-users.py": "mlflow-users.py",
    }.items():
        assert data[key] == (FILES / file).read_text(), f"{key} differs from files/{file}"
    ini = data["basic_auth.ini"]
    assert "default_permission = READ" in ini
    # the database URL (a password) and the admin's password are added in the pod, never stored here
    assert "database_uri" not in ini.replace("`database_uri`", "") and "admin_password" not in ini


def test_mlflow_takes_its_admin_and_its_users_database_from_secrets(default_objects: Objects) -> None:
    env = env_of(find(default_objects, "Deployment", "driftloop-mlflow"))
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == ("driftloop-auth", "mlflow-admin-username")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == ("driftloop-auth", "mlflow-admin-password")
    # users live in MLflow's own database: every replica and worker sees the same ones
    assert env["MLFLOW_AUTH_DATABASE_URI"] == env["MLFLOW_BACKEND_STORE_URI"]
    assert env["MLFLOW_AUTH_DATABASE_URI"][0] == "driftloop-database"
    assert env["MLFLOW_AUTH_CONFIG_TEMPLATE"] == f"{MOUNT}/basic_auth.ini"
    # the ini the script writes goes to the writable /tmp of the read-only container
    assert env["MLFLOW_AUTH_CONFIG_PATH"].startswith("/tmp/")
    assert container(find(default_objects, "Deployment", "driftloop-mlflow"))["securityContext"][
        "readOnlyRootFilesystem"
    ]


def test_the_probes_use_the_health_endpoint_the_auth_app_leaves_open(default_objects: Objects) -> None:
    mlflow = container(find(default_objects, "Deployment", "driftloop-mlflow"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert mlflow[probe]["httpGet"]["path"] == "/health", probe
        assert "httpHeaders" not in mlflow[probe]["httpGet"]


def test_a_change_of_the_auth_files_rolls_the_mlflow_pods(default_objects: Objects) -> None:
    annotations = find(default_objects, "Deployment", "driftloop-mlflow")["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/mlflow-auth"]) == 64


def test_ingress_hosts_stay_allowed_with_auth(render_with: Callable[..., Any]) -> None:
    objects = rendered(
        render_with,
        "mlflow.ingress.enabled=true",
        "mlflow.ingress.host=mlflow.example.com",
        values={"networkPolicy.ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "ingress"}}}]},
    )
    env = env_of(find(objects, "Deployment", "driftloop-mlflow"))
    assert "mlflow.example.com" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert find(objects, "Ingress", "driftloop-mlflow")["spec"]["rules"][0]["host"] == "mlflow.example.com"


# --- the users hook ---------------------------------------------------------------------------------


def test_the_users_hook_runs_after_install_upgrade_and_rollback_as_the_admin(default_objects: Objects) -> None:
    job = find(default_objects, "Job", "driftloop-mlflow-users")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade,post-rollback"
    assert container(job)["command"] == ["python", f"{MOUNT}/mlflow-users.py"]
    env = env_of(job)
    assert env["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow:5000"
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == ("driftloop-auth", "mlflow-admin-username")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == ("driftloop-auth", "mlflow-admin-password")
    assert env["MLFLOW_SERVICE_USERNAME"] == ("driftloop-auth", "mlflow-service-username")
    assert env["MLFLOW_SERVICE_PASSWORD"] == ("driftloop-auth", "mlflow-service-password")
    assert json.loads(env["MLFLOW_READERS"]) == []
    assert pod_spec(job)["automountServiceAccountToken"] is False  # type: ignore[index]


def test_readers_get_their_passwords_from_their_own_secrets(render_with: Callable[..., Any]) -> None:
    job = find(rendered(render_with, values={"auth.mlflow.readers": READERS}), "Job", "driftloop-mlflow-users")
    env = env_of(job)
    assert json.loads(env["MLFLOW_READERS"]) == [
        {"username": "alice", "passwordEnv": "MLFLOW_READER_0_PASSWORD"},
        {"username": "bob@example.com", "passwordEnv": "MLFLOW_READER_1_PASSWORD"},
    ]
    assert env["MLFLOW_READER_0_PASSWORD"] == ("mlflow-readers", "alice")
    assert env["MLFLOW_READER_1_PASSWORD"] == ("bob-mlflow", "password")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_chart_with_readers_is_valid_kubernetes(render_with: Callable[..., Any], version: str) -> None:
    objects = rendered(render_with, values={"auth.mlflow.readers": READERS})
    assert validation_errors(objects, version) == []


def test_only_mlflow_and_the_users_hook_see_the_mlflow_admin_password(default_objects: Objects) -> None:
    seeing = set()
    for obj in default_objects:
        spec = pod_spec(obj)
        for item in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
            for variable in item.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef", {})
                if ref.get("key") == "mlflow-admin-password":
                    seeing.add(f"{obj['kind']}/{obj['metadata']['name']}")
    assert seeing == {"Deployment/driftloop-mlflow", "Job/driftloop-mlflow-users"}
    # nor may a flow-run Job ask for it: the work pool's template names no admin key
    configmap = find(default_objects, "ConfigMap", "driftloop-work-pool")
    assert "mlflow-admin" not in configmap["data"]["base-job-template.json"]


def test_auth_off_runs_plain_mlflow_without_the_users_hook(render_with: Callable[..., Any]) -> None:
    objects = rendered(render_with, "auth.mlflow.enabled=false")
    mlflow = container(find(objects, "Deployment", "driftloop-mlflow"))
    assert mlflow["command"][:2] == ["mlflow", "server"]
    assert not any(e["name"].startswith("MLFLOW_AUTH_") for e in mlflow["env"])
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    assert ("Job", "driftloop-mlflow-users") not in names
    assert ("ConfigMap", "driftloop-mlflow-auth") not in names


# --- bad values fail the render, naming the key -------------------------------------------------------


def test_a_reader_listed_twice_fails_naming_the_key(render_with: Callable[..., Any]) -> None:
    stderr = failure(render_with, values={"auth.mlflow.readers": [READERS[0], READERS[0]]})
    assert 'auth.mlflow.readers[1].username: "alice" is listed twice' in stderr


def test_readers_without_mlflow_auth_fail_naming_both_keys(render_with: Callable[..., Any]) -> None:
    stderr = failure(render_with, "auth.mlflow.enabled=false", values={"auth.mlflow.readers": READERS})
    assert "auth.mlflow.readers: set while auth.mlflow.enabled=false" in stderr


@pytest.mark.parametrize(
    ("reader", "where"),
    [
        ({"username": "carol", "passwordKey": "p"}, "/auth/mlflow/readers/0"),
        ({"username": "carol", "existingSecret": "", "passwordKey": "p"}, "/auth/mlflow/readers/0/existingSecret"),
        ({"username": "carol:x", "existingSecret": "s", "passwordKey": "p"}, "/auth/mlflow/readers/0/username"),
        ({"username": "carol", "existingSecret": "s", "passwordKey": "p", "admin": True}, "/auth/mlflow/readers/0"),
    ],
)
def test_a_malformed_reader_fails_naming_the_key(render_with: Callable[..., Any], reader: dict, where: str) -> None:
    assert where in failure(render_with, values={"auth.mlflow.readers": [reader]})


@pytest.fixture
def cluster() -> Iterator[LookupCluster]:
    with lookup_cluster("driftloop") as stand_in:
        yield stand_in


def test_a_reader_named_like_a_generated_user_fails_naming_the_key(cluster: LookupCluster) -> None:
    # with generated credentials (a cluster lookup sees), the admin is `admin` and the service user `driftloop`
    result = render_on_cluster(
        cluster,
        "auth.mlflow.readers[0].username=admin",
        "auth.mlflow.readers[0].existingSecret=s",
        "auth.mlflow.readers[0].passwordKey=p",
    )
    assert result.returncode != 0
    assert 'auth.mlflow.readers[0].username: "admin" is the name of the generated MLflow admin' in result.stderr
