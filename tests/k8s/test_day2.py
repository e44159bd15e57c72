"""Day-2 operations on the chart's own objects: upgrades, retried upgrades, rollbacks, volume changes.

What the cluster holds comes from the fake API server of fake_apiserver.py (helm's `lookup` reads
it); helm and the chart's templates are real.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, NAMESPACE, RELEASE, ROOT, Objects, find
from .fake_apiserver import FakeApiServer, fake_apiserver, helm_template_in_cluster

MIGRATE_JOB = "driftloop-migrate"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeApiServer]:
    with fake_apiserver(tmp_path, NAMESPACE, RELEASE) as fake:
        yield fake


def upgrade(cluster: FakeApiServer, *overrides: str) -> Any:
    """Render the chart against `cluster` as an upgrade would, with `--set` overrides."""
    args = [arg for override in overrides for arg in ("--set", override)]
    return helm_template_in_cluster(cluster, CHART, RELEASE, *args)


def errors_of(result: Any) -> list[str]:
    """The validation messages of a failed render: lines starting with a values key."""
    return [line for line in result.stderr.splitlines() if re.match(r"^[a-z][a-zA-Z]*(\.[a-zA-Z]+)+: ", line)]


def helm_timeouts(text: str) -> list[int]:
    """Seconds of every `--timeout` of a `helm install`, `upgrade` or `rollback` command in `text`."""
    commands = re.findall(r"helm (?:install|upgrade|rollback)[^\n]*(?:\\\n[^\n]*)*", text)
    found = []
    for command in commands:
        for amount, unit in re.findall(r"--timeout[ =](\d+)([smh])", command):
            found.append(int(amount) * {"s": 1, "m": 60, "h": 3600}[unit])
    return found


def test_every_documented_helm_timeout_outlasts_the_hook_deadlines(default_objects: Objects) -> None:
    # Helm that stops waiting marks the release failed while the hook Job still runs; the retry
    # then meets that Job. Waiting as long as the Job may run avoids both.
    deadlines = {
        name: find(default_objects, "Job", name)["spec"]["activeDeadlineSeconds"]
        for name in (MIGRATE_JOB, "driftloop-register")
    }
    for readme in (CHART / "README.md", ROOT / "README.md"):
        timeouts = helm_timeouts(readme.read_text())
        assert timeouts, f"{readme}: no helm install/upgrade --timeout"
        for timeout in timeouts:
            for name, deadline in deadlines.items():
                assert timeout >= deadline, f"{readme}: --timeout {timeout}s is shorter than {name}'s {deadline}s"


def test_the_register_hook_runs_after_a_rollback_too(default_objects: Objects) -> None:
    hooks = find(default_objects, "Job", "driftloop-register")["metadata"]["annotations"]["helm.sh/hook"]

    # A rollback restores the old image in the pods; the work pool's base job template must follow.
    assert set(hooks.split(",")) == {"post-install", "post-upgrade", "post-rollback"}


def test_the_chart_readme_says_a_rollback_across_a_migration_needs_a_database_restore() -> None:
    readme = (CHART / "README.md").read_text()
    section = readme.split("## Rolling back", 1)[1].split("\n## ", 1)[0]

    assert "helm rollback" in section
    assert "restore" in section and "backup" in section


def running_migration(conditions: list[dict[str, str]]) -> dict[str, Any]:
    return {"kind": "Job", "metadata": {"name": MIGRATE_JOB}, "status": {"active": 1, "conditions": conditions}}


def test_an_upgrade_refuses_to_replace_a_migration_that_is_still_running(cluster: FakeApiServer) -> None:
    # An earlier `helm upgrade` gave up waiting; its migration Job still runs.
    cluster.add(running_migration([]))

    result = upgrade(cluster)

    assert result.returncode != 0
    (message,) = errors_of(result)
    assert message.startswith(
        "hooks.migrate: the migration Job driftloop-migrate of an earlier upgrade is still running"
    )
    assert (
        "kubectl --namespace driftloop wait --for=condition=complete --timeout=1800s job/driftloop-migrate" in message
    )


@pytest.mark.parametrize("outcome", ["Complete", "Failed"])
def test_an_upgrade_replaces_a_finished_migration_job(cluster: FakeApiServer, outcome: str) -> None:
    cluster.add(running_migration([{"type": outcome, "status": "True"}]))

    assert upgrade(cluster).returncode == 0


def test_the_migrate_hook_replaces_only_jobs_that_have_finished(default_objects: Objects) -> None:
    annotations = find(default_objects, "Job", MIGRATE_JOB)["metadata"]["annotations"]

    # before-hook-creation deletes the previous Job: the check above makes sure it has finished.
    # No hook-failed: a failed migration's Job (and its logs) stays until the next upgrade.
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}


def postgresql_statefulset(size: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    template = {"metadata": {"name": "data"}, "spec": spec}
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "driftloop-postgresql"},
        "spec": {"volumeClaimTemplates": [template]},
    }


def artifacts_claim(size: str, storage_class: str) -> dict[str, Any]:
    spec = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": size}},
    }
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": "driftloop-mlflow-artifacts"}, "spec": spec}


def storage_class(name: str, expandable: bool) -> dict[str, Any]:
    return {"kind": "StorageClass", "metadata": {"name": name}, "provisioner": "x", "allowVolumeExpansion": expandable}


def test_a_changed_postgresql_volume_size_is_a_validation_message_not_a_failed_upgrade(
    cluster: FakeApiServer,
) -> None:
    cluster.add(postgresql_statefulset("8Gi", None))

    result = upgrade(cluster, "postgresql.persistence.size=20Gi")

    assert result.returncode != 0
    (message,) = errors_of(result)
    assert message.startswith("postgresql.persistence.size: the running StatefulSet driftloop-postgresql asks 8Gi")
    assert "set 8Gi" in message and '"Resizing volumes"' in message


def test_the_same_postgresql_volume_size_written_another_way_upgrades(cluster: FakeApiServer) -> None:
    cluster.add(postgresql_statefulset("8Gi", None))

    assert upgrade(cluster, "postgresql.persistence.size=8192Mi").returncode == 0


def test_a_changed_postgresql_storage_class_is_a_validation_message(cluster: FakeApiServer) -> None:
    cluster.add(postgresql_statefulset("8Gi", "standard"))

    result = upgrade(cluster, "postgresql.persistence.storageClass=fast")

    (message,) = errors_of(result)
    assert message.startswith(
        'postgresql.persistence.storageClass: the running StatefulSet driftloop-postgresql uses "standard"'
    )


def test_a_shrunk_artifacts_claim_is_a_validation_message(cluster: FakeApiServer) -> None:
    cluster.add(artifacts_claim("20Gi", "standard"))
    cluster.add(storage_class("standard", expandable=True))

    (message,) = errors_of(upgrade(cluster, "mlflow.artifacts.pvc.size=10Gi"))

    assert message == (
        "mlflow.artifacts.pvc.size: the claim driftloop-mlflow-artifacts asks 20Gi and a claim never shrinks;"
        " set 20Gi or more"
    )


def test_an_artifacts_claim_grows_only_where_its_storage_class_allows_expansion(cluster: FakeApiServer) -> None:
    cluster.add(artifacts_claim("20Gi", "standard"))
    cluster.add(storage_class("standard", expandable=False))

    (message,) = errors_of(upgrade(cluster, "mlflow.artifacts.pvc.size=50Gi"))
    assert message.startswith("mlflow.artifacts.pvc.size: the claim driftloop-mlflow-artifacts asks 20Gi")
    assert 'StorageClass "standard" does not allow volume expansion' in message

    cluster.add(storage_class("standard", expandable=True))
    assert upgrade(cluster, "mlflow.artifacts.pvc.size=50Gi").returncode == 0


def test_a_changed_artifacts_storage_class_is_a_validation_message(cluster: FakeApiServer) -> None:
    cluster.add(artifacts_claim("20Gi", "standard"))

    (message,) = errors_of(upgrade(cluster, "mlflow.artifacts.pvc.storageClass=fast"))

    assert message.startswith('mlflow.artifacts.pvc.storageClass: the claim driftloop-mlflow-artifacts uses "standard"')


def test_an_unchanged_release_upgrades_with_its_volumes_as_they_are(cluster: FakeApiServer) -> None:
    values = yaml.safe_load((CHART / "ci" / "bundled-database-values.yaml").read_text())
    cluster.add(postgresql_statefulset(values["postgresql"]["persistence"]["size"], "standard"))
    cluster.add(artifacts_claim(values["mlflow"]["artifacts"]["pvc"]["size"], "default-class"))

    result = helm_template_in_cluster(
        cluster, CHART, RELEASE, "--values", str(CHART / "ci" / "bundled-database-values.yaml")
    )

    assert result.returncode == 0, result.stderr
