"""driftloop on the cluster's servers (PostgreSQL, prefect server, mlflow server, a work pool with a worker
running each flow run as a process of its own), asserting on server state — Prefect flow runs through
the Prefect API, the registry through MLflow's REST API — never on logs.

Tests start flow runs through the Prefect API as the UI or a schedule does; the retrain deployment
starts from its own trigger on ``driftloop.retrain.requested``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from integration.conftest import World
from integration.helpers import (
    driftloop_cli,
    emit,
    read_flow_run,
    start_deployment,
    task_run_names,
    wait_for_flow_run,
    wait_for_retrains,
    wait_for_task,
)
from service.stack.servers import Stack

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_client_settings")]

MONITOR, RETRAIN = "monitor/monitor", "retrain/retrain"


def run_monitor(world: World, timeout: float = 300) -> object:
    flow_run_id = start_deployment(
        MONITOR, {"config_path": str(world.config_path), "retrain_via": "event"}, world.job_variables
    )
    run = wait_for_flow_run(flow_run_id, timeout)
    assert run.state.type.value == "COMPLETED", f"monitor run {run.name}: {run.state.type.value} {run.state.message}"
    return run


def bootstrap(world: World) -> None:
    """A first champion, trained by the retrain deployment on the reference (no drift check involved)."""
    flow_run_id = start_deployment(RETRAIN, {"config_path": str(world.config_path)}, world.job_variables)
    run = wait_for_flow_run(flow_run_id, 300)
    assert run.state.type.value == "COMPLETED", run.state.message
    assert world.state()["dev"]["champion"] == "1"


def test_drift_seen_by_the_monitor_deployment_retrains_through_the_trigger_then_approve_and_rollback(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given a stream whose batches 4 and 5 drift, of which only 1-3 have arrived
    world = make_world("happy", n_batches=5, drift_at=4)
    world.hold(4, 5)
    # when the monitor deployment runs: no champion yet, so it trains one on the reference, and checks 1-3
    run_monitor(world)
    assert world.state()["prod"] == {"versions": ["1"], "champion": None, "challenger": "1", "previous": None}
    # and an operator approves v1 for prod with the CLI, against the tracking server
    approved = driftloop_cli(stack, "approve", "happy", "--env", "prod", "--config", str(world.config_path))
    assert approved.returncode == 0, approved.stderr
    assert world.state()["prod"]["champion"] == "1"
    # when the drifted batches arrive and the monitor runs again
    since = datetime.now(UTC)
    world.deliver(4, 5)
    run_monitor(world)
    # then the drift was confirmed at batch 5 and a retrain requested by event: the retrain deployment
    # ran from its trigger, with the drift check's run id as its parameter
    checks = {run.data.tags["driftloop.batch_uri"].rsplit("/", 1)[-1]: run for run in world.runs("monitoring")}
    assert sorted(checks) == [f"batch_00{n}.csv" for n in range(1, 6)]
    (retrain,) = wait_for_retrains(world.config_path, since, 1)
    assert retrain.state.type.value == "COMPLETED", retrain.state.message
    assert retrain.parameters["drift_run_id"] == checks["batch_005.csv"].info.run_id
    # and v2 reached the registry through the tracking server with its lineage, dev → staging, prod waits
    assert world.state() == {
        "dev": {"versions": ["1", "2"], "champion": "2", "challenger": None, "previous": "1"},
        "staging": {"versions": ["1", "2"], "champion": "2", "challenger": None, "previous": "1"},
        "prod": {"versions": ["1", "2"], "champion": "1", "challenger": "2", "previous": None},
    }
    v2 = world.registry().version("dev", "2")
    assert v2.tags["driftloop.flow_run_id"] == str(retrain.id)
    assert v2.tags["driftloop.drift_run_id"] == checks["batch_005.csv"].info.run_id
    assert world.registry().client.get_run(v2.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    # when the operator approves v2, then rolls prod back
    approved = driftloop_cli(stack, "approve", "happy", "--env", "prod", "--config", str(world.config_path))
    assert approved.returncode == 0, approved.stderr
    after_approval = world.state()["prod"]
    rolled = driftloop_cli(stack, "rollback", "happy", "--env", "prod", "--config", str(world.config_path))
    assert rolled.returncode == 0, rolled.stderr
    # then v2 was champion with v1 previous, and the rollback restored v1 as prod's champion
    assert after_approval == {"versions": ["1", "2"], "champion": "2", "challenger": None, "previous": "1"}
    assert world.state()["prod"]["champion"] == "1"


def test_a_burst_of_retrain_requests_trains_once(stack: Stack, make_world: Callable[..., World]) -> None:
    from service.notify import retrain_requested

    # given a stream drifting from batch 4 on, all arrived: the monitor confirms drift at 5 and requests a
    # retrain; batch 6 waits for the champion that retrain makes
    world = make_world("burst", n_batches=6, drift_at=4)
    since = datetime.now(UTC)
    summary = run_monitor(world)
    checks = {run.data.tags["driftloop.batch_uri"].rsplit("/", 1)[-1]: run for run in world.runs("monitoring")}
    assert "batch_006.csv" not in checks, summary
    # when two more alerts for the same drift check arrive at once (a webhook replayed, a double click)
    request = retrain_requested("burst", str(world.config_path), checks["batch_005.csv"].info.run_id)
    from prefect.events import Event

    emit([Event(event=request.event, resource=request.resource, payload=request.body()) for _ in range(2)])
    # then the trigger starts a retrain per request, the model's concurrency slot runs them one by one; all
    # complete, and exactly one of them trained: the others found their request answered by v2
    runs = wait_for_retrains(world.config_path, since, 3)
    assert len(runs) == 3
    assert {run.state.type.value for run in runs} == {"COMPLETED"}
    trained_by = {run.data.tags.get("driftloop.flow_run_id") for run in world.runs("training")}
    retrained = [run for run in runs if str(run.id) in trained_by]
    assert len(retrained) == 1, f"{len(retrained)} of {len(runs)} retrain runs trained"
    # and the registry holds the bootstrap version and one retrained version, nothing more
    assert len(world.runs("training")) == 2
    assert world.state()["dev"] == {"versions": ["1", "2"], "champion": "2", "challenger": None, "previous": "1"}
    assert world.state()["staging"]["versions"] == ["1", "2"]


def test_mlflow_server_down_during_registration_fails_clearly_and_a_rerun_registers_once(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    from service.stack.processes import free_port

    # given a tracking server of its own (so stopping it disturbs no other test) and a first champion
    port = free_port()
    outage = stack.make_mlflow_server(port, database="mlflow_outage", name="mlflow-outage").start()
    try:
        world = make_world("outage", n_batches=5, drift_at=4, tracking_uri=f"http://127.0.0.1:{port}")
        bootstrap(world)
        before = world.state()
        window = [str(world.stream / "batch_004.csv"), str(world.stream / "batch_005.csv")]
        params = {"config_path": str(world.config_path), "window": window}
        # when a retrain runs and the tracking server goes down once the challenger is being fitted,
        # before it is evaluated and registered, and stays down
        flow_run_id = start_deployment(RETRAIN, params, world.job_variables)
        wait_for_task(flow_run_id, "fit_challenger")
        outage.stop()
        run = wait_for_flow_run(flow_run_id, 240)
        # then the flow run fails (after the tasks' retries), and its message names the unreachable server
        assert run.state.type.value == "FAILED", run.state
        assert f"127.0.0.1:{port}" in (run.state.message or ""), run.state.message
        tasks = task_run_names(flow_run_id)
        assert tasks.get("register_and_promote") in (None, "FAILED"), tasks
        # and once the server is back, nothing was registered or promoted half-way
        outage.start()
        assert world.state() == before
        # when the retrain is run again
        rerun = wait_for_flow_run(start_deployment(RETRAIN, params, world.job_variables), 240)
        # then it registers exactly one new version, promoted as usual
        assert rerun.state.type.value == "COMPLETED", rerun.state.message
        after = world.state()
        assert after["dev"] == {"versions": ["1", "2"], "champion": "2", "challenger": None, "previous": "1"}
        assert after["staging"]["versions"] == ["1", "2"]
        assert after["prod"]["challenger"] == "2"
    finally:
        outage.stop()


def test_a_flow_run_process_killed_mid_retrain_ends_crashed_and_moves_no_alias(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given a champion and a retrain on drifted batches under way
    world = make_world("crash", n_batches=5, drift_at=4)
    bootstrap(world)
    before, trainings = world.state(), len(world.runs("training"))
    window = [str(world.stream / "batch_004.csv"), str(world.stream / "batch_005.csv")]
    flow_run_id = start_deployment(RETRAIN, {"config_path": str(world.config_path), "window": window})
    wait_for_task(flow_run_id, "prepare")
    # when its process is killed (a node lost, an OOM kill)
    infrastructure_pid = read_flow_run(flow_run_id).infrastructure_pid
    assert infrastructure_pid, "the worker records the flow run's process id"
    os.kill(int(str(infrastructure_pid).rsplit(":", 1)[-1]), signal.SIGKILL)
    # then the worker reports the flow run Crashed
    run = wait_for_flow_run(flow_run_id, 120)
    assert run.state.type.value == "CRASHED", run.state
    # and no version was added nor any alias moved
    assert world.state() == before
    assert len(world.runs("training")) == trainings


def test_duplicate_requests_for_one_drift_check_train_once_even_when_the_gate_rejects(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    from prefect.events import Event

    from service.notify import retrain_requested

    # given a gate no challenger can pass, and a monitor pass confirming drift at batch 5 (one request)
    world = make_world("rejecting", n_batches=5, drift_at=4, config={"evaluation": {"min_gain": 1.0}})
    since = datetime.now(UTC)
    run_monitor(world)
    checks = {run.data.tags["driftloop.batch_uri"].rsplit("/", 1)[-1]: run for run in world.runs("monitoring")}
    # when the same alert arrives once more
    request = retrain_requested("rejecting", str(world.config_path), checks["batch_005.csv"].info.run_id)
    emit([Event(event=request.event, resource=request.resource, payload=request.body())])
    runs = wait_for_retrains(world.config_path, since, 2)
    assert {run.state.type.value for run in runs} == {"COMPLETED"}
    # then the drift check was acted on once: one training besides the bootstrap, one rejected version
    assert len(world.runs("training")) == 2
    assert world.state()["dev"]["versions"] == ["1", "2"]


def test_prefect_server_restarted_during_a_monitor_pass_loses_no_drift_check(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given a monitor pass under way over six batches (no champion yet: it trains one first)
    world = make_world("restart", n_batches=6, drift_at=5)
    first = start_deployment(MONITOR, {"config_path": str(world.config_path), "retrain_via": "event"})
    deadline = time.monotonic() + 240
    while not world.runs("monitoring"):
        assert time.monotonic() < deadline, "no drift check recorded"
        time.sleep(0.3)
    # when the Prefect server is restarted in the middle of it (same database, same port)
    stack.prefect_server.restart()
    first_run = wait_for_flow_run(first, 300)
    # and the monitor runs again once the server is back
    second_run = run_monitor(world)
    # then every batch was checked exactly once, by one pass or the other: none lost, none twice
    checks = world.runs("monitoring")
    batches = sorted(run.data.tags["driftloop.batch_uri"].rsplit("/", 1)[-1] for run in checks)
    assert batches == [f"batch_00{n}.csv" for n in range(1, 7)], (first_run.state, batches)
    by_run = {str(first_run.id): 0, str(second_run.id): 0}
    for check in checks:
        by_run[check.data.tags.get("driftloop.flow_run_id", "?")] = (
            by_run.get(check.data.tags.get("driftloop.flow_run_id", "?"), 0) + 1
        )
    assert set(by_run) == {str(first_run.id), str(second_run.id)}, by_run
    assert sum(by_run.values()) == 6
