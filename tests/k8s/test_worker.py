"""The Prefect Kubernetes worker against a mocked Kubernetes API.

No cluster runs here, so the Kubernetes API is mocked: only the kubernetes_asyncio calls that
prefect_kubernetes makes are replaced (in-cluster config loading, BatchV1Api.create_namespaced_job,
BatchV1Api.list_namespaced_job). Everything else is real: the Prefect API is the test session's
server, the work pool carries the chart's base job template (k8s/base-job-template.json), the
deployment is flows/prefect.yaml's `monitor`, and the worker and its observer are prefect-kubernetes'
own code.

The worker creates the Job and returns; ending the flow run of a failed Job is the observer's work
(`prefect_kubernetes.observer._mark_flow_run_as_crashed`, which kopf calls for each Job watch event).
The test delivers the watch event kopf would deliver when a Job's pod is OOM-killed mid-run.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from typing import Any
from unittest import mock

import pytest
import yaml

from .conftest import ROOT, base_job_template_of
from .test_flow_run_job import job_validation_errors

POOL = "driftloop-worker-test"


class FakeBatchApi:
    """The Jobs of one namespace, as BatchV1Api would see them."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.jobs: list[Any] = []
        self.list_calls: list[dict[str, Any]] = []

    async def create_namespaced_job(self, api: Any, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        from kubernetes_asyncio.client import V1Job, V1ObjectMeta

        self.created.append((namespace, copy.deepcopy(body)))
        name = body["metadata"]["generateName"] + "x7k2p"
        job = V1Job(
            metadata=V1ObjectMeta(
                name=name, namespace=namespace, uid=str(uuid.uuid4()), labels=body["metadata"]["labels"]
            ),
            spec=body["spec"],
        )
        self.jobs.append(job)
        return job

    async def list_namespaced_job(self, api: Any, namespace: str, **kwargs: Any) -> Any:
        from kubernetes_asyncio.client import V1JobList

        self.list_calls.append({"namespace": namespace, **kwargs})
        return V1JobList(items=self.jobs)


@pytest.fixture
def kubernetes() -> Any:
    from kubernetes_asyncio.client import BatchV1Api

    fake = FakeBatchApi()

    async def create(api: Any, *args: Any, **kwargs: Any) -> Any:
        return await fake.create_namespaced_job(api, *args, **kwargs)

    async def list_jobs(api: Any, *args: Any, **kwargs: Any) -> Any:
        return await fake.list_namespaced_job(api, *args, **kwargs)

    with (
        mock.patch("kubernetes_asyncio.config.load_incluster_config"),
        mock.patch.object(BatchV1Api, "create_namespaced_job", create),
        mock.patch.object(BatchV1Api, "list_namespaced_job", list_jobs),
    ):
        yield fake


@pytest.fixture
def scheduled_monitor_run(prefect_api: str, default_base_job_template: dict[str, Any]) -> uuid.UUID:
    """A flow run of flows/prefect.yaml's `monitor` deployment, due now, on a pool with our template."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Scheduled

    declared = yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())
    monitor = next(deployment for deployment in declared["deployments"] if deployment["name"] == "monitor")
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=default_base_job_template), overwrite=True
        )
        deployment_id = client.create_deployment(
            flow_id=client.create_flow_from_name("monitor"),
            name=f"monitor-{uuid.uuid4().hex[:8]}",
            entrypoint=monitor["entrypoint"],
            parameters=monitor["parameters"],
            pull_steps=declared["pull"],
            work_pool_name=POOL,
            job_variables=monitor["work_pool"]["job_variables"],
        )
        return client.create_flow_run_from_deployment(deployment_id, state=Scheduled()).id


def run_worker() -> list[Any]:
    from prefect_kubernetes.worker import KubernetesWorker

    async def poll_once() -> list[Any]:
        async with KubernetesWorker(work_pool_name=POOL, name="driftloop-test-worker") as worker:
            await worker.sync_with_backend()
            return await worker.get_and_submit_flow_runs()

    return asyncio.run(poll_once())


def read_flow_run(flow_run_id: uuid.UUID) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def test_the_worker_creates_our_job_for_a_scheduled_flow_run(
    scheduled_monitor_run: uuid.UUID, kubernetes: FakeBatchApi
) -> None:
    submitted = run_worker()

    assert [flow_run.id for flow_run in submitted] == [scheduled_monitor_run]
    ((namespace, job),) = kubernetes.created
    assert namespace == "driftloop"
    assert job_validation_errors(job, "1.35") == []
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "driftloop:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PREFECT__FLOW_RUN_ID"] == str(scheduled_monitor_run)
    assert env["PREFECT_API_URL"] == "http://driftloop-prefect-server:4200/api"
    assert job["metadata"]["labels"]["prefect.io/flow-run-id"] == str(scheduled_monitor_run)
    flow_run = read_flow_run(scheduled_monitor_run)
    assert flow_run.state.is_pending()
    assert flow_run.infrastructure_pid == f"driftloop:{kubernetes.jobs[0].metadata.name}"


def test_a_job_whose_pod_is_oom_killed_ends_its_flow_run_as_crashed(
    scheduled_monitor_run: uuid.UUID, kubernetes: FakeBatchApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes_asyncio.client import V1JobCondition, V1JobStatus
    from prefect.client.orchestration import get_client
    from prefect.states import Running
    from prefect_kubernetes import observer

    run_worker()
    (job,) = kubernetes.jobs
    # The pod started the flow run (the engine set it Running), then the kernel OOM-killed it:
    # with backoffLimit 0 the Job fails at once.
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(scheduled_monitor_run, Running(), force=True)
    condition = V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded")
    job.status = V1JobStatus(failed=1, conditions=[condition])

    async def deliver_watch_event() -> None:
        async with get_client() as client:
            monkeypatch.setattr(observer, "orchestration_client", client)
            await observer._mark_flow_run_as_crashed(
                event={"type": "MODIFIED", "object": job.to_dict()},
                name=job.metadata.name,
                labels=job.metadata.labels,
                status={"failed": 1, "conditions": [condition.to_dict()]},
                spec=job.spec,
                logger=logging.getLogger("kopf.objects"),
                namespace=job.metadata.namespace,
                uid=job.metadata.uid,
            )

    asyncio.run(deliver_watch_event())

    flow_run = read_flow_run(scheduled_monitor_run)
    assert flow_run.state.is_crashed()
    assert flow_run.state.message == "No active or succeeded pods found for any job"
    assert kubernetes.list_calls == [
        {"namespace": "driftloop", "label_selector": f"prefect.io/flow-run-id={scheduled_monitor_run}"}
    ]


def test_a_job_that_still_runs_leaves_its_flow_run_alone(
    scheduled_monitor_run: uuid.UUID, kubernetes: FakeBatchApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Running
    from prefect_kubernetes import observer

    run_worker()
    (job,) = kubernetes.jobs
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(scheduled_monitor_run, Running(), force=True)

    async def deliver_watch_event() -> None:
        async with get_client() as client:
            monkeypatch.setattr(observer, "orchestration_client", client)
            await observer._mark_flow_run_as_crashed(
                event={"type": "MODIFIED", "object": job.to_dict()},
                name=job.metadata.name,
                labels=job.metadata.labels,
                status={"active": 1},
                spec=job.spec,
                logger=logging.getLogger("kopf.objects"),
                namespace=job.metadata.namespace,
                uid=job.metadata.uid,
            )

    asyncio.run(deliver_watch_event())
    assert read_flow_run(scheduled_monitor_run).state.is_running()


def test_the_worker_creates_the_job_of_a_run_with_job_variables_in_the_jobs_namespace(
    prefect_api: str, rendered: dict[str, Any], kubernetes: FakeBatchApi
) -> None:
    """The external-database example sends Jobs to namespace driftloop-jobs; a run that sets the
    allowed job variables gets them, and nothing else of the Job moves."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Scheduled

    template = base_job_template_of(rendered["external-database-s3-values.yaml"])
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=template), overwrite=True
        )
        deployment_id = client.create_deployment(
            flow_id=client.create_flow_from_name("monitor"), name=f"monitor-{uuid.uuid4().hex[:8]}", work_pool_name=POOL
        )
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(), job_variables={"memory_limit": "8Gi", "env": {"EXTRA": "1"}}
        )

    run_worker()

    ((namespace, job),) = kubernetes.created
    assert namespace == job["metadata"]["namespace"] == "driftloop-jobs"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["memory"] == "8Gi"
    assert {"name": "EXTRA", "value": "1"} in container["env"]
    assert pod["serviceAccountName"] == "driftloop-flow-run"
    assert container["image"].startswith("registry.example.com/driftloop@sha256:")
    assert container["command"] == [
        "/usr/bin/env",
        "MLFLOW_TRACKING_URI=http://driftloop-mlflow.driftloop:5000",
        "PREFECT_API_URL=http://driftloop-prefect-server.driftloop:4200/api",
    ]
    assert job["metadata"]["labels"]["prefect.io/flow-run-id"] == str(flow_run.id)
    assert job_validation_errors(job, "1.35") == []
