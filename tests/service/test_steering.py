"""Steering by hand (promote, approve, roll back) on a real MLflow sqlite store: the move, its announcement
to a real webhook receiver and the session's real Prefect API, and the statuses the registry listing
derives from where the aliases point afterwards.

Versions enter dev straight from bare MLflow runs: moving aliases needs no trained model, and every
move after that goes through ``service.steering``, the path the API, the CLI and the promote flow share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.catalog import list_models
from service.config_file import load_config
from service.registry import CHAMPION, Registry
from service.settings import Settings
from service.steering import steer
from tests.support import Hooks, enter_dev, events_named, webhook_receiver


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    with webhook_receiver() as server:
        yield server


def hook_url(server: Hooks) -> str:
    return server.url


@pytest.fixture
def registry(world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return Registry(load_config(world(n_batches=1, drift_at=2)))


def test_an_approval_is_announced_by_a_signed_webhook_and_a_prefect_event(
    registry: Registry, hooks: Hooks, prefect_api: str
) -> None:
    # given a version awaiting approval in prod, a webhook receiver and a Prefect API
    enter_dev(registry)
    steer(registry, "staging", "promote")
    steer(registry, "prod", "promote")
    since = datetime.now(UTC)
    settings = Settings(webhook_url=hook_url(hooks), webhook_secret="shh")
    # when it is approved
    steered = steer(registry, "prod", "approve", settings, prefect_api=prefect_api)
    # then the alias moved, and both the receiver and Prefect heard of it, with the same body
    assert steered.outcome.action == "champion" and registry.at_alias("prod", CHAMPION).version == "1"
    assert steered.failures == []
    [(headers, body)] = hooks.received
    assert headers["X-Driftloop-Event"] == "driftloop.version.promoted" and headers["X-Driftloop-Signature"]
    assert (body["model"], body["env"], body["version"]) == ("weather", "prod", "1")
    [event] = events_named(prefect_api, "driftloop.version.promoted", since)
    assert event["resource"] == {
        "prefect.resource.id": "driftloop.model.weather",
        "driftloop.model": "weather",
        "driftloop.env": "prod",
        "driftloop.version": "1",
    }
    assert event["payload"] == body


def test_a_failed_announcement_neither_undoes_nor_fails_the_move(registry: Registry, hooks: Hooks) -> None:
    # given a webhook that answers 500 and a Prefect API that is down
    enter_dev(registry)
    steer(registry, "staging", "promote")
    hooks.status = 500
    settings = Settings(webhook_url=hook_url(hooks))
    # when staging is rolled forward to a new version
    enter_dev(registry)
    steered = steer(registry, "staging", "promote", settings, prefect_api="http://127.0.0.1:9/api")
    # then the move stands, and what was not delivered is reported
    assert steered.outcome.action == "champion" and registry.at_alias("staging", CHAMPION).version == "2"
    assert [(d.channel, bool(d.error)) for d in steered.deliveries] == [("prefect_event", True), ("webhook", True)]
    assert "answered 500" in steered.failures[1] and "unreachable" in steered.failures[0]


def test_without_a_prefect_api_no_event_is_sent_and_the_version_tags_are_the_record(
    registry: Registry, hooks: Hooks
) -> None:
    # given no PREFECT_API_URL (the fixture unsets it) and a webhook
    enter_dev(registry)
    # when staging receives the dev champion
    steered = steer(registry, "staging", "promote", Settings(webhook_url=hook_url(hooks)))
    # then only the webhook was sent, and the version's tags say what happened
    assert [d.channel for d in steered.deliveries] == ["webhook"]
    assert registry.version("staging", "1").tags["driftloop.status"] == "champion"


def test_a_version_status_follows_where_the_aliases_point(registry: Registry) -> None:
    # given four versions steered along dev → staging → prod: approved, replaced, rolled back, superseded
    for _ in range(2):
        enter_dev(registry)
        steer(registry, "staging", "promote")
        steer(registry, "prod", "promote")
        steer(registry, "prod", "approve")
    enter_dev(registry)
    steer(registry, "staging", "promote")
    steer(registry, "prod", "promote")  # v3 awaits approval in prod ...
    steer(registry, "staging", "rollback")  # ... and is rolled back in staging
    enter_dev(registry)
    steer(registry, "staging", "promote")
    steer(registry, "prod", "promote")  # v4 takes @challenger in prod from v3
    # when the registry is listed
    [model] = list_models(registry.tracking_uri)
    listed = {env.env: {v["version"]: (v["status"], v["aliases"]) for v in env.versions} for env in model.environments}
    # then each version's aliases and status say where it stands now
    assert listed["staging"] == {
        "1": ("retired", []),
        "2": ("previous", ["previous"]),
        "3": ("rolled_back", []),
        "4": ("champion", ["champion"]),
    }
    assert listed["prod"] == {
        "1": ("previous", ["previous"]),
        "2": ("champion", ["champion"]),
        "3": ("retired", []),
        "4": ("awaiting_approval", ["challenger"]),
    }
