"""k8s/: the same objects as the chart for `kubectl apply -k k8s/`, generated from it and kept in step."""

from __future__ import annotations

import json

from .conftest import K8S, Objects, base_job_template_of, find, load_script

render_k8s = load_script("render_k8s")


def test_generated_files_of_k8s_are_up_to_date() -> None:
    stale = [name for name, content in render_k8s.rendered().items() if (K8S / name).read_text() != content]
    assert stale == [], f"k8s/{stale}: run python helm/driftloop/scripts/render_k8s.py"


def test_the_register_job_mounts_the_base_job_template_of_k8s(
    plain_manifests: Objects, default_base_job_template: dict
) -> None:
    mounted = base_job_template_of(plain_manifests)
    assert mounted == json.loads((K8S / "base-job-template.json").read_text()) == default_base_job_template
    register = find(plain_manifests, "Job", "driftloop-register")
    volumes = register["spec"]["template"]["spec"]["volumes"]
    assert {"name": "work-pool", "configMap": {"name": "driftloop-work-pool"}} in volumes
    script = find(plain_manifests, "ConfigMap", "driftloop-work-pool")["data"]["register.sh"]
    assert script == (K8S / "register.sh").read_text()


def test_plain_manifests_hold_the_whole_service_and_nothing_only_helm_runs(plain_manifests: Objects) -> None:
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in plain_manifests}
    for expected in [
        ("Namespace", "driftloop"),
        ("Deployment", "driftloop-api"),
        ("Deployment", "driftloop-prefect-server"),
        ("Deployment", "driftloop-prefect-worker"),
        ("Deployment", "driftloop-mlflow"),
        ("StatefulSet", "driftloop-postgresql"),
        ("Role", "driftloop-prefect-worker"),
        ("Job", "driftloop-register"),
    ]:
        assert expected in kinds
    assert ("Job", "driftloop-migrate") not in kinds and ("Pod", "driftloop-test-connection") not in kinds
    # The database Secret is the user's to create (k8s/README.md): no password is committed.
    assert not [obj for obj in plain_manifests if obj["kind"] == "Secret"]
    assert all(obj["metadata"].get("namespace", "driftloop") == "driftloop" for obj in plain_manifests)
    text = json.dumps(plain_manifests)
    assert "helm.sh/" not in text and '"Helm"' not in text


def test_k8s_readme_creates_the_secret_the_manifests_read(plain_manifests: Objects) -> None:
    readme = (K8S / "README.md").read_text()
    server = find(plain_manifests, "Deployment", "driftloop-prefect-server")
    reference = server["spec"]["template"]["spec"]["containers"][0]["env"]
    keys = {item["valueFrom"]["secretKeyRef"]["key"] for item in reference if "valueFrom" in item}
    assert keys == {"prefect-database-url", "prefect-auth-string"}
    for needed in (
        "create secret generic driftloop-auth",
        "create secret generic driftloop-flow-run-auth",
        "prefect-auth-string",
        "create secret generic driftloop-database",
        "postgres-password",
        "prefect-database-url",
        "mlflow-database-url",
        "kubectl apply -k k8s/",
    ):
        assert needed in readme
