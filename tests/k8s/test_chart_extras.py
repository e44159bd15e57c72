"""What anchor charts offer beside the workloads: a ServiceMonitor, PodDisruptionBudgets, priority
classes, pod labels, Service annotations, extra volumes and sidecars, placement of the hooks and the
test pod, fsGroupChangePolicy, and the Prefect server's readiness on /api/ready."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from .conftest import TELEMETRY_OFF, Objects, base_job_template_of, find, helm_template, parse, pod_spec
from .test_kubernetes_validate import validation_errors

# The chart's own pods (Deployments, the StatefulSet, hook Jobs, the test pod) by component.
WORKLOADS = {
    "api": ("Deployment", "driftloop-api"),
    "prefectServer": ("Deployment", "driftloop-prefect-server"),
    "worker": ("Deployment", "driftloop-prefect-worker"),
    "mlflow": ("Deployment", "driftloop-mlflow"),
    "postgresql": ("StatefulSet", "driftloop-postgresql"),
}


def render(*overrides: str, values: dict[str, Any] | None = None) -> Objects:
    args = [arg for override in overrides for arg in ("--set", override)]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"]["labels"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]


def pods(objects: Objects) -> dict[str, dict[str, Any]]:
    return {f"{obj['kind']}/{obj['metadata']['name']}": spec for obj in objects if (spec := pod_spec(obj)) is not None}


def test_no_service_monitor_by_default(default_objects: Objects) -> None:
    assert not [obj for obj in default_objects if obj["kind"] == "ServiceMonitor"]


def test_the_service_monitor_scrapes_the_api_metrics_port() -> None:
    objects = render(
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.interval=30s",
        "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
    )
    monitor = find(objects, "ServiceMonitor", "driftloop-api")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["driftloop"]}
    (endpoint,) = spec["endpoints"]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "30s"}
    # It selects the API's Service, and only it, by a port name that Service has.
    services = [obj for obj in objects if obj["kind"] == "Service"]
    selected = [
        service["metadata"]["name"]
        for service in services
        if spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    ]
    assert selected == ["driftloop-api"]
    service = find(objects, "Service", "driftloop-api")
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    # The port the Service sends /metrics to serves the API (service/api/ answers /metrics).
    container = find(objects, "Deployment", "driftloop-api")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http", "containerPort": 8000} in container["ports"]


def test_a_bad_scrape_interval_fails_the_schema_naming_the_key() -> None:
    result = helm_template("--set", "metrics.serviceMonitor.interval=every minute")
    assert result.returncode != 0
    assert "interval" in result.stderr and "serviceMonitor" in result.stderr


def test_no_disruption_budget_for_single_replicas(default_objects: Objects) -> None:
    assert not [obj for obj in default_objects if obj["kind"] == "PodDisruptionBudget"]


def test_several_replicas_get_a_disruption_budget_selecting_their_pods(rendered: dict[str, Objects]) -> None:
    objects = rendered["external-database-s3-values.yaml"]  # mlflow.replicas: 2
    budgets = [obj for obj in objects if obj["kind"] == "PodDisruptionBudget"]
    assert [budget["metadata"]["name"] for budget in budgets] == ["driftloop-mlflow"]
    (budget,) = budgets
    assert budget["spec"]["maxUnavailable"] == 1
    deployment = find(objects, "Deployment", "driftloop-mlflow")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]

    objects = render("api.replicas=3", "api.podDisruptionBudget.maxUnavailable=50%")
    assert find(objects, "PodDisruptionBudget", "driftloop-api")["spec"]["maxUnavailable"] == "50%"
    objects = render("api.replicas=3", "api.podDisruptionBudget.enabled=false")
    assert not [obj for obj in objects if obj["kind"] == "PodDisruptionBudget"]


def test_a_global_priority_class_reaches_every_chart_pod_and_a_component_overrides_it() -> None:
    objects = render("priorityClassName=driftloop-high", "worker.priorityClassName=driftloop-batch")
    classes = {name: spec.get("priorityClassName") for name, spec in pods(objects).items()}
    assert classes.pop("Deployment/driftloop-prefect-worker") == "driftloop-batch"
    assert len(classes) >= 8 and set(classes.values()) == {"driftloop-high"}, classes


def test_no_priority_class_by_default(default_objects: Objects) -> None:
    assert all("priorityClassName" not in spec for spec in pods(default_objects).values())


@pytest.mark.parametrize("component", WORKLOADS)
def test_pod_labels_are_added_and_the_selector_stays(component: str, default_objects: Objects) -> None:
    kind, name = WORKLOADS[component]
    objects = render(f"{component}.podLabels.team=ml-platform")
    workload = find(objects, kind, name)
    assert pod_labels(workload)["team"] == "ml-platform"
    assert workload["spec"]["selector"] == find(default_objects, kind, name)["spec"]["selector"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels(workload).items()


@pytest.mark.parametrize("label", ["app.kubernetes.io/component", "app.kubernetes.io/instance", "helm.sh/chart"])
def test_a_pod_label_the_chart_selects_by_fails_naming_the_key(label: str) -> None:
    # A migrate-labelled API pod would pass the PostgreSQL NetworkPolicy: the chart's labels are its own.
    result = helm_template("--set-json", f'api.podLabels={{"{label}": "migrate"}}')
    assert result.returncode != 0
    assert f"api.podLabels.{label}: the chart sets this label" in result.stderr


@pytest.mark.parametrize(
    ("component", "service"), [("api", "api"), ("prefectServer", "prefect-server"), ("mlflow", "mlflow")]
)
def test_service_annotations_reach_the_service(component: str, service: str) -> None:
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    objects = render(values={f"{component}.service.annotations": annotations})
    assert find(objects, "Service", f"driftloop-{service}")["metadata"]["annotations"] == annotations


CA_BUNDLE = {
    "extraVolumes": [{"name": "ca-bundle", "configMap": {"name": "corporate-ca"}}],
    "extraVolumeMounts": [{"name": "ca-bundle", "mountPath": "/etc/ssl/corporate", "readOnly": True}],
    "extraContainers": [
        {
            "name": "proxy",
            "image": "registry.example.com/proxy:1.0",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        }
    ],
}


@pytest.mark.parametrize("component", ["api", "prefectServer", "worker", "mlflow"])
def test_extra_volumes_mounts_and_containers_reach_the_pod(component: str) -> None:
    kind, name = WORKLOADS[component]
    objects = render(values={f"{component}.{key}": value for key, value in CA_BUNDLE.items()})
    spec = find(objects, kind, name)["spec"]["template"]["spec"]
    main, *sidecars = spec["containers"]
    assert CA_BUNDLE["extraVolumes"][0] in spec["volumes"]
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert CA_BUNDLE["extraVolumeMounts"][0] in main["volumeMounts"]
    assert sidecars == CA_BUNDLE["extraContainers"]
    assert validation_errors([find(objects, kind, name)], "1.35") == []


@pytest.mark.parametrize("version", ["1.29", "1.35"])
def test_every_extra_together_renders_valid_kubernetes(version: str) -> None:
    extras: dict[str, Any] = {"priorityClassName": "driftloop-high"}
    for component in ("api", "prefectServer", "worker", "mlflow"):
        extras.update({f"{component}.{key}": value for key, value in CA_BUNDLE.items()})
        extras[f"{component}.podLabels"] = {"team": "ml"}
    for section in ("hooks", "tests"):
        extras[f"{section}.nodeSelector"] = {"pool": "system"}
        extras[f"{section}.tolerations"] = [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}]
    objects = render(
        "api.replicas=2", "mlflow.replicas=2", "mlflow.artifacts.pvc.accessMode=ReadWriteMany", values=extras
    )
    assert {obj["kind"] for obj in objects} >= {"PodDisruptionBudget", "NetworkPolicy", "Job", "Pod"}
    assert validation_errors(objects, version) == []


def test_hooks_and_the_test_pod_are_placed_as_asked() -> None:
    placement = {
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    }
    objects = render(
        values={f"{section}.{key}": value for section in ("hooks", "tests") for key, value in placement.items()}
    )
    placed = {
        name: {key: spec.get(key) for key in placement}
        for name, spec in pods(objects).items()
        if name.startswith("Job/") or name.startswith("Pod/")
    }
    assert set(placed) >= {"Job/driftloop-register", "Job/driftloop-migrate", "Pod/driftloop-test-connection"}
    assert all(fields == placement for fields in placed.values()), placed


@pytest.mark.parametrize("values_file", ["default", "external-database-s3-values.yaml"])
def test_volumes_are_not_chowned_at_every_start(values_file: str, rendered: dict[str, Objects]) -> None:
    objects = rendered[values_file]
    for name, spec in pods(objects).items():
        assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch", name
    flow_run = base_job_template_of(objects)["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert flow_run["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"


def prefect_probe_statuses(paths: list[str], auth_string: str, home: str) -> dict[str, int]:
    """Status of each path on a real Prefect API app with basic auth on, asked without credentials as the
    kubelet asks. In a subprocess: the server reads its settings once, from the environment."""
    script = textwrap.dedent(
        """
        import json, sys
        from fastapi.testclient import TestClient
        from prefect.server.api.server import create_app

        with TestClient(create_app(ephemeral=True, final=True)) as client:
            print(json.dumps({path: client.get(path).status_code for path in sys.argv[1:]}))
        """
    )
    env = {
        **TELEMETRY_OFF,
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "PREFECT_HOME": home,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
    }
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_prefect_probes_answer_without_credentials_on_a_server_with_auth(default_objects: Objects, tmp_path) -> None:
    container = find(default_objects, "Deployment", "driftloop-prefect-server")["spec"]["template"]["spec"][
        "containers"
    ][0]
    readiness = container["readinessProbe"]["httpGet"]["path"]
    liveness = container["livenessProbe"]["httpGet"]["path"]
    # Readiness asks whether the database answers; liveness only whether the process does.
    assert (readiness, liveness) == ("/api/ready", "/api/health")
    statuses = prefect_probe_statuses([readiness, liveness, "/api/admin/version"], "admin:s3cret", str(tmp_path))
    assert statuses == {readiness: 200, liveness: 200, "/api/admin/version": 401}
