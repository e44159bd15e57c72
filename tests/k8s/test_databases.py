"""The databases: who holds which credential, and how the generated Secret is made and kept.

Renders without a cluster use `helm template` (with tests/k8s/no-cluster-values.yaml, as every chart
test); renders that need `lookup` (the generated Secret, install and upgrade) run against the fake
API server of fake_apiserver.py. The roles themselves are tested against a real PostgreSQL in
tests/integration/test_database_roles.py.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHART, NAMESPACE, RELEASE, Objects, base_job_template_of, find, helm_template, parse, pod_spec
from .fake_apiserver import FakeApiServer, fake_apiserver, helm_template_in_cluster

DATABASE_SECRET = "driftloop-database"
URL_KEYS = {"prefect-database-url", "mlflow-database-url"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeApiServer]:
    with fake_apiserver(tmp_path, NAMESPACE, RELEASE) as fake:
        yield fake


def generated_secret(cluster: FakeApiServer) -> dict[str, str]:
    """The database Secret as `helm install` (or upgrade) would write it into `cluster`."""
    result = helm_template_in_cluster(cluster, CHART, RELEASE, "--show-only", "templates/database-secret.yaml")
    assert result.returncode == 0, result.stderr
    (secret,) = parse(result.stdout)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def url_parts(url: str) -> tuple[str, str, str, str]:
    """(scheme, role, password, database) of a connection URL."""
    match = re.fullmatch(r"([a-z0-9+]+)://([^:]+):([^@]+)@driftloop-postgresql:5432/(\w+)", url)
    assert match, url
    return match.group(1), match.group(2), match.group(3), match.group(4)


def encoded(data: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


def database_secret_refs(spec: dict[str, Any]) -> set[str]:
    """Keys of the database Secret a pod reads, through env or a volume."""
    keys = set()
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] == DATABASE_SECRET:
                keys.add(ref["key"])
        for source in container.get("envFrom", []):
            assert source.get("secretRef", {}).get("name") != DATABASE_SECRET
    for volume in spec.get("volumes", []):
        if volume.get("secret", {}).get("secretName") == DATABASE_SECRET:
            keys |= {item["key"] for item in volume["secret"]["items"]}
    return keys


def test_rendering_without_a_cluster_requires_the_database_existing_secret() -> None:
    result = helm_template("--set", "database.existingSecret=")

    assert result.returncode != 0
    message = next(line for line in result.stderr.splitlines() if line.startswith("database.existingSecret:"))
    assert "required when rendering without access to the cluster (helm template, GitOps)" in message
    assert "lookup cannot read back the generated database passwords" in message
    for key in ('"postgres-password"', '"prefect-database-url"', '"mlflow-database-url"'):
        assert key in message


def test_with_an_existing_secret_the_chart_writes_no_database_secret(default_objects: Objects) -> None:
    assert not [
        obj for obj in default_objects if obj["kind"] == "Secret" and obj["metadata"]["name"] == DATABASE_SECRET
    ]
    postgresql = pod_spec(find(default_objects, "StatefulSet", "driftloop-postgresql"))
    assert database_secret_refs(postgresql) == {"postgres-password", *URL_KEYS}


def test_an_install_generates_a_role_and_password_per_server_and_a_superuser_password(
    cluster: FakeApiServer,
) -> None:
    secret = generated_secret(cluster)

    assert set(secret) == {"postgres-password", *URL_KEYS}
    prefect = url_parts(secret["prefect-database-url"])
    mlflow = url_parts(secret["mlflow-database-url"])
    assert (prefect[0], prefect[1], prefect[3]) == ("postgresql+asyncpg", "prefect", "prefect")
    # psycopg2 named: a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1, which the image lacks.
    assert (mlflow[0], mlflow[1], mlflow[3]) == ("postgresql+psycopg2", "mlflow", "mlflow")
    passwords = {secret["postgres-password"], prefect[2], mlflow[2]}
    assert len(passwords) == 3 and all(len(password) == 32 for password in passwords)


def test_an_upgrade_keeps_every_password(cluster: FakeApiServer) -> None:
    first = generated_secret(cluster)
    cluster.add({"kind": "Secret", "metadata": {"name": DATABASE_SECRET}, "data": encoded(first)})

    assert generated_secret(cluster) == first


def test_an_upgrade_from_the_shared_superuser_keeps_its_password_and_gives_each_server_a_new_role(
    cluster: FakeApiServer,
) -> None:
    # What releases before separate roles generated: one superuser for both servers.
    old = {
        "postgres-password": "old-superuser-password",
        "prefect-database-url": "postgresql+asyncpg://driftloop:old-superuser-password@driftloop-postgresql:5432/prefect",
        "mlflow-database-url": "postgresql://driftloop:old-superuser-password@driftloop-postgresql:5432/mlflow",
    }
    cluster.add({"kind": "Secret", "metadata": {"name": DATABASE_SECRET}, "data": encoded(old)})

    secret = generated_secret(cluster)

    # PostgreSQL's data volume knows this password: it must not change.
    assert secret["postgres-password"] == "old-superuser-password"
    for key, role in (("prefect-database-url", "prefect"), ("mlflow-database-url", "mlflow")):
        _, user, password, database = url_parts(secret[key])
        assert (user, database) == (role, role)
        assert password != "old-superuser-password"


def test_each_pod_holds_only_the_database_credentials_it_uses(default_objects: Objects) -> None:
    holders = {}
    for obj in default_objects:
        spec = pod_spec(obj)
        if spec is not None and (keys := database_secret_refs(spec)):
            holders[f"{obj['kind']}/{obj['metadata']['name']}"] = keys

    assert holders == {
        "Deployment/driftloop-prefect-server": {"prefect-database-url"},
        "Deployment/driftloop-mlflow": {"mlflow-database-url"},
        "Job/driftloop-migrate": URL_KEYS,
        # The superuser's password is the PostgreSQL pod's alone; the URLs tell it which roles to create.
        "StatefulSet/driftloop-postgresql": {"postgres-password", *URL_KEYS},
    }


def test_flow_runs_hold_no_database_credentials(default_objects: Objects) -> None:
    template = json.dumps(base_job_template_of(default_objects))

    assert DATABASE_SECRET not in template
    assert not [key for key in URL_KEYS if key in template]
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in template and "MLFLOW_BACKEND_STORE_URI" not in template


def test_no_generated_database_password_reaches_another_object(cluster: FakeApiServer) -> None:
    result = helm_template_in_cluster(cluster, CHART, RELEASE)
    assert result.returncode == 0, result.stderr
    objects = parse(result.stdout)
    secret = find(objects, "Secret", DATABASE_SECRET)
    passwords = [base64.b64decode(secret["data"]["postgres-password"]).decode()]
    passwords += [url_parts(base64.b64decode(secret["data"][key]).decode())[2] for key in sorted(URL_KEYS)]

    for obj in objects:
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert not [password for password in passwords if password in text], obj["metadata"]["name"]


def test_the_postgresql_pod_brings_roles_in_line_with_the_secret_on_every_start(default_objects: Objects) -> None:
    statefulset = find(default_objects, "StatefulSet", "driftloop-postgresql")
    spec = pod_spec(statefulset)
    container = spec["containers"][0]
    scripts = find(default_objects, "ConfigMap", "driftloop-postgresql-init")["data"]

    # Every start runs start.sh (roles.sh on an existing volume); a first start runs roles.sh from
    # the image's init folder. Both are the files tests/integration/test_database_roles.py runs.
    assert container["command"] == ["/etc/driftloop/postgresql/start.sh"]
    assert '"$(dirname "$0")/roles.sh"' in scripts["start.sh"]
    init = next(volume for volume in spec["volumes"] if volume["name"] == "init")["configMap"]["items"]
    assert {item["path"] for item in init} == {"roles.sh", "ensure-role.psql"}
    # The image's entrypoint runs *.sql files itself, without the URL: none may be in its init folder.
    assert not [item for item in init if item["path"].endswith(".sql")]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["POSTGRES_DB"] == "postgres"
