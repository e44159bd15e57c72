"""The register hook Job's script against a real Prefect API (the test session's server).

The script is the one the chart renders into ConfigMap driftloop-work-pool; it runs as the Job's
container would, with the repository standing in for /opt/driftloop. It must create the work pool with
the chart's base job template, register every deployment of flows/prefect.yaml with its schedule and
the `fleet` values (sweep interval, monitor and retrain concurrency), and on the next upgrade replace a
stale template, apply new fleet values and keep the deployments' identities.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.stack.processes import Service, base_env, executable, free_port

from .conftest import ROOT, TELEMETRY_OFF, Objects, find, helm_template, parse

# What the register Job passes of values.fleet, as its container's environment.
FLEET_ENV = ("MODELS_DIR", "SWEEP_INTERVAL_SECONDS", "MONITOR_CONCURRENCY", "RETRAIN_CONCURRENCY")
UPGRADED_FLEET = ("fleet.sweepIntervalSeconds=900", "fleet.monitorConcurrency=8", "fleet.retrainConcurrency=3")


def register(objects: Objects, prefect_api: str, folder: Path, home: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the rendered register script with the rendered Job's environment, pointed at `prefect_api`.

    `home` stands in for the image's /opt/driftloop: the repository, or a copy with another flows/prefect.yaml.
    """
    data = find(objects, "ConfigMap", "driftloop-work-pool")["data"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "register.sh").write_text(data["register.sh"])
    (folder / "base-job-template.json").write_text(data["base-job-template.json"])
    job = find(objects, "Job", "driftloop-register")["spec"]["template"]["spec"]["containers"][0]
    job_env = {item["name"]: item["value"] for item in job["env"] if "value" in item}  # not secretKeyRefs
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(TELEMETRY_OFF)
    env.update({name: job_env[name] for name in FLEET_ENV})
    env.update(
        WORK_POOL=job_env["WORK_POOL"],
        PREFECT_FILE=job_env["PREFECT_FILE"],
        BASE_JOB_TEMPLATE=str(folder / "base-job-template.json"),
        DRIFTLOOP_HOME=str(home),  # /opt/driftloop in the image
        PREFECT_API_URL=prefect_api,
        PREFECT_HOME=str(folder / "prefect-home"),
        WAIT_SECONDS="60",
    )
    return subprocess.run(
        ["sh", str(folder / "register.sh")], env=env, cwd=folder, capture_output=True, text=True, timeout=300
    )


def automations_by_deployment(deployments: dict[str, Any]) -> dict[str, int]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {
            name: len(client.read_resource_related_automations(f"prefect.deployment.{deployment.id}"))
            for name, deployment in deployments.items()
        }


def declared_triggers() -> dict[str, int]:
    declared = yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())["deployments"]
    return {deployment["name"]: len(deployment.get("triggers") or []) for deployment in declared}


def pool_and_deployments(pool_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(pool_name)
        deployments = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name]))
        )
    return pool.base_job_template, {deployment.name: deployment for deployment in deployments}


@pytest.fixture(scope="module")
def first_and_second_run(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Install (default values), then upgrade with bigger flow-run limits and other fleet numbers."""
    folder = tmp_path_factory.mktemp("register")
    installed = parse(helm_template().stdout)
    first = register(installed, prefect_api, folder / "install")
    after_install = pool_and_deployments("driftloop")
    overrides = ["flowRuns.resources.limits.memory=8Gi", *UPGRADED_FLEET]
    upgraded = parse(helm_template(*[arg for override in overrides for arg in ("--set", override)]).stdout)
    second = register(upgraded, prefect_api, folder / "upgrade")
    after_upgrade = pool_and_deployments("driftloop")
    return {
        "runs": (first, second),
        "templates": (
            json.loads(find(installed, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"]),
            json.loads(find(upgraded, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"]),
        ),
        "states": (after_install, after_upgrade),
    }


def test_install_creates_the_work_pool_with_the_charts_template(first_and_second_run: dict[str, Any]) -> None:
    first, _ = first_and_second_run["runs"]
    assert first.returncode == 0, first.stdout + first.stderr
    assert "register: creating work pool driftloop" in first.stdout
    (template, _), _ = first_and_second_run["states"]
    assert template == first_and_second_run["templates"][0]


def intervals(deployment: Any) -> list[float]:
    return [schedule.schedule.interval.total_seconds() for schedule in deployment.schedules]


def limit(deployment: Any) -> int | None:
    """The deployment's concurrency limit (Prefect keeps it as a global concurrency limit of its own)."""
    return deployment.global_concurrency_limit.limit if deployment.global_concurrency_limit else None


def test_install_registers_every_deployment_with_its_schedule(first_and_second_run: dict[str, Any]) -> None:
    (_, deployments), _ = first_and_second_run["states"]
    declared = yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())["deployments"]
    assert set(deployments) == {deployment["name"] for deployment in declared}
    # The sweep is the one schedule: hourly over the mounted models folder, one monitor run per model.
    sweep = deployments["sweep"]
    assert intervals(sweep) == [3600]
    assert sweep.entrypoint == "flows/sweep.py:sweep"
    assert sweep.parameters == {"models_dir": "/etc/driftloop/models", "retrain_via": "event"}
    assert sweep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/driftloop"}}]
    monitor = deployments["monitor"]
    assert intervals(monitor) == []
    assert monitor.entrypoint == "flows/monitor.py:monitor"
    assert monitor.parameters == {"config_path": "/etc/driftloop/models/driftloop.yaml", "retrain_via": "event"}
    # The chart's default fleet numbers: 4 models side by side, 2 retrains across the fleet.
    assert (limit(monitor), limit(deployments["retrain"])) == (4, 2)
    # Each trigger of flows/prefect.yaml (the drift triggers) becomes one automation of its deployment.
    assert automations_by_deployment(deployments) == declared_triggers()


def test_upgrade_replaces_a_stale_template_and_keeps_the_deployments(first_and_second_run: dict[str, Any]) -> None:
    _, second = first_and_second_run["runs"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "register: work pool driftloop exists: syncing its base job template" in second.stdout
    (_, before), (template, after) = first_and_second_run["states"]
    assert template == first_and_second_run["templates"][1]
    assert template["variables"]["properties"]["memory_limit"]["default"] == "8Gi"
    assert {name: deployment.id for name, deployment in after.items()} == {
        name: deployment.id for name, deployment in before.items()
    }
    assert automations_by_deployment(after) == declared_triggers()  # no trigger registered twice


def test_upgrade_with_other_fleet_values_changes_the_sweep_and_the_limits(first_and_second_run: dict[str, Any]) -> None:
    _, (_, after) = first_and_second_run["states"]
    assert intervals(after["sweep"]) == [900]  # replaced, not added beside the hourly one
    assert after["sweep"].parameters["models_dir"] == "/etc/driftloop/models"
    assert (limit(after["monitor"]), limit(after["retrain"])) == (8, 3)
    assert limit(after["sweep"]) == 1  # not a fleet value: one sweep at a time


def test_register_gives_up_with_a_message_when_the_prefect_api_never_answers(tmp_path: Path) -> None:
    objects = parse(helm_template().stdout)
    script = find(objects, "ConfigMap", "driftloop-work-pool")["data"]["register.sh"]
    (tmp_path / "register.sh").write_text(script)
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "WAIT_SECONDS": "0"}
    result = subprocess.run(["sh", str(tmp_path / "register.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "the Prefect API at http://127.0.0.1:9/api/health did not answer" in result.stderr


# ---- Upgrades keep what operators did --------------------------------------------------------------
# These tests pause, drop and add deployments: they run against a Prefect server of their own, not the
# session's, which other modules' tests share.

MARKER = "driftloop-chart"  # the tag register.sh gives every deployment it registers
# A deployment only the first release declared, with a trigger (an automation of its own).
EXTRA = {
    "name": "nightly-scoring",
    "entrypoint": "flows/inference.py:batch_inference",
    "parameters": {"config_path": "/etc/driftloop/models/driftloop.yaml", "env": "prod"},
    "triggers": [{"type": "event", "enabled": True, "expect": ["driftloop.scoring.requested"]}],
    "tags": ["driftloop", "inference"],
    "work_pool": {"name": "driftloop", "work_queue_name": "default", "job_variables": {}},
}


@pytest.fixture(scope="module")
def own_prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prefect-operator-state")
    port = free_port()
    env = base_env(
        PREFECT_HOME=str(root / "home"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{root / 'prefect.db'}",
    )
    argv = [executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    service = Service("prefect-server", argv, env, root, f"http://127.0.0.1:{port}/api/health")
    service.start(timeout=180)
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        service.stop()


def code_folder(folder: Path, edit: Any) -> Path:
    """A stand-in for /opt/driftloop: the repository's flows, with flows/prefect.yaml changed by `edit`."""
    (folder / "flows").mkdir(parents=True)
    for source in (ROOT / "flows").glob("*.py"):
        (folder / "flows" / source.name).symlink_to(source)
    document = yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())
    edit(document["deployments"])
    (folder / "flows" / "prefect.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


@contextmanager
def client_of(api: str) -> Iterator[Any]:
    """A Prefect client of the server at `api` (the session's PREFECT_API_URL points elsewhere)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        yield client


def by_full_name(api: str) -> dict[str, Any]:
    with client_of(api) as client:
        deployments = client.read_deployments()
        return {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in deployments}


@pytest.fixture(scope="module")
def operator_state(own_prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Install with an extra deployment; the operator pauses the sweep's schedule and the promote
    deployment, and someone else deploys to the pool; upgrade to a release without the extra deployment
    and without batch-inference, and with another sweep interval."""
    folder = tmp_path_factory.mktemp("operator-state")
    first_home = code_folder(folder / "first-home", lambda deployments: deployments.append(dict(EXTRA)))
    installed = register(parse(helm_template().stdout), own_prefect_api, folder / "install", first_home)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    before = by_full_name(own_prefect_api)
    with client_of(own_prefect_api) as client:
        sweep = before["sweep/sweep"]
        client.update_deployment_schedule(sweep.id, sweep.schedules[0].id, active=False)
        client.pause_deployment(before["promote/promote"].id)
        # Not registered by the chart: another flow's deployment with a name the chart drops, and one
        # of the chart's own flows deployed by hand. Same pool, same `driftloop` tag, no marker.
        others = client.create_flow_from_name("someone-elses-flow")
        client.create_deployment(others, "batch-inference", work_pool_name="driftloop", tags=["driftloop"])
        client.create_deployment(
            before["batch-inference/batch-inference"].flow_id, "adhoc", work_pool_name="driftloop", tags=["driftloop"]
        )

    def next_release(deployments: list[dict[str, Any]]) -> None:
        deployments[:] = [d for d in deployments if d["name"] != "batch-inference"]

    second_home = code_folder(folder / "second-home", next_release)
    upgraded = parse(helm_template("--set", "fleet.sweepIntervalSeconds=900").stdout)
    upgrade = register(upgraded, own_prefect_api, folder / "upgrade", second_home)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    return {"run": upgrade, "before": before, "after": by_full_name(own_prefect_api)}


def test_install_tags_every_deployment_it_registers(operator_state: dict[str, Any]) -> None:
    registered = {name for name, d in operator_state["before"].items() if MARKER in d.tags}
    declared = yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())["deployments"]
    assert len(registered) == len(declared) + 1  # flows/prefect.yaml's and the extra one
    assert "batch-inference/nightly-scoring" in registered


def test_upgrade_keeps_a_paused_schedule_paused_and_applies_its_new_interval(operator_state: dict[str, Any]) -> None:
    sweep = operator_state["after"]["sweep/sweep"]
    assert [(s.slug, s.active, s.schedule.interval.total_seconds()) for s in sweep.schedules] == [
        ("sweep-0", False, 900)
    ]
    assert sweep.paused is False
    assert "register: schedule sweep-0 of sweep/sweep stays paused" in operator_state["run"].stdout


def test_upgrade_keeps_a_paused_deployment_paused(operator_state: dict[str, Any]) -> None:
    after = operator_state["after"]
    assert after["promote/promote"].paused is True
    assert after["monitor/monitor"].paused is False and after["retrain/retrain"].paused is False
    assert "register: promote/promote stays paused" in operator_state["run"].stdout


def test_upgrade_deletes_the_deployments_the_file_no_longer_declares_with_their_triggers(
    own_prefect_api: str, operator_state: dict[str, Any]
) -> None:
    before, after = operator_state["before"], operator_state["after"]
    assert "batch-inference/nightly-scoring" not in after
    assert "batch-inference/batch-inference" not in after
    assert "register: deleted batch-inference/nightly-scoring: no longer in the deployments file" in (
        operator_state["run"].stdout
    )
    with client_of(own_prefect_api) as client:
        extra_id = before["batch-inference/nightly-scoring"].id
        assert client.read_resource_related_automations(f"prefect.deployment.{extra_id}") == []
    # The deployments still declared are the same objects, not deleted and created again.
    assert after["sweep/sweep"].id == before["sweep/sweep"].id


def test_upgrade_leaves_deployments_the_chart_did_not_register(operator_state: dict[str, Any]) -> None:
    after = operator_state["after"]
    assert "someone-elses-flow/batch-inference" in after
    assert "batch-inference/adhoc" in after
