"""Talking to the stack's servers as the cluster's clients do: the Prefect API, its events, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from typing import Any

import pytest

from service.stack.servers import Stack

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# Prefect helpers -----------------------------------------------------------------------------------------


def sync_client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def deployment_id(name: str) -> Any:
    with sync_client() as client:
        return client.read_deployment_by_name(name).id


def start_deployment(name: str, parameters: dict[str, Any], job_variables: dict[str, Any] | None = None) -> Any:
    """Start a flow run of a deployment through the Prefect API, as the UI's "Run" button does."""
    with sync_client() as client:
        deployment = client.read_deployment_by_name(name)
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters, job_variables=job_variables)
    return run.id


def read_flow_run(flow_run_id: Any) -> Any:
    with sync_client() as client:
        return client.read_flow_run(flow_run_id)


def wait_for_flow_run(flow_run_id: Any, timeout: float = 300, states: set[str] = TERMINAL) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # the API may be restarting
            run = read_flow_run(flow_run_id)
            if run.state is not None and run.state.type.value in states:
                return run
        if time.monotonic() > deadline:
            raise AssertionError(f"flow run {flow_run_id} not in {states} after {timeout:.0f} s: {run.state!r}")
        time.sleep(1)


def deployment_runs(name: str, since: Any = None) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with sync_client() as client:
        deployment = client.read_deployment_by_name(name)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    if since is not None:
        runs = [run for run in runs if run.created >= since]
    return runs


def retrain_runs(config_path: Any, since: Any) -> list[Any]:
    """The retrain deployment's runs for one model config since ``since``."""
    runs = deployment_runs("retrain/retrain", since)
    return [run for run in runs if run.parameters.get("config_path") == str(config_path)]


def wait_for_retrains(config_path: Any, since: Any, count: int, timeout: float = 300) -> list[Any]:
    """Wait until at least ``count`` retrain runs for this config exist and all have ended."""
    deadline = time.monotonic() + timeout
    while True:
        runs = retrain_runs(config_path, since)
        if len(runs) >= count and all(run.state and run.state.type.value in TERMINAL for run in runs):
            return runs
        if time.monotonic() > deadline:
            states = [(run.name, run.state.type.value if run.state else None) for run in runs]
            raise AssertionError(f"expected {count} finished retrain runs in {timeout:.0f} s, have {states}")
        time.sleep(1)


def task_runs(flow_run_id: Any) -> list[Any]:
    """The task runs of a flow run (at most 200)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with sync_client() as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)


def task_of(task_run: Any) -> str:
    """The task a task run ran: its run name less the suffix Prefect adds."""
    return task_run.name.rsplit("-", 1)[0]


def task_run_names(flow_run_id: Any) -> dict[str, str]:
    """Task runs of a flow run: name → state type (the latest run of each name)."""
    return {task_of(task): task.state.type.value if task.state else "?" for task in task_runs(flow_run_id)}


def wait_for_task(flow_run_id: Any, task_name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while task_name not in task_run_names(flow_run_id):
        run = read_flow_run(flow_run_id)
        if run.state and run.state.type.value in TERMINAL:
            raise AssertionError(f"flow run ended {run.state.type.value} before task {task_name}: {run.state.message}")
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_name} of flow run {flow_run_id} did not start in {timeout:.0f} s")
        time.sleep(0.2)


def emit(events: list[Any]) -> None:
    """Send events to the Prefect API and return once they are sent (not buffered in a background worker)."""
    from prefect.events.clients import get_events_client

    async def send() -> None:
        async with get_events_client() as client:
            for event in events:
                await client.emit(event)

    asyncio.run(send())


def driftloop_cli(stack: Stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The installed ``driftloop`` script, as an operator runs it, against the stack's servers."""
    driftloop = shutil.which("driftloop") or pytest.fail("driftloop is not installed (pip install -e .)")
    return subprocess.run(
        [driftloop, *args],
        env=stack.client_env(**{"PREFECT_HOME": str(stack.root / "prefect-cli")}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
