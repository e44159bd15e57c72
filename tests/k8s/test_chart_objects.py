"""What the chart renders, read as a cluster would: secure pods, least-privilege RBAC, the hooks, the
servers' commands and settings, NetworkPolicies, the install notes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import CHART, NO_CLUSTER_VALUES, VALUES_FILES, Objects, find, helm_template, pod_spec, run, tool


def pods(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if (spec := pod_spec(obj)) is not None:
            yield f"{obj['kind']}/{obj['metadata']['name']}", spec


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_pod_is_locked_down_with_requests_and_limits(values_file: str, rendered: dict[str, Objects]) -> None:
    checked = 0
    for name, spec in pods(rendered[values_file]):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("hostNetwork") is None and spec.get("hostPID") is None, name
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name}: {kind}"
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a read-only container needs a writable /tmp"
            checked += 1
    assert checked >= 7


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_only_the_worker_mounts_a_service_account_token(values_file: str, rendered: dict[str, Objects]) -> None:
    mounting = {name for name, spec in pods(rendered[values_file]) if spec.get("automountServiceAccountToken")}
    assert mounting == {"Deployment/driftloop-prefect-worker"}
    accounts = [obj for obj in rendered[values_file] if obj["kind"] == "ServiceAccount"]
    assert accounts and all(account["automountServiceAccountToken"] is False for account in accounts)


def test_the_worker_role_grants_jobs_and_read_access_in_the_jobs_namespace_only(default_objects: Objects) -> None:
    assert not [obj for obj in default_objects if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    role = find(default_objects, "Role", "driftloop-prefect-worker")
    rules = {(tuple(rule["apiGroups"]), tuple(rule["resources"])): set(rule["verbs"]) for rule in role["rules"]}
    assert rules == {
        (("batch",), ("jobs",)): {"get", "list", "watch", "create", "delete"},
        (("",), ("pods", "pods/log", "events")): {"get", "list", "watch"},
    }
    binding = find(default_objects, "RoleBinding", "driftloop-prefect-worker")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "driftloop-prefect-worker", "namespace": "driftloop"}
    ]


def test_jobs_in_another_namespace_get_their_role_account_and_policy_there(rendered: dict[str, Objects]) -> None:
    objects = rendered["external-database-s3-values.yaml"]
    in_jobs_namespace = {
        (obj["kind"], obj["metadata"]["name"]) for obj in objects if obj["metadata"]["namespace"] == "driftloop-jobs"
    }
    assert in_jobs_namespace == {
        ("Role", "driftloop-prefect-worker"),
        ("RoleBinding", "driftloop-prefect-worker"),
        ("ServiceAccount", "driftloop-flow-run"),
        ("NetworkPolicy", "driftloop-flow-run"),
    }
    worker = find(objects, "Deployment", "driftloop-prefect-worker")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(worker)["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == "driftloop-jobs"
    template = json.loads(find(objects, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"])
    # Not a job variable: the namespace is fixed in the job configuration and the manifest.
    assert template["job_configuration"]["namespace"] == "driftloop-jobs"
    assert template["job_configuration"]["job_manifest"]["metadata"]["namespace"] == "driftloop-jobs"


def test_no_credential_reaches_a_configmap(rendered_text: dict[str, str]) -> None:
    # The generated passwords are checked the same way in test_databases.py, where lookup sees a cluster.
    for values_file, objects in ((name, yaml.safe_load_all(text)) for name, text in rendered_text.items()):
        for obj in filter(None, objects):
            if obj["kind"] == "Secret":
                continue
            text = json.dumps(obj)
            assert not re.search(r"://[^/\s:@\"]+:[^/\s@\"]+@", text), f"{values_file}: {obj['metadata']['name']}"


def test_the_bundled_database_volumes_outlive_an_uninstall(default_objects: Objects) -> None:
    # The generated Secret's keep policy: test_databases.py, where lookup sees a cluster.
    artifacts = find(default_objects, "PersistentVolumeClaim", "driftloop-mlflow-artifacts")
    assert artifacts["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    postgresql = find(default_objects, "StatefulSet", "driftloop-postgresql")
    assert postgresql["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_an_external_database_renders_no_postgresql(rendered: dict[str, Objects]) -> None:
    objects = rendered["external-database-s3-values.yaml"]
    assert not [obj for obj in objects if "postgresql" in obj["metadata"]["name"]]
    assert not [obj for obj in objects if obj["kind"] == "Secret"]
    server = find(objects, "Deployment", "driftloop-prefect-server")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(server)["PREFECT_API_DATABASE_CONNECTION_URL"] == {
        "secretKeyRef": {"name": "driftloop-external-database", "key": "prefect-database-url"}
    }


def test_hooks_register_after_install_and_upgrade_and_migrate_before_upgrade(default_objects: Objects) -> None:
    register = find(default_objects, "Job", "driftloop-register")
    assert register["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade,post-rollback"
    container = register["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "/etc/driftloop/work-pool/register.sh"]
    assert env_of(container)["PREFECT_API_URL"] == "http://driftloop-prefect-server:4200/api"
    migrate = find(default_objects, "Job", "driftloop-migrate")
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    script = migrate["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "prefect server database upgrade -y" in script and 'mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"' in script


def test_migrations_can_be_turned_off(render_with) -> None:
    result = render_with("hooks.migrate.enabled=false")
    assert result.returncode == 0, result.stderr
    jobs = {d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Job"}
    assert jobs == {"driftloop-register", "driftloop-mlflow-users"}


def test_servers_run_the_documented_commands(rendered: dict[str, Objects]) -> None:
    objects = rendered["default"]

    def container(name: str) -> dict[str, Any]:
        return find(objects, "Deployment", f"driftloop-{name}")["spec"]["template"]["spec"]["containers"][0]

    assert container("api")["command"] == ["driftloop", "serve", "--host", "0.0.0.0", "--port", "8000"]
    api = env_of(container("api"))
    assert api["MLFLOW_TRACKING_URI"] == "http://driftloop-mlflow:5000"
    assert api["PREFECT_API_URL"] == "http://driftloop-prefect-server:4200/api"
    assert "DRIFTLOOP_API_TOKEN" not in api
    exposed = find(rendered["ingress-values.yaml"], "Deployment", "driftloop-api")
    assert env_of(exposed["spec"]["template"]["spec"]["containers"][0])["DRIFTLOOP_API_TOKEN"] == {
        "secretKeyRef": {"name": "driftloop-api-token", "key": "token"}
    }
    assert container("prefect-server")["command"][:3] == ["prefect", "server", "start"]
    assert container("prefect-worker")["command"][:7] == [
        "prefect",
        "worker",
        "start",
        "--pool",
        "driftloop",
        "--type",
        "kubernetes",
    ]
    mlflow = container("mlflow")
    # with auth (the default) the chart's script runs `mlflow server --app-name basic-auth` with these arguments
    assert mlflow["command"][:2] == ["sh", "/etc/driftloop/mlflow-auth/mlflow-auth-server.sh"]
    assert "--serve-artifacts" in mlflow["command"]
    assert mlflow["command"][mlflow["command"].index("--artifacts-destination") + 1] == "/mlartifacts"
    assert mlflow["command"][mlflow["command"].index("--workers") + 1] == "2"
    env = env_of(mlflow)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "driftloop-mlflow:*" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert env["MLFLOW_BACKEND_STORE_URI"] == {
        "secretKeyRef": {"name": "driftloop-database", "key": "mlflow-database-url"}
    }

    s3 = find(rendered["external-database-s3-values.yaml"], "Deployment", "driftloop-mlflow")
    command = s3["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--artifacts-destination") + 1] == "s3://acme-mlflow/driftloop"
    ingress = find(rendered["ingress-values.yaml"], "Deployment", "driftloop-mlflow")
    env = env_of(ingress["spec"]["template"]["spec"]["containers"][0])
    assert "mlflow.driftloop.example.com" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"] == "https://mlflow.driftloop.example.com"


def test_probes_hit_the_health_endpoints(default_objects: Objects) -> None:
    paths = {}
    for name in ("api", "prefect-server", "mlflow", "prefect-worker"):
        deployment = find(default_objects, "Deployment", f"driftloop-{name}")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        paths[name] = (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"])
    assert paths == {
        "api": ("/readyz", "/healthz"),
        "prefect-server": ("/api/ready", "/api/health"),
        "mlflow": ("/health", "/health"),
        "prefect-worker": ("/health", "/health"),
    }


def test_model_configs_become_files_the_api_mounts(rendered: dict[str, Objects]) -> None:
    objects = rendered["bundled-database-values.yaml"]
    values = yaml.safe_load((CHART / "ci" / "bundled-database-values.yaml").read_text())
    configmap = find(objects, "ConfigMap", "driftloop-models")
    assert yaml.safe_load(configmap["data"]["weather.yaml"]) == values["models"]["weather"]
    api = find(objects, "Deployment", "driftloop-api")["spec"]["template"]["spec"]
    assert {"name": "models", "mountPath": "/etc/driftloop/models", "readOnly": True} in api["containers"][0][
        "volumeMounts"
    ]
    assert {"name": "models", "configMap": {"name": "driftloop-models"}} in api["volumes"]
    existing = find(rendered["external-database-s3-values.yaml"], "Deployment", "driftloop-api")["spec"]["template"]
    assert {"name": "models", "configMap": {"name": "driftloop-models"}} in existing["spec"]["volumes"]


def test_a_change_of_model_configs_rolls_the_api(render_with) -> None:
    def checksum(*overrides: str) -> str:
        result = render_with(*overrides)
        api = [d for d in yaml.safe_load_all(result.stdout) if d and d["metadata"]["name"] == "driftloop-api"]
        return next(d for d in api if d["kind"] == "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/models"
        ]

    assert checksum("models.a.model.name=a") != checksum("models.a.model.name=b")


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_pod_is_selected_by_a_network_policy(values_file: str, rendered: dict[str, Objects]) -> None:
    objects = rendered[values_file]
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]

    def selected(labels: dict[str, str], namespace: str) -> bool:
        return any(
            policy["metadata"]["namespace"] == namespace
            and policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            for policy in policies
        )

    for obj in objects:
        if pod_spec(obj) is None:
            continue
        labels = obj["metadata"]["labels"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]
        assert selected(labels, obj["metadata"]["namespace"]), obj["metadata"]["name"]
    template = json.loads(find(objects, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"])
    job = template["job_configuration"]["job_manifest"]
    # The base job template fixes the Jobs' namespace: it is no job variable.
    assert selected(job["spec"]["template"]["metadata"]["labels"], job["metadata"]["namespace"])


def test_only_prefect_mlflow_and_migrations_reach_postgresql(default_objects: Objects) -> None:
    policy = find(default_objects, "NetworkPolicy", "driftloop-postgresql")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["prefect-server", "mlflow", "migrate"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_install_notes_tell_how_to_open_the_three_uis() -> None:
    # A client-side dry run sees no cluster either: it needs the Secrets named, as `helm template` does.
    no_cluster = ("--values", str(NO_CLUSTER_VALUES))
    result = run(
        tool("helm"), "install", "driftloop", str(CHART), "--namespace", "driftloop", "--dry-run=client", *no_cluster
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for service, port in (("prefect-server", 4200), ("mlflow", 5000), ("api", 8000)):
        assert f"port-forward service/driftloop-{service} {port}:{port}" in notes
    assert "helm test driftloop --namespace driftloop" in notes
    ingress = helm_template("--values", str(CHART / "ci" / "ingress-values.yaml"), "--show-only", "templates/api.yaml")
    assert "driftloop.example.com" in ingress.stdout


def test_helm_test_checks_that_the_three_services_answer(default_objects: Objects) -> None:
    pod = find(default_objects, "Pod", "driftloop-test-connection")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    args = pod["spec"]["containers"][0]["command"]
    # name, URL, credential: the authenticated calls prove the clients' credentials work, not just health.
    assert args[-15:] == [
        *("prefect", "http://driftloop-prefect-server:4200/api/health", "none"),
        *("prefect-auth", "http://driftloop-prefect-server:4200/api/admin/version", "prefect"),
        *("mlflow", "http://driftloop-mlflow:5000/health", "none"),
        *("mlflow-auth", "http://driftloop-mlflow:5000/api/2.0/mlflow/experiments/search?max_results=1", "mlflow"),
        *("api", "http://driftloop-api:8000/readyz", "none"),
    ]


def test_the_test_pod_script_fails_when_a_service_is_down(default_objects: Objects) -> None:
    command = find(default_objects, "Pod", "driftloop-test-connection")["spec"]["containers"][0]["command"]
    script = command[2]
    down = subprocess.run(
        [sys.executable, "-c", script, "nothing", "http://127.0.0.1:9/", "none"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1 and "FAIL nothing" in down.stdout


@pytest.mark.parametrize(
    ("values_file", "host", "allowed"),
    [
        ("default", "driftloop-mlflow:5000", True),  # the API, flow runs, the test pod
        ("default", "driftloop-mlflow.driftloop:5000", True),  # flow runs in another namespace
        ("default", "driftloop-mlflow.driftloop.svc.cluster.local:5000", True),
        ("default", "localhost:5000", True),  # kubectl port-forward
        ("default", "mlflow.evil.example:5000", False),
        ("ingress-values.yaml", "mlflow.driftloop.example.com", True),
    ],
)
def test_mlflow_answers_to_its_service_names_and_nothing_else(
    values_file: str, host: str, allowed: bool, rendered: dict[str, Objects], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow rejects Host headers it does not know (DNS rebinding); checked with MLflow's own matcher."""
    from mlflow.server.security_utils import get_allowed_hosts_from_env, is_allowed_host_header

    deployment = find(rendered[values_file], "Deployment", "driftloop-mlflow")
    monkeypatch.setenv(
        "MLFLOW_SERVER_ALLOWED_HOSTS",
        env_of(deployment["spec"]["template"]["spec"]["containers"][0])["MLFLOW_SERVER_ALLOWED_HOSTS"],
    )
    assert is_allowed_host_header(get_allowed_hosts_from_env(), host) is allowed


def test_mlflow_behind_the_ingress_accepts_changes_from_its_own_origin(rendered: dict[str, Objects]) -> None:
    from mlflow.server.security_utils import should_block_cors_request

    deployment = find(rendered["ingress-values.yaml"], "Deployment", "driftloop-mlflow")
    origins = env_of(deployment["spec"]["template"]["spec"]["containers"][0])["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]
    assert not should_block_cors_request("https://mlflow.driftloop.example.com", "POST", origins.split(","))
    assert should_block_cors_request("https://evil.example", "POST", origins.split(","))
