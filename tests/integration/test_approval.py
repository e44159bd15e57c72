"""Approval from the Prefect UI, on the local stack's real servers and process worker: a version awaiting
approval in prod gets a suspended run of the ``approval`` deployment (started by its trigger on
``driftloop.approval.needed``), whose input form is the decision. Resuming it as the UI does — the
Prefect API's resume with a run input — lets the worker run it again in a new process, which decides;
``driftloop approve`` decides the same pending state and ends the suspended run.

Asserts on server state: flow runs through the Prefect API, aliases and tags through MLflow's REST API.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from integration.conftest import World
from integration.helpers import driftloop_cli, start_deployment, sync_client, wait_for_flow_run
from service.stack.servers import Stack
from tests.support import enter_dev, events_named

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_client_settings")]


def approval_runs(model: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with sync_client() as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["approval"])))
    return [run for run in runs if run.parameters.get("model") == model]


def wait_for_suspended(model: str, version: str, timeout: float = 240) -> Any:
    """The approval run of ``model`` asking about ``version``, once it is suspended."""
    deadline = time.monotonic() + timeout
    while True:
        for run in approval_runs(model):
            if run.parameters.get("version") == version and run.state and run.state.name == "Suspended":
                return run
        if time.monotonic() > deadline:
            states = [(run.name, run.state.name if run.state else None) for run in approval_runs(model)]
            raise AssertionError(f"no suspended approval run for {model} v{version} in {timeout:.0f} s: {states}")
        time.sleep(1)


def run_input(run: Any, part: str) -> str:
    """The ``schema`` or ``description`` the suspended run stored for its input form (what the UI draws)."""
    from prefect.input.run_input import keyset_from_paused_state

    with sync_client() as client:
        return client.read_flow_run_input(run.id, keyset_from_paused_state(run.state)[part])


def resume(run: Any, **answer: str) -> Any:
    """Submit the run's form, as the UI's Resume button does, and wait for the run to end."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run.id, run_input=answer)
    return wait_for_flow_run(run.id, 300)


def waiting_in_prod(stack: Stack, world: World) -> str:
    """A new version made dev's champion and promoted with the CLI to staging, then to prod, where it
    waits for approval: the promotion's driftloop.approval.needed event starts an approval run."""
    version = enter_dev(world.registry())
    for env in ("staging", "prod"):
        promoted = driftloop_cli(stack, "promote", world.name, "--to", env, "--config", str(world.config_path))
        assert promoted.returncode == 0, promoted.stderr
    assert world.state()["prod"]["challenger"] == version
    return version


def cli_without_prefect(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``driftloop`` run where no Prefect API is configured (an operator's laptop): MLflow only."""
    env = stack.client_env()
    env.pop("PREFECT_API_URL")
    return subprocess.run(["driftloop", *args], env=env, capture_output=True, text=True, timeout=180)


def test_a_retrained_version_awaiting_prod_gets_a_suspended_run_whose_approval_makes_it_champion(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given a first champion trained by the retrain deployment: dev and staging take it, prod waits
    world = make_world("ui-approve", n_batches=2, drift_at=9)
    trained = start_deployment("retrain/retrain", {"config_path": str(world.config_path)}, world.job_variables)
    assert wait_for_flow_run(trained, 300).state.type.value == "COMPLETED"
    assert world.state()["prod"] == {"versions": ["1"], "champion": None, "challenger": "1", "previous": None}
    # then the approval deployment's trigger started a run for v1, suspended (its process has ended)
    run = wait_for_suspended("ui-approve", "1")
    assert run.parameters == {
        "config_path": str(world.config_path),
        "model": "ui-approve",
        "env": "prod",
        "version": "1",
    }
    assert run.state.type.value == "PAUSED" and run.state.state_details.pause_reschedule
    # and its input form asks for the decision (approve or reject) and a note, saying what is at stake
    schema = json.loads(run_input(run, "schema"))
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert "note" in schema["properties"] and schema["required"] == ["decision"]
    assert "models:/ui-approve-prod/1" in json.loads(run_input(run, "description"))
    # when someone approves it in the form
    finished = resume(run, decision="approve", note="holdout looks right")
    # then the resumed run completed and prod's @champion is v1, with the decision recorded on it
    assert finished.state.type.value == "COMPLETED", finished.state.message
    assert world.state()["prod"] == {"versions": ["1"], "champion": "1", "challenger": None, "previous": None}
    tags = world.registry().version("prod", "1").tags
    assert tags["driftloop.approved"] == "true" and tags["driftloop.decision_note"] == "holdout looks right"
    assert tags["driftloop.decided_via"] == f"prefect flow run {run.id}"


def test_rejecting_in_the_suspended_run_keeps_the_champion_and_records_the_rejection(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given prod's champion v1 and v2 waiting for approval, with its suspended approval run
    world = make_world("ui-reject")
    waiting_in_prod(stack, world)
    approved = driftloop_cli(stack, "approve", "ui-reject", "--env", "prod", "--config", str(world.config_path))
    assert approved.returncode == 0, approved.stderr
    run = wait_for_suspended("ui-reject", waiting_in_prod(stack, world))
    # when v2 is rejected in the form
    finished = resume(run, decision="reject", note="slice north regressed")
    # then the run completed, v1 stays prod's champion, v2 is no longer challenger and says why
    assert finished.state.type.value == "COMPLETED", finished.state.message
    assert world.state()["prod"] == {"versions": ["1", "2"], "champion": "1", "challenger": None, "previous": None}
    tags = world.registry().version("prod", "2").tags
    assert (tags["driftloop.status"], tags["driftloop.rejected_reason"]) == ("rejected", "slice north regressed")
    assert tags["driftloop.decided_via"] == f"prefect flow run {run.id}"


def test_cli_approve_while_suspended_ends_the_run_and_the_alias_moves_once(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import resume_flow_run

    # given v1 waiting for approval in prod, its approval run suspended
    world = make_world("cli-approve")
    since = datetime.now(UTC)
    run = wait_for_suspended("cli-approve", waiting_in_prod(stack, world))
    # when an operator approves it with the CLI
    approved = driftloop_cli(stack, "approve", "cli-approve", "--env", "prod", "--config", str(world.config_path))
    # then v1 is prod's champion, and the suspended run was cancelled saying so, without a Job started
    assert approved.returncode == 0, approved.stderr
    assert "warning" not in approved.stderr, approved.stderr
    assert world.state()["prod"] == {"versions": ["1"], "champion": "1", "challenger": None, "previous": None}
    ended = wait_for_flow_run(run.id, 30)
    assert ended.state.type.value == "CANCELLED"
    assert "models:/cli-approve-prod/1 is @champion" in ended.state.message and "via cli" in ended.state.message
    assert ended.run_count == 1, "the run never ran again"
    # and the form can no longer be submitted
    with pytest.raises(NotPausedError):
        resume_flow_run(run.id, run_input={"decision": "reject"})
    # and prod's champion moved once: one promotion announced, nothing rejected
    promoted = events_named(
        stack.prefect_url,
        "driftloop.version.promoted",
        since,
        lambda event: event["resource"]["driftloop.env"] == "prod",
    )
    assert [event["resource"]["driftloop.version"] for event in promoted] == ["1"]
    assert world.registry().version("prod", "1").tags.get("driftloop.status") == "champion"


def test_a_suspended_run_resumed_after_the_alias_moved_changes_nothing(
    stack: Stack, make_world: Callable[..., World]
) -> None:
    # given v1 waiting in prod with a suspended approval run, approved with a CLI that has no Prefect API
    # (so the run was not told)
    world = make_world("late-resume")
    run = wait_for_suspended("late-resume", waiting_in_prod(stack, world))
    approved = cli_without_prefect(stack, "approve", "late-resume", "--env", "prod", "--config", str(world.config_path))
    assert approved.returncode == 0, approved.stderr
    before = world.state()
    tags_before = world.registry().version("prod", "1").tags
    # when the stale form is submitted with a rejection
    finished = resume(run, decision="reject", note="too late")
    # then the run completed having decided nothing: v1 stays champion, untagged by the rejection
    assert finished.state.type.value == "COMPLETED", finished.state.message
    assert before["prod"] == {"versions": ["1"], "champion": "1", "challenger": None, "previous": None}
    assert world.state() == before
    assert world.registry().version("prod", "1").tags == tags_before
