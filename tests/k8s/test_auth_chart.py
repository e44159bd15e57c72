"""The servers' credentials in the rendered chart: who gets the Prefect auth string and MLflow's users.

Two ways to render: `helm template` as a GitOps tool does (no cluster: the credentials must come from
existing Secrets, tests/k8s/no-cluster-values.yaml names them), and `helm template --dry-run=server`
against a stand-in Kubernetes API (lookup_cluster.py), where the chart's `lookup` sees a cluster as on
`helm install` and `helm upgrade` and generates the credentials itself.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import KUBERNETES_VERSIONS, NAMESPACE, RELEASE, Objects, base_job_template_of, find, parse, pod_spec
from .lookup_cluster import LookupCluster, lookup_cluster, render_on_cluster
from .test_kubernetes_validate import validation_errors

AUTH_SECRET, FLOW_RUN_SECRET = "driftloop-auth", "driftloop-flow-run-auth"
# The pods that call the Prefect API, and the ones of them that also call MLflow.
PREFECT_CLIENTS = {
    ("Deployment", "driftloop-prefect-worker"),
    ("Job", "driftloop-register"),
    ("Deployment", "driftloop-api"),
    ("Pod", "driftloop-test-connection"),
}
MLFLOW_CLIENTS = {("Deployment", "driftloop-api"), ("Pod", "driftloop-test-connection")}
FLOW_RUN_KEYS = {"PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}


def env_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The first container's environment: name → value, or → (Secret, key) for a secretKeyRef."""
    spec = pod_spec(obj)
    assert spec is not None
    env = {}
    for item in spec["containers"][0].get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = (ref["name"], ref["key"]) if ref else item.get("value")
    return env


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


@pytest.fixture
def cluster() -> Iterator[LookupCluster]:
    with lookup_cluster(NAMESPACE) as stand_in:
        yield stand_in


def installed(cluster: LookupCluster, *overrides: str) -> Objects:
    result = render_on_cluster(cluster, *overrides)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


# --- GitOps: credentials from existing Secrets ------------------------------------------------------


def test_the_prefect_server_requires_the_auth_string_of_the_auth_secret(default_objects: Objects) -> None:
    server = find(default_objects, "Deployment", "driftloop-prefect-server")
    assert env_of(server)["PREFECT_SERVER_API_AUTH_STRING"] == (AUTH_SECRET, "prefect-auth-string")


def test_every_prefect_client_pod_sends_the_auth_string_of_the_auth_secret(default_objects: Objects) -> None:
    with_auth = {
        (obj["kind"], obj["metadata"]["name"])
        for obj in default_objects
        if pod_spec(obj) and env_of(obj).get("PREFECT_API_AUTH_STRING") == (AUTH_SECRET, "prefect-auth-string")
    }
    assert with_auth == PREFECT_CLIENTS


def test_mlflow_clients_sign_in_as_the_service_user_never_the_admin(default_objects: Objects) -> None:
    for kind, name in MLFLOW_CLIENTS:
        env = env_of(find(default_objects, kind, name))
        assert env["MLFLOW_TRACKING_USERNAME"] == (AUTH_SECRET, "mlflow-service-username")
        assert env["MLFLOW_TRACKING_PASSWORD"] == (AUTH_SECRET, "mlflow-service-password")
    admin_keys = {"mlflow-admin-username", "mlflow-admin-password"}
    for kind, name in PREFECT_CLIENTS | {("Deployment", "driftloop-prefect-server")}:
        refs = {value[1] for value in env_of(find(default_objects, kind, name)).values() if isinstance(value, tuple)}
        assert not refs & admin_keys, f"{kind} {name} gets the MLflow admin"


def test_flow_runs_get_their_credentials_from_the_secret_in_the_jobs_namespace(default_objects: Objects) -> None:
    worker = env_of(find(default_objects, "Deployment", "driftloop-prefect-worker"))
    # prefect-kubernetes copies the worker's own auth string into each Job in plain text unless it is
    # told which Secret of the Jobs' namespace holds it; then the Job references that Secret instead.
    assert worker["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"] == FLOW_RUN_SECRET
    assert worker["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"] == "PREFECT_API_AUTH_STRING"


def test_with_existing_secrets_the_chart_generates_no_credentials(default_objects: Objects) -> None:
    secrets = {obj["metadata"]["name"] for obj in default_objects if obj["kind"] == "Secret"}
    assert not secrets & {AUTH_SECRET, FLOW_RUN_SECRET}


def test_a_render_without_the_cluster_and_without_existing_secret_fails_naming_the_key(render_with: Any) -> None:
    result = render_with("auth.existingSecret=")
    assert result.returncode != 0
    assert "auth.existingSecret: required when rendering without access to the cluster" in result.stderr
    for key in ("prefect-auth-string", "mlflow-admin-password", "mlflow-service-password"):
        assert key in result.stderr


def test_an_existing_auth_secret_without_a_flow_run_secret_fails_naming_the_key(render_with: Any) -> None:
    result = render_with("auth.flowRunExistingSecret=", "worker.jobsNamespace=driftloop-jobs")
    assert result.returncode != 0
    assert (
        'auth.flowRunExistingSecret: required with auth.existingSecret: name a Secret in namespace "driftloop-jobs"'
        in (result.stderr)
    )


def test_auth_turned_off_renders_without_credentials_anywhere(render_with: Any) -> None:
    result = render_with("auth.existingSecret=", "auth.prefect.enabled=false", "auth.mlflow.enabled=false")
    assert result.returncode == 0, result.stderr
    objects = parse(result.stdout)
    names = {"PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME"}
    for obj in objects:
        if pod_spec(obj):
            assert not names & set(env_of(obj)), f"{obj['kind']} {obj['metadata']['name']}"
    assert not [obj for obj in objects if obj["kind"] == "Secret"]


def test_a_typo_in_the_auth_block_fails_naming_the_key(render_with: Any) -> None:
    result = render_with("auth.prefect.enable=false")
    assert result.returncode != 0
    assert "at '/auth/prefect'" in result.stderr and "'enable' not allowed" in result.stderr


# --- install and upgrade: credentials generated and kept ---------------------------------------------


def test_install_generates_random_credentials_kept_after_uninstall(cluster: LookupCluster) -> None:
    first = find(installed(cluster), "Secret", AUTH_SECRET)
    second = find(installed(cluster), "Secret", AUTH_SECRET)
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    credentials = decoded(first)
    assert credentials["mlflow-admin-username"] == "admin"
    assert credentials["mlflow-service-username"] == "driftloop"
    user, _, password = credentials["prefect-auth-string"].partition(":")
    assert user == "driftloop" and len(password) == 32
    assert len(credentials["mlflow-admin-password"]) == len(credentials["mlflow-service-password"]) == 32
    assert len({password, credentials["mlflow-admin-password"], credentials["mlflow-service-password"]}) == 3
    # Two installs in two clusters never share a password.
    assert decoded(second)["mlflow-admin-password"] != credentials["mlflow-admin-password"]


def test_upgrade_keeps_the_credentials_of_the_secret_in_the_cluster(cluster: LookupCluster) -> None:
    secret = find(installed(cluster), "Secret", AUTH_SECRET)
    # As `helm install` leaves it: owned by the release, so the upgrade may take it over.
    secret["metadata"]["annotations"].update(
        {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE}
    )
    cluster.add(secret)
    upgraded = installed(cluster)
    assert decoded(find(upgraded, "Secret", AUTH_SECRET)) == decoded(secret)
    flow_run = decoded(find(upgraded, "Secret", FLOW_RUN_SECRET))
    assert flow_run["PREFECT_API_AUTH_STRING"] == decoded(secret)["prefect-auth-string"]


def test_the_flow_run_secret_holds_the_service_user_and_no_admin_password(cluster: LookupCluster) -> None:
    objects = installed(cluster, "worker.jobsNamespace=driftloop-jobs")
    credentials = decoded(find(objects, "Secret", AUTH_SECRET))
    secret = find(objects, "Secret", FLOW_RUN_SECRET)
    assert secret["metadata"]["namespace"] == "driftloop-jobs"
    assert decoded(secret) == {
        "PREFECT_API_AUTH_STRING": credentials["prefect-auth-string"],
        "MLFLOW_TRACKING_USERNAME": credentials["mlflow-service-username"],
        "MLFLOW_TRACKING_PASSWORD": credentials["mlflow-service-password"],
    }
    assert credentials["mlflow-admin-password"] not in decoded(secret).values()


def test_on_a_cluster_the_chart_renders_without_existing_secrets(cluster: LookupCluster) -> None:
    objects = installed(cluster)
    server = env_of(find(objects, "Deployment", "driftloop-prefect-server"))
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == (AUTH_SECRET, "prefect-auth-string")
    assert f"GET /api/v1/namespaces/{NAMESPACE}/secrets/{AUTH_SECRET}" in cluster.requests


# --- the worker's Jobs -------------------------------------------------------------------------------


def test_the_workers_jobs_reference_the_flow_run_secret_instead_of_the_auth_string(
    default_objects: Objects, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prefect-kubernetes' own Job creation, with the rendered worker's environment; the Kubernetes API
    (BatchV1Api.create_namespaced_job) is mocked and records the Job it is sent."""
    from unittest import mock

    from kubernetes_asyncio.client import BatchV1Api
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    worker_env = env_of(find(default_objects, "Deployment", "driftloop-prefect-worker"))
    for name, value in worker_env.items():
        if name.startswith("PREFECT_INTEGRATIONS_KUBERNETES_WORKER_"):
            monkeypatch.setenv(name, value)
    created: list[dict[str, Any]] = []

    async def create_namespaced_job(api: Any, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        created.append(body)
        return mock.Mock()

    template = base_job_template_of(default_objects)
    secret = "driftloop:" + "s3cret" * 5
    flow_run = FlowRun(id=uuid.uuid4(), name="clever-otter", flow_id=uuid.uuid4())

    async def create_job() -> None:
        configuration = await KubernetesWorkerJobConfiguration.from_template_and_values(template, {})
        configuration.prepare_for_flow_run(flow_run)
        async with KubernetesWorker(work_pool_name="driftloop") as worker:
            await worker._create_job(configuration, mock.Mock())

    with (
        temporary_settings(
            {PREFECT_API_URL: "http://driftloop-prefect-server:4200/api", PREFECT_API_AUTH_STRING: secret}
        ),
        mock.patch.object(BatchV1Api, "create_namespaced_job", create_namespaced_job),
    ):
        asyncio.run(create_job())
    (job,) = created
    env = env_of(job)
    assert {name: env[name] for name in FLOW_RUN_KEYS} == {name: (FLOW_RUN_SECRET, name) for name in FLOW_RUN_KEYS}
    assert secret not in str(job)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_chart_rendered_on_a_cluster_is_valid_kubernetes(version: str, cluster: LookupCluster) -> None:
    """The generated Secrets exist only on this path (GitOps renders never have them): validated too."""
    objects = installed(cluster, "worker.jobsNamespace=driftloop-jobs")
    assert {AUTH_SECRET, FLOW_RUN_SECRET} <= {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Secret"}
    assert validation_errors(objects, version) == []
