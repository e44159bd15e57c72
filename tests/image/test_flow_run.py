"""A flow run executes inside the image the way the Kubernetes worker's Job pod runs it.

No cluster: the Prefect API is the test session's server on 127.0.0.1, and the container shares the
host's network, as a pod reaches the Prefect service. The `monitor` deployment is made from
flows/prefect.yaml (entrypoint, parameters, pull step) on a kubernetes-type work pool whose base job
template is prefect-kubernetes' default. The Job manifest is rendered by the real prefect-kubernetes
code, in the image (tests/image/render_job.py); the container then runs with that Job's args and
environment, user 10001, a read-only root, /tmp a tmpfs, the model config mounted read-only where the
deployment's parameter points, the batches read-only at /data, and the MLflow store (sqlite) in a
writable volume that the test reads from the host afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

import pytest
import yaml

from .conftest import GIT_SHA, IMAGE, POD_REGISTRY, POD_STORE, ROOT, drift_checks, pod_store, read_pod_registry
from .test_image import free_port, wait_for_http

POOL = "driftloop-image-test"


@dataclass
class FlowRunWorld:
    flow_run_id: UUID
    manifest: dict[str, Any]
    execution: subprocess.CompletedProcess[str]
    seconds: float
    store: Path
    volumes: dict[Path, str]


def _write_inputs(root: Path, config_path: PurePosixPath) -> tuple[Path, dict[Path, str]]:
    from service.demo_data import make_stream, write_stream

    data, config_dir = root / "data", root / "config"
    write_stream(make_stream(n_batches=2, rows=300, reference_rows=600, drift_at=2), data)
    config_dir.mkdir()
    document = {
        "model": {"name": "weather", "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {"reference": "/data/reference.csv", "current": "/data/stream/*.csv"},
        "evaluation": {"min_gain": 0.01},
        "registry": POD_REGISTRY,
    }
    (config_dir / config_path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    store = pod_store(root / "store")
    volumes = {config_dir: f"{config_path.parent}:ro", data: "/data:ro", store: POD_STORE}
    return store, volumes


@pytest.fixture(scope="module")
def world(prefect_api: str, docker: str, image: str, container, tmp_path_factory) -> FlowRunWorld:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Pending

    declared = yaml.safe_load((ROOT / "flows/prefect.yaml").read_text())
    monitor = next(deployment for deployment in declared["deployments"] if deployment["name"] == "monitor")
    store, volumes = _write_inputs(
        tmp_path_factory.mktemp("image-flow-run"), PurePosixPath(monitor["parameters"]["config_path"])
    )
    prefect_env = {"PREFECT_API_URL": prefect_api}

    # The work pool's base job template: prefect-kubernetes' default, read from the image.
    template = container(
        "python",
        "-c",
        "import json; from prefect_kubernetes.worker import KubernetesWorker; "
        "print(json.dumps(KubernetesWorker.get_default_base_job_template()))",
    )
    assert template.returncode == 0, template.stderr
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=json.loads(template.stdout)),
            overwrite=True,
        )
        deployment_id = client.create_deployment(
            flow_id=client.create_flow_from_name("monitor"),
            name="monitor-image-test",
            entrypoint=monitor["entrypoint"],
            parameters=monitor["parameters"],
            pull_steps=declared["pull"],
            work_pool_name=POOL,
            job_variables={"image": IMAGE, "image_pull_policy": "Never"},
        )
        flow_run = client.create_flow_run_from_deployment(deployment_id)
        # What the worker does before it creates the Job.
        client.set_flow_run_state(flow_run.id, Pending())

    rendered = container(
        "python",
        "/image-tests/render_job.py",
        str(flow_run.id),
        env=prefect_env,
        volumes={Path(__file__).parent: "/image-tests:ro"},
    )
    assert rendered.returncode == 0, rendered.stderr
    manifest = json.loads(rendered.stdout.strip().splitlines()[-1])
    [job] = manifest["spec"]["template"]["spec"]["containers"]
    assert "command" not in job, "the Job overrides no entrypoint"
    env = {item["name"]: item["value"] for item in job["env"] if "value" in item}

    started = time.monotonic()
    execution = container(*job["args"], env=env, volumes=volumes, timeout=600)
    return FlowRunWorld(flow_run.id, manifest, execution, time.monotonic() - started, store, volumes)


def test_job_runs_prefect_flow_run_execute_for_the_flow_run(world: FlowRunWorld) -> None:
    [job] = world.manifest["spec"]["template"]["spec"]["containers"]
    assert job["image"] == IMAGE
    assert job["args"] == ["prefect", "flow-run", "execute"]
    env = {item["name"]: item.get("value") for item in job["env"]}
    assert env["PREFECT__FLOW_RUN_ID"] == str(world.flow_run_id)


def test_flow_run_completes_in_the_container(world: FlowRunWorld) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    output = world.execution.stdout + world.execution.stderr
    assert world.execution.returncode == 0, output[-6000:]
    # Nothing tried to write where a read-only root filesystem forbids it, not even in a caught error.
    assert "Read-only file system" not in output and "Permission denied" not in output, output[-6000:]
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(world.flow_run_id)
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        # The drift verdicts reached the Prefect UI as artifacts.
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[world.flow_run_id]))
        )
    assert {artifact.key for artifact in artifacts} >= {"drift-weather", "drift-weather-report"}
    print(f"flow run in the container: {world.seconds:.1f} s\n{output[-4000:]}")


def test_model_version_registered_with_the_flow_runs_lineage(world: FlowRunWorld) -> None:
    from prefect.client.orchestration import get_client

    assert world.execution.returncode == 0, world.execution.stderr[-3000:]
    mlflow = read_pod_registry(world.store)
    [version] = mlflow.search_model_versions("name = 'weather-dev'")
    assert version.tags["driftloop.git_sha"] == GIT_SHA
    # The first champion was trained by the monitor's `retrain` subflow, inside this flow run.
    with get_client(sync_client=True) as client:
        subflow = client.read_flow_run(UUID(version.tags["driftloop.flow_run_id"]))
        parent_task = client.read_task_run(subflow.parent_task_run_id)
    assert parent_task.flow_run_id == world.flow_run_id
    assert mlflow.get_model_version_by_alias("weather-dev", "champion").version == version.version
    assert len(drift_checks(mlflow, "weather")) == 2


def test_api_in_the_image_serves_the_registry_the_flow_run_wrote(world: FlowRunWorld, docker: str, container) -> None:
    from .conftest import background

    port = free_port()
    name = f"driftloop-test-api-{port}"
    volumes = {source: target for source, target in world.volumes.items() if target != "/data:ro"}
    started = container(
        "driftloop", "serve", "--host", "127.0.0.1", "--port", str(port), volumes=volumes, detach=True, name=name
    )
    assert started.returncode == 0, started.stderr
    with background(docker, name):
        assert json.loads(wait_for_http(f"http://127.0.0.1:{port}/readyz")) == {"status": "ready"}
        models = json.loads(wait_for_http(f"http://127.0.0.1:{port}/models"))
    assert "weather" in json.dumps(models)
