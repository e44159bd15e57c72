"""`dask.schedulerAddress`: flow runs pointed at an existing Dask cluster (the chart bundles none).

The value reaches the flow-run Job as DRIFTLOOP_DASK_SCHEDULER through the work pool's base job template
(the Job built by prefect-kubernetes' own code), and the flow runs' NetworkPolicy lets them reach the
scheduler's port; with the value unset, neither appears.
"""

from __future__ import annotations

from typing import Any

from .conftest import NAMESPACE, Objects, base_job_template_of, helm_template
from .test_flow_run_job import build_job, container_env, job_validation_errors
from .test_network import Network, Pod, render

ADDRESS = "tcp://driftloop-dask-scheduler.dask:8786"
# The Dask Kubernetes operator's scheduler pod of a DaskCluster named driftloop-dask, in namespace dask.
SCHEDULER = Pod(
    "dask-scheduler", "dask", {"dask.org/cluster-name": "driftloop-dask", "dask.org/component": "scheduler"}
)


def env_defaults(objects: Objects) -> dict[str, Any]:
    return base_job_template_of(objects)["variables"]["properties"]["env"]["default"]


def test_the_scheduler_address_reaches_flow_run_jobs_as_their_env(prefect_api: str) -> None:
    # given the chart pointed at a Dask cluster
    objects = render(f"dask.schedulerAddress={ADDRESS}")
    # then the work pool's flow runs get the address, in the Job the worker builds
    assert env_defaults(objects)["DRIFTLOOP_DASK_SCHEDULER"] == ADDRESS
    job = build_job(base_job_template_of(objects))
    assert container_env(job)["DRIFTLOOP_DASK_SCHEDULER"] == ADDRESS
    assert job_validation_errors(job, "1.35") == []
    # and a deployment may still point its runs at another cluster
    other = build_job(base_job_template_of(objects), {"env": {"DRIFTLOOP_DASK_SCHEDULER": "tcp://other:8786"}})
    assert container_env(other)["DRIFTLOOP_DASK_SCHEDULER"] == "tcp://other:8786"


def test_flow_runs_alone_reach_the_scheduler_and_only_once_it_is_configured(default_objects: Objects) -> None:
    # given the default values: no address, no egress to a Dask scheduler
    assert "DRIFTLOOP_DASK_SCHEDULER" not in env_defaults(default_objects)
    assert not Network(default_objects).connects(Network(default_objects).pods["flow-run"], SCHEDULER, 8786)
    # when the address is set
    network = Network(render(f"dask.schedulerAddress={ADDRESS}"))
    # then flow runs reach the scheduler's port, and nothing else of the release does
    reaching = {name for name, pod in network.pods.items() if network.connects(pod, SCHEDULER, 8786)}
    assert reaching == {"flow-run"}
    assert not network.connects(network.pods["flow-run"], SCHEDULER, 8787)  # the dashboard stays out of reach


def test_the_scheduler_peers_can_be_narrowed() -> None:
    narrowed = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dask"}}}],
        "ports": [8786],
    }
    network = Network(render(f"dask.schedulerAddress={ADDRESS}", values={"networkPolicy.egress.dask": narrowed}))
    flow_run = network.pods["flow-run"]
    assert network.connects(flow_run, SCHEDULER, 8786)
    assert not network.connects(flow_run, Pod("elsewhere", NAMESPACE, SCHEDULER.labels), 8786)


def test_an_address_without_scheme_or_port_is_refused_naming_the_key() -> None:
    for wrong in ("driftloop-dask-scheduler:8786", "tcp://driftloop-dask-scheduler"):
        result = helm_template("--set", f"dask.schedulerAddress={wrong}")
        assert result.returncode != 0
        assert "dask.schedulerAddress" in result.stderr.replace("/", "."), result.stderr
