"""The Job of a flow run, as prefect-kubernetes builds it from our base job template.

`KubernetesWorkerJobConfiguration.from_template_and_values(...)` and `prepare_for_flow_run(...)` are
the worker's own code: the manifest checked here is the one the worker sends to the Kubernetes API,
not a hand-written copy. It is validated strictly against the Kubernetes schemas.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import yaml

from .conftest import K8S, KUBERNETES_VERSIONS, VALUES_FILES, Objects, base_job_template_of
from .test_kubernetes_validate import validation_errors

PREFECT_YAML = K8S.parent / "flows" / "prefect.yaml"
# prefect-kubernetes insists on `parallelism: 1` and `completions: 1` inside the pod spec (its
# `_get_base_job_manifest`; a template without them is refused, see the test below). The pod spec has no
# such fields: the API server drops them with a warning (field validation defaults to Warn for API
# clients) and a Job defaults both to 1. They are the one thing of the manifest Kubernetes does not
# know; the rest validates strictly.
PREFECT_KUBERNETES_EXTRA_FIELDS = (
    "spec.template.spec: Additional properties are not allowed ('completions', 'parallelism' were unexpected)"
)


def monitor_deployment() -> dict[str, Any]:
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return next(deployment for deployment in deployments if deployment["name"] == "monitor")


def build_job(template: dict[str, Any], job_variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Job manifest the worker would create for a scheduled run of the `monitor` deployment."""
    from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    declared = monitor_deployment()
    variables = {**declared["work_pool"]["job_variables"], **(job_variables or {})}
    flow = Flow(id=uuid.uuid4(), name="monitor")
    deployment = DeploymentResponse(
        id=uuid.uuid4(),
        name=declared["name"],
        flow_id=flow.id,
        entrypoint=declared["entrypoint"],
        parameters=declared["parameters"],
        work_pool_name="driftloop",
        job_variables=variables,
    )
    flow_run = FlowRun(id=uuid.uuid4(), name="clever-otter", flow_id=flow.id, deployment_id=deployment.id)
    pool = WorkPool(id=uuid.uuid4(), name="driftloop", type="kubernetes", base_job_template=template)
    configuration = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, variables))
    configuration.prepare_for_flow_run(flow_run, deployment=deployment, flow=flow, work_pool=pool, worker_name="w")
    job = configuration.job_manifest
    job["metadata"].setdefault("name", "clever-otter-abcde")  # the API server fills in generateName
    return job


def job_validation_errors(job: dict[str, Any], version: str) -> list[str]:
    errors = validation_errors([job], version)
    assert any(error.endswith(PREFECT_KUBERNETES_EXTRA_FIELDS) for error in errors)
    return [error for error in errors if not error.endswith(PREFECT_KUBERNETES_EXTRA_FIELDS)]


def container_env(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value") for item in container["env"]}


@pytest.fixture(scope="module")
def jobs(prefect_api: str, rendered: dict[str, Objects]) -> dict[str, dict[str, Any]]:
    """The flow-run Job for each values file's base job template."""
    return {values_file: build_job(base_job_template_of(rendered[values_file])) for values_file in VALUES_FILES}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_flow_run_job_is_valid_kubernetes(values_file: str, version: str, jobs: dict[str, dict]) -> None:
    assert job_validation_errors(jobs[values_file], version) == []


def test_the_flow_run_job_runs_our_image_locked_down_with_requests_and_limits(jobs: dict[str, dict]) -> None:
    job = jobs["default"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "driftloop:0.1.0"
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["privileged"] is False
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert pod["serviceAccountName"] == "driftloop-flow-run"
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "models", "configMap": {"name": "driftloop-models"}} in pod["volumes"]


def test_a_failed_or_stuck_flow_run_job_ends_instead_of_hanging(jobs: dict[str, dict]) -> None:
    spec = jobs["default"]["spec"]
    assert spec["backoffLimit"] == 0  # an OOM-killed or failed pod fails the Job at once
    assert spec["activeDeadlineSeconds"] == 14400  # an unschedulable Job fails after 4 h
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_the_flow_run_reaches_prefect_and_mlflow_inside_the_cluster(jobs: dict[str, dict]) -> None:
    env = container_env(jobs["default"])
    assert env["PREFECT_API_URL"] == "http://driftloop-prefect-server:4200/api"
    assert env["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow:5000"
    assert env["DRIFTLOOP_MODELS_DIR"] == "/etc/driftloop/models"
    assert env["HOME"] == "/tmp"
    assert uuid.UUID(env["PREFECT__FLOW_RUN_ID"])


def test_the_flow_run_job_carries_the_labels_its_network_policy_and_observer_select(jobs: dict[str, dict]) -> None:
    job = jobs["default"]
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/instance"] == "driftloop"
        assert labels["app.kubernetes.io/component"] == "flow-run"
        assert uuid.UUID(labels["prefect.io/flow-run-id"])
    assert job["metadata"]["namespace"] == "driftloop"


def test_values_reach_the_flow_run_job(jobs: dict[str, dict]) -> None:
    bundled = jobs["bundled-database-values.yaml"]["spec"]["template"]["spec"]
    assert bundled["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert bundled["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "6Gi"}
    assert {"name": "data", "mountPath": "/data", "readOnly": False} in bundled["containers"][0]["volumeMounts"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "driftloop-data", "readOnly": False}} in bundled[
        "volumes"
    ]
    external = jobs["external-database-s3-values.yaml"]
    assert external["metadata"]["namespace"] == "driftloop-jobs"
    pod = external["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "driftloop-s3"}},
        {"secretRef": {"name": "driftloop-webhook"}},
    ]
    assert pod["containers"][0]["image"].startswith("registry.example.com/driftloop@sha256:")
    assert pod["tolerations"][0]["key"] == "workload"
    assert external["spec"]["activeDeadlineSeconds"] == 7200
    env = container_env(external)
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    # From their own namespace, flow runs name the services with the release's namespace.
    assert env["PREFECT_API_URL"] == "http://driftloop-prefect-server.driftloop:4200/api"
    assert env["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow.driftloop:5000"


def test_a_deployment_may_override_resources_and_add_env(
    prefect_api: str, default_base_job_template: dict[str, Any]
) -> None:
    job = build_job(default_base_job_template, {"memory_limit": "8Gi", "env": {"EXTRA": "1"}})
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "8Gi"
    env = container_env(job)
    assert env["EXTRA"] == "1"
    assert env["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow:5000"  # the template's env is kept
    assert job_validation_errors(job, "1.35") == []


def test_k8s_base_job_template_is_what_the_chart_renders_with_default_values(
    default_base_job_template: dict[str, Any],
) -> None:
    assert json.loads((K8S / "base-job-template.json").read_text()) == default_base_job_template, (
        "k8s/base-job-template.json: run python helm/driftloop/scripts/render_k8s.py"
    )


def test_prefect_kubernetes_refuses_a_template_without_its_pod_spec_extras(
    prefect_api: str, default_base_job_template: dict[str, Any]
) -> None:
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads(json.dumps(default_base_job_template))
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert (pod.pop("parallelism"), pod.pop("completions")) == (1, 1)
    with pytest.raises(ValueError, match="/spec/template/spec/completions, /spec/template/spec/parallelism"):
        asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, {}))
