"""MLflow's artifact stores (a claim, S3, GCS, Azure Blob) and the cloud identities of MLflow and the
flow runs, from the chart rendered by a real helm binary and checked strictly against the Kubernetes
API schemas. MLflow's own artifact repositories are built from what the chart renders (destination
URI and environment), so the URI is the one MLflow parses and the credentials the ones it reads."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import KUBERNETES_VERSIONS, Objects, find, parse
from .test_kubernetes_validate import validation_errors

Render = Callable[..., subprocess.CompletedProcess[str]]

IRSA = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/driftloop-mlflow"}
GKE = {"iam.gke.io/gcp-service-account": "driftloop-flows@acme-ml.iam.gserviceaccount.com"}
AKS = {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"}

# One rendering per store, as a user would configure it.
STORES: dict[str, dict[str, Any]] = {
    "s3 through IRSA": {
        "mlflow.artifacts": {"type": "s3", "s3": {"bucket": "acme-mlflow", "region": "eu-west-1"}},
        "mlflow.serviceAccount": {"annotations": IRSA},
    },
    "s3 with static keys": {
        "mlflow.artifacts": {"type": "s3", "s3": {"bucket": "acme-mlflow", "existingSecret": "driftloop-s3"}},
    },
    "gcs with a key file": {
        "mlflow.artifacts": {"type": "gcs", "gcs": {"bucket": "acme-mlflow", "existingSecret": "driftloop-gcs"}},
    },
    "gcs through Workload Identity": {
        "mlflow.artifacts": {"type": "gcs", "gcs": {"bucket": "acme-mlflow", "prefix": "/runs/"}},
        "mlflow.serviceAccount": {"annotations": GKE},
    },
    "azure with a connection string": {
        "mlflow.artifacts": {
            "type": "azure",
            "azure": {"storageAccount": "acmeml", "container": "mlflow", "existingSecret": "driftloop-azure"},
        },
    },
    "azure with the account key": {
        "mlflow.artifacts": {
            "type": "azure",
            "azure": {
                "storageAccount": "acmeml",
                "container": "mlflow",
                "existingSecret": "driftloop-azure",
                "connectionStringKey": "",
                "accessKeyKey": "account-key",
            },
        },
    },
    "azure through Workload Identity": {
        "mlflow.artifacts": {"type": "azure", "azure": {"storageAccount": "acmeml", "container": "mlflow"}},
        "mlflow.serviceAccount": {"annotations": AKS},
        "mlflow.podLabels": {"azure.workload.identity/use": "true"},
    },
}


@pytest.fixture(scope="module")
def stores() -> dict[str, Objects]:
    from .conftest import helm_template

    rendered = {}
    for name, values in STORES.items():
        args = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
        result = helm_template(*args)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        rendered[name] = parse(result.stdout)
    return rendered


def mlflow_pod(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment", "driftloop-mlflow")["spec"]["template"]["spec"]


def destination(objects: Objects) -> str:
    command = mlflow_pod(objects)["containers"][0]["command"]
    return command[command.index("--artifacts-destination") + 1]


def store_env(objects: Objects) -> dict[str, Any]:
    """The MLflow container's variables that reach the artifact store: value, or (Secret, key)."""
    prefixes = ("AWS_", "GOOGLE_", "AZURE_", "MLFLOW_S3_")
    env = {}
    for item in mlflow_pod(objects)["containers"][0]["env"]:
        if item["name"].startswith(prefixes):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            env[item["name"]] = (ref["name"], ref["key"]) if ref else item["value"]
    return env


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_store_renders_valid_objects(stores: dict[str, Objects], version: str) -> None:
    for name, objects in stores.items():
        assert validation_errors(objects, version) == [], name


def test_s3_needs_no_static_keys_and_irsa_annotates_mlflows_own_account(stores: dict[str, Objects]) -> None:
    objects = stores["s3 through IRSA"]
    assert destination(objects) == "s3://acme-mlflow/mlflow"
    assert store_env(objects) == {"AWS_DEFAULT_REGION": "eu-west-1"}
    pod = mlflow_pod(objects)
    assert pod["serviceAccountName"] == "driftloop-mlflow"
    # EKS's webhook adds its own projected token volume: the account's token stays unmounted.
    assert pod["automountServiceAccountToken"] is False
    account = find(objects, "ServiceAccount", "driftloop-mlflow")
    assert account["metadata"]["annotations"] == IRSA and account["automountServiceAccountToken"] is False
    # The identity is MLflow's alone: the API, the servers and the hooks keep theirs without it.
    assert "annotations" not in find(objects, "ServiceAccount", "driftloop")["metadata"]


def test_s3_static_keys_come_from_the_named_secret(stores: dict[str, Objects]) -> None:
    assert store_env(stores["s3 with static keys"]) == {
        "AWS_ACCESS_KEY_ID": ("driftloop-s3", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("driftloop-s3", "AWS_SECRET_ACCESS_KEY"),
    }


def test_gcs_key_file_is_mounted_read_only_and_named_by_google_application_credentials(
    stores: dict[str, Objects],
) -> None:
    objects = stores["gcs with a key file"]
    assert destination(objects) == "gs://acme-mlflow/mlflow"
    assert store_env(objects) == {"GOOGLE_APPLICATION_CREDENTIALS": "/etc/driftloop/gcs/credentials.json"}
    pod = mlflow_pod(objects)
    volume = next(volume for volume in pod["volumes"] if volume["name"] == "gcs-credentials")
    assert volume["secret"] == {
        "secretName": "driftloop-gcs",
        "defaultMode": 0o440,
        "items": [{"key": "credentials.json", "path": "credentials.json"}],
    }
    mount = next(mount for mount in pod["containers"][0]["volumeMounts"] if mount["name"] == "gcs-credentials")
    assert mount == {"name": "gcs-credentials", "mountPath": "/etc/driftloop/gcs", "readOnly": True}


def test_gcs_through_workload_identity_has_no_credentials_in_the_pod(stores: dict[str, Objects]) -> None:
    objects = stores["gcs through Workload Identity"]
    assert destination(objects) == "gs://acme-mlflow/runs"
    assert store_env(objects) == {}
    assert "gcs-credentials" not in {volume["name"] for volume in mlflow_pod(objects)["volumes"]}
    assert find(objects, "ServiceAccount", "driftloop-mlflow")["metadata"]["annotations"] == GKE


def test_azure_takes_a_connection_string_or_the_account_key_from_the_secret(stores: dict[str, Objects]) -> None:
    connection = stores["azure with a connection string"]
    assert destination(connection) == "wasbs://mlflow@acmeml.blob.core.windows.net/mlflow"
    assert store_env(connection) == {
        "AZURE_STORAGE_CONNECTION_STRING": ("driftloop-azure", "AZURE_STORAGE_CONNECTION_STRING")
    }
    assert store_env(stores["azure with the account key"]) == {
        "AZURE_STORAGE_ACCESS_KEY": ("driftloop-azure", "account-key")
    }


def test_azure_through_workload_identity_labels_the_pod_for_the_webhook(stores: dict[str, Objects]) -> None:
    objects = stores["azure through Workload Identity"]
    assert store_env(objects) == {}
    assert find(objects, "ServiceAccount", "driftloop-mlflow")["metadata"]["annotations"] == AKS
    labels = find(objects, "Deployment", "driftloop-mlflow")["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"


def test_flow_runs_account_carries_its_cloud_identity_in_the_jobs_namespace(render_with: Render) -> None:
    result = render_with(
        "worker.jobsNamespace=driftloop-jobs", values={"flowRuns.serviceAccount": {"annotations": GKE}}
    )
    assert result.returncode == 0, result.stderr
    objects = parse(result.stdout)
    account = find(objects, "ServiceAccount", "driftloop-flow-run")
    assert account["metadata"]["namespace"] == "driftloop-jobs"
    assert account["metadata"]["annotations"] == GKE and account["automountServiceAccountToken"] is False
    template = json.loads(find(objects, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"])
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "driftloop-flow-run"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mlflow.artifacts": {"type": "s3"}}, "mlflow.artifacts.s3.bucket: required when mlflow.artifacts.type=s3"),
        (
            {"mlflow.artifacts": {"type": "gcs"}},
            "mlflow.artifacts.gcs.bucket: required when mlflow.artifacts.type=gcs",
        ),
        (
            {"mlflow.artifacts": {"type": "azure", "azure": {"container": "mlflow"}}},
            "mlflow.artifacts.azure.storageAccount: required when mlflow.artifacts.type=azure",
        ),
        (
            {
                "mlflow.artifacts": {
                    "type": "azure",
                    "azure": {
                        "storageAccount": "acmeml",
                        "container": "mlflow",
                        "existingSecret": "driftloop-azure",
                        "accessKeyKey": "account-key",
                    },
                }
            },
            "mlflow.artifacts.azure.connectionStringKey, mlflow.artifacts.azure.accessKeyKey: set exactly one",
        ),
        ({"mlflow.artifacts.gcs": {"bucket": "b", "credentials": "x"}}, "credentials"),
    ],
    ids=["s3 without a bucket", "gcs without a bucket", "azure without an account", "azure with two keys", "typo"],
)
def test_an_incomplete_store_fails_rendering_naming_the_key(
    render_with: Render, values: dict[str, Any], message: str
) -> None:
    result = render_with(values=values)
    assert result.returncode != 0
    assert message in result.stderr


# ---- MLflow reads what the chart renders -----------------------------------------------------------


@pytest.fixture
def clean_store_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def test_mlflow_reads_the_azure_uri_and_secret_the_chart_renders(
    stores: dict[str, Objects], clean_store_env: pytest.MonkeyPatch
) -> None:
    from mlflow.store.artifact.azure_blob_artifact_repo import AzureBlobArtifactRepository

    objects = stores["azure with the account key"]
    assert list(store_env(objects)) == ["AZURE_STORAGE_ACCESS_KEY"]
    clean_store_env.setenv("AZURE_STORAGE_ACCESS_KEY", base64.b64encode(b"not-a-real-key").decode())
    repository = AzureBlobArtifactRepository(destination(objects))
    assert repository.parse_wasbs_uri(destination(objects)) == ("mlflow", "acmeml", "mlflow", "blob.core.windows.net")
    assert repository.client.account_name == "acmeml"
    assert repository.client.url == "https://acmeml.blob.core.windows.net/"


def test_mlflow_reads_the_gcs_key_file_the_chart_points_at(
    stores: dict[str, Objects], clean_store_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from mlflow.store.artifact.gcs_artifact_repo import GCSArtifactRepository

    objects = stores["gcs with a key file"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    service_account = {
        "type": "service_account",
        "project_id": "acme-ml",
        "private_key_id": "1",
        "private_key": pem.decode(),
        "client_email": "driftloop-mlflow@acme-ml.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    # The Secret's key file where the chart mounts it, here under tmp_path.
    mounted = store_env(objects)["GOOGLE_APPLICATION_CREDENTIALS"]
    key_file = tmp_path / Path(mounted).relative_to("/")
    key_file.parent.mkdir(parents=True)
    key_file.write_text(json.dumps(service_account))
    clean_store_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    repository = GCSArtifactRepository(destination(objects))
    assert repository.parse_gcs_uri(destination(objects)) == ("acme-mlflow", "mlflow")
    assert repository.client.project == "acme-ml"
    assert repository.client._credentials.service_account_email == service_account["client_email"]
