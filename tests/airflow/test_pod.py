"""The pod of a KubernetesPodOperator task, built by the provider's own code (``build_pod_request_obj``),
validated strictly against the Kubernetes schemas and compared with the Prefect flow-run Job's pod, which
prefect-kubernetes builds from the chart's base job template. No cluster: nothing is sent to one."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.k8s.conftest import KUBERNETES_VERSIONS, base_job_template_of, helm_template, parse, values_args
from tests.k8s.test_flow_run_job import build_job
from tests.k8s.test_kubernetes_validate import validation_errors

from .conftest import airflow_python

BUILD_PODS = """
import json
from kubernetes.client import ApiClient
from airflow.models.dagbag import DagBag
dag = DagBag(dag_folder=".", include_examples=False).dags["driftloop_weather"]
pods = {
    task_id: ApiClient().sanitize_for_serialization(dag.get_task(task_id).build_pod_request_obj(dry_run=True))
    for task_id in ("check", "retrain", "promote")
}
print(json.dumps(pods))
"""


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    import os

    from .conftest import DAGS, TELEMETRY_OFF

    home = tmp_path_factory.mktemp("airflow-pods")
    models = home / "models"
    models.mkdir()
    (models / "weather.yaml").write_text(yaml.safe_dump({"model": {"name": "weather"}}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(TELEMETRY_OFF)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "DRIFTLOOP_MODELS_DIR": str(models),
        }
    )
    result = airflow_python(BUILD_PODS, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def prefect_pod(prefect_api: str) -> dict[str, Any]:
    """The pod template of the flow-run Job the Prefect worker would create, from the chart's defaults."""
    template = base_job_template_of(parse(helm_template(*values_args("default")).stdout))
    return build_job(template)["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_task_pod_is_valid_kubernetes(pods: dict[str, dict], version: str) -> None:
    assert [error for pod in pods.values() for error in validation_errors([pod], version)] == []


def test_a_task_pod_is_locked_down_as_the_flow_run_job(pods: dict[str, dict], prefect_pod: dict[str, Any]) -> None:
    # given the check task's pod and the Prefect flow-run Job's pod
    pod = pods["check"]["spec"]
    base = next(container for container in pod["containers"] if container["name"] == "base")
    (job_container,) = prefect_pod["containers"]
    # then the security contexts, resources, service account and models mount are the Job's
    assert pod["securityContext"] == prefect_pod["securityContext"]
    assert base["securityContext"] == job_container["securityContext"]
    assert base["resources"] == job_container["resources"]
    assert base["image"] == job_container["image"] and base["imagePullPolicy"] == job_container["imagePullPolicy"]
    assert pod["serviceAccountName"] == prefect_pod["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    for mount in job_container["volumeMounts"]:
        assert mount in base["volumeMounts"]
    for volume in prefect_pod["volumes"]:
        assert volume in pod["volumes"]
    # and the XCom sidecar that carries check's answer is as locked down as driftloop's container
    sidecar = next(container for container in pod["containers"] if container["name"] != "base")
    assert sidecar["securityContext"] == job_container["securityContext"]


def test_a_task_pod_has_the_registry_credentials_from_the_flow_runs_secret(
    pods: dict[str, dict], prefect_pod: dict[str, Any]
) -> None:
    # given each task's container and the flow-run Job's
    (job_container,) = prefect_pod["containers"]
    job_secrets = {item["name"]: item["valueFrom"] for item in job_container["env"] if "valueFrom" in item}
    for task_id, pod in pods.items():
        base = next(container for container in pod["spec"]["containers"] if container["name"] == "base")
        env = {item["name"]: item.get("valueFrom", item.get("value")) for item in base["env"]}
        # then MLflow's credentials come from the same Secret and keys, and the address is the chart's
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            assert env[key] == job_secrets[key], task_id
        assert env["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow:5000"
        assert f"MLFLOW_TRACKING_URI={env['MLFLOW_TRACKING_URI']}" in job_container["command"]
        # and the command is the driftloop step, reading the mounted models folder
        (script,) = base["args"]
        assert script.startswith(f"driftloop {task_id} weather --models /etc/driftloop/models"), script
    assert pods["check"]["spec"]["containers"][0]["args"][0].endswith("--json > /airflow/xcom/return.json")
