"""Approval decisions on a real MLflow sqlite store, and how they end the approval runs suspended in the
session's real Prefect API: approve and reject resolve the one pending state (prod's @challenger), a
decision about a version that no longer waits changes nothing, and a decision cancels the suspended
approval runs of that model and environment (and no other).

The suspended runs are made through the Prefect API as a suspended run leaves itself (a deployment's
run, Running, then Suspended with a pause key); no worker runs them here: tests/integration does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.config_file import load_config
from service.errors import PromotionError
from service.registry import ALIASES, CHALLENGER, CHAMPION, PREVIOUS, Registry
from service.steering import Decision, steer
from tests.support import enter_dev


@pytest.fixture
def registry(world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return Registry(load_config(world(n_batches=1, drift_at=2)))


def waiting_in_prod(registry: Registry) -> str:
    """A new dev champion promoted to staging and on to prod, where it waits for approval."""
    version = enter_dev(registry)
    steer(registry, "staging", "promote")
    assert steer(registry, "prod", "promote").outcome.action == "awaiting_approval"
    return version


def aliases(registry: Registry, env: str = "prod") -> dict[str, str | None]:
    return {alias: getattr(registry.at_alias(env, alias), "version", None) for alias in ALIASES}


def test_reject_keeps_the_champion_drops_the_challenger_and_records_why(registry: Registry) -> None:
    # given v1 approved in prod and v2 waiting there
    waiting_in_prod(registry)
    steer(registry, "prod", "approve")
    waiting_in_prod(registry)
    # when v2 is rejected with a note
    steered = steer(registry, "prod", "reject", decision=Decision(note="slice north regressed", via="cli"))
    # then v1 stays champion, nothing waits, and v2 says it was rejected, why and how
    assert steered.outcome.action == "rejected" and steered.outcome.version == "2"
    assert aliases(registry) == {CHAMPION: "1", CHALLENGER: None, PREVIOUS: None}
    tags = registry.version("prod", "2").tags
    assert tags["driftloop.status"] == "rejected"
    assert tags["driftloop.rejected_reason"] == "slice north regressed"
    assert tags["driftloop.decided_via"] == "cli"
    # and a second rejection has nothing to reject
    with pytest.raises(PromotionError, match="no version awaits approval"):
        steer(registry, "prod", "reject")


def test_a_decision_about_a_version_that_no_longer_waits_changes_nothing(registry: Registry) -> None:
    # given v1 waiting in prod, then replaced there by v2 before anyone decided
    waiting_in_prod(registry)
    waiting_in_prod(registry)
    before = aliases(registry)
    v1_tags = registry.version("prod", "1").tags
    # when a decision about v1 arrives (a stale approval form), either way
    approved = steer(registry, "prod", "approve", decision=Decision(version="1"))
    rejected = steer(registry, "prod", "reject", decision=Decision(version="1"))
    # then neither moved an alias nor tagged a version, and both say so
    assert [approved.outcome.action, rejected.outcome.action] == ["unchanged", "unchanged"]
    assert "no longer awaits approval" in approved.outcome.message
    assert aliases(registry) == before == {CHAMPION: None, CHALLENGER: "2", PREVIOUS: None}
    assert registry.version("prod", "1").tags == v1_tags
    # and a decision about v2, the one waiting, is made
    assert steer(registry, "prod", "approve", decision=Decision(version="2")).outcome.action == "champion"


def suspended_approval_run(prefect: str, parameters: dict[str, str]) -> Any:
    """A run of an ``approval`` deployment, suspended as flows/approval.py leaves it."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running, Suspended

    @flow(name="approval")
    def approval_stand_in(config_path: str, model: str, env: str, version: str) -> None: ...

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(approval_stand_in)
        deployment = client.create_deployment(flow_id, "approval", parameter_openapi_schema={})
        run = client.create_flow_run_from_deployment(deployment, parameters=parameters)
        client.set_flow_run_state(run.id, Running(), force=True)
        suspended = client.set_flow_run_state(run.id, Suspended(pause_key=f"v{parameters['version']}"))
        assert suspended.state.name == "Suspended", suspended
    return run.id


def state_of(run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def test_an_approval_cancels_the_suspended_approval_runs_of_its_model_and_environment_only(
    registry: Registry, prefect: str
) -> None:
    # given v1 waiting in prod with a suspended approval run, and suspended runs of another model and env
    waiting_in_prod(registry)
    source = str(registry.config.source)
    ours = suspended_approval_run(prefect, {"config_path": source, "model": "weather", "env": "prod", "version": "1"})
    other_model = suspended_approval_run(prefect, {"config_path": "x", "model": "rain", "env": "prod", "version": "1"})
    other_env = suspended_approval_run(
        prefect, {"config_path": source, "model": "weather", "env": "qa", "version": "1"}
    )
    # when v1 is approved through the steering path, with the Prefect API known
    steered = steer(registry, "prod", "approve", prefect_api=prefect, decision=Decision(via="api"))
    # then v1 is champion, our run was cancelled saying what was decided and how, the others still wait
    assert aliases(registry)[CHAMPION] == "1"
    assert steered.failures == []
    assert [d.channel for d in steered.deliveries] == ["prefect_event", "approval_run"]
    ended = state_of(ours)
    assert ended.type.value == "CANCELLED"
    assert "models:/weather-prod/1 is @champion" in ended.message and "via api" in ended.message
    assert [state_of(run).name for run in (other_model, other_env)] == ["Suspended", "Suspended"]


def test_without_a_prefect_api_a_decision_is_made_and_no_run_is_touched(registry: Registry, prefect: str) -> None:
    # given v1 waiting in prod with a suspended approval run, and no PREFECT_API_URL (the fixture unsets it)
    waiting_in_prod(registry)
    params = {"config_path": str(registry.config.source), "model": "weather", "env": "prod", "version": "1"}
    run = suspended_approval_run(prefect, params)
    # when v1 is rejected
    steered = steer(registry, "prod", "reject")
    # then the rejection stands, the version's tags are the record, and the run still waits (if resumed,
    # it finds v1 no longer waiting and changes nothing)
    assert steered.outcome.action == "rejected" and steered.deliveries == ()
    assert registry.version("prod", "1").tags["driftloop.status"] == "rejected"
    assert state_of(run).name == "Suspended"


def test_an_unreachable_prefect_api_is_reported_and_the_decision_stands(registry: Registry) -> None:
    # given v1 waiting in prod, and a Prefect API that is down
    waiting_in_prod(registry)
    # when v1 is approved
    steered = steer(registry, "prod", "approve", prefect_api="http://127.0.0.1:9/api")
    # then it is champion, and the event and the search for runs to end are reported as not delivered
    assert aliases(registry)[CHAMPION] == "1"
    assert [(d.channel, bool(d.error)) for d in steered.deliveries] == [("prefect_event", True), ("approval_run", True)]
    assert "unreachable" in steered.failures[1]


def test_an_approval_run_asks_about_the_waiting_version_and_about_nothing_once_it_is_replaced(
    registry: Registry,
) -> None:
    from service.approval import pending_request

    # given v1 champion of prod and v2 waiting there
    waiting_in_prod(registry)
    steer(registry, "prod", "approve")
    waiting_in_prod(registry)
    # when an approval run asks what to ask about
    asked = pending_request(registry, "prod")
    # then it is v2, replacing v1, with where it comes from
    assert asked is not None and asked.version == "2"
    assert "**models:/weather-prod/2** awaits approval" in asked.text
    assert "replaces: models:/weather-prod/1" in asked.text and "copied from: models:/weather-staging/2" in asked.text
    # and once v3 replaces v2 as challenger, a run pinned to v2 has nothing to ask
    waiting_in_prod(registry)
    assert pending_request(registry, "prod", "2") is None
    assert pending_request(registry, "prod", "3") is not None
