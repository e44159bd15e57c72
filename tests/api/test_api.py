"""The driftloop API over a real MLflow store: reads, bearer-token steering, metrics, flow runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import TOKEN, Hooks, aliases
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.support import events_named

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_models_list_versions_and_aliases_per_environment(api: TestClient) -> None:
    listing = api.get("/models").json()
    [model] = listing["models"]
    environments = {e["env"]: e for e in model["environments"]}
    assert model["name"] == "weather"
    assert environments["dev"]["aliases"] == {"champion": "1"}
    assert environments["prod"]["aliases"] == {"challenger": "1"}
    assert environments["prod"]["versions"][0]["status"] == "awaiting_approval"


def test_a_version_shows_its_metrics_and_lineage(api: TestClient) -> None:
    detail = api.get("/models/weather/environments/dev/versions/1").json()
    assert detail["name"] == "weather-dev" and detail["aliases"] == ["champion"]
    assert 0.5 < detail["metrics"]["holdout.challenger.f1_macro"] <= 1.0
    assert detail["lineage"]["training_data"][0].endswith("data/reference.csv")
    assert detail["tags"]["driftloop.git_sha"]
    assert api.get("/models/weather/environments/dev/versions/7").status_code == 404


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}], ids=["missing", "wrong", "not bearer"]
)
def test_a_change_without_the_right_token_is_401_and_changes_nothing(api: TestClient, headers: dict) -> None:
    before = aliases(api, "prod")
    response = api.post("/models/weather/approve", json={"env": "prod"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert aliases(api, "prod") == before


def test_approve_then_rollback_with_the_token(api: TestClient) -> None:
    approved = api.post("/models/weather/approve", json={"env": "prod"}, headers=AUTH)
    assert approved.status_code == 200 and approved.json()["action"] == "champion"
    assert aliases(api, "prod") == {"champion": "1"}
    # nothing to roll back to: v1 is the only prod champion ever
    conflict = api.post("/models/weather/rollback", json={"env": "prod"}, headers=AUTH)
    assert conflict.status_code == 409 and "no @previous" in conflict.json()["detail"]
    assert api.post("/models/weather/promote", json={"to": "qa"}, headers=AUTH).status_code == 422
    assert api.post("/models/rain/approve", json={"env": "prod"}, headers=AUTH).status_code == 404


def test_reject_with_a_note_keeps_prod_without_a_champion_and_a_second_reject_is_409(api: TestClient) -> None:
    rejected = api.post("/models/weather/reject", json={"env": "prod", "note": "not yet"}, headers=AUTH)
    assert rejected.status_code == 200 and rejected.json()["action"] == "rejected"
    assert aliases(api, "prod") == {}
    version = api.get("/models/weather/environments/prod/versions/1").json()
    assert (version["status"], version["tags"]["driftloop.rejected_reason"]) == ("rejected", "not yet")
    assert version["tags"]["driftloop.decided_via"] == "api"
    conflict = api.post("/models/weather/reject", json={"env": "prod"}, headers=AUTH)
    assert conflict.status_code == 409 and "no version awaits approval" in conflict.json()["detail"]
    assert api.post("/models/weather/reject", json={"env": "prod"}).status_code == 401


def test_a_version_shows_its_aliases_and_status_as_they_are_now(api: TestClient) -> None:
    waiting = api.get("/models/weather/environments/prod/versions/1").json()
    api.post("/models/weather/approve", json={"env": "prod"}, headers=AUTH)
    approved = api.get("/models/weather/environments/prod/versions/1").json()
    assert (waiting["aliases"], waiting["status"]) == (["challenger"], "awaiting_approval")
    assert (approved["aliases"], approved["status"]) == (["champion"], "champion")


def test_steering_through_the_api_is_announced_by_webhook_and_prefect_event(
    trained: Path, prefect_api: str, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an API with a webhook, and a Prefect API to record events
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    api = TestClient(create_app(Settings(models_dir=trained.parent, api_token=TOKEN, webhook_url=hooks.url)))
    since = datetime.now(UTC)
    # when the version waiting in prod is approved
    response = api.post("/models/weather/approve", json={"env": "prod"}, headers=AUTH)
    # then the answer says both were told, and the receiver and Prefect got the same news
    assert response.status_code == 200, response.text
    notified = [(n["channel"], n["error"]) for n in response.json()["notifications"]]
    assert notified == [("prefect_event", None), ("webhook", None)]
    [(headers, body)] = hooks.received
    assert headers["X-Driftloop-Event"] == body["event"] == "driftloop.version.promoted"
    assert (body["model"], body["env"], body["version"]) == ("weather", "prod", "1")
    [event] = events_named(prefect_api, "driftloop.version.promoted", since)
    assert event["resource"]["prefect.resource.id"] == "driftloop.model.weather"
    assert event["payload"] == body


def test_a_webhook_that_fails_does_not_fail_or_undo_the_approval(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no Prefect API and a webhook nobody listens on
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = Settings(models_dir=trained.parent, api_token=TOKEN, webhook_url="http://127.0.0.1:9/hook")
    api = TestClient(create_app(settings))
    # when prod's waiting version is approved
    response = api.post("/models/weather/approve", json={"env": "prod"}, headers=AUTH)
    # then it is champion, and the answer reports the webhook that was not delivered (and no event)
    assert response.status_code == 200 and aliases(api, "prod") == {"champion": "1"}
    [webhook] = response.json()["notifications"]
    assert webhook["channel"] == "webhook" and "unreachable" in webhook["error"]


def test_reads_can_be_put_behind_the_token(trained: Path) -> None:
    api = TestClient(create_app(Settings(models_dir=trained.parent, api_token=TOKEN, api_protect_reads=True)))
    assert api.get("/models").status_code == 401
    assert api.get("/models", headers=AUTH).status_code == 200
    assert api.get("/healthz").status_code == 200  # probes stay open for the kubelet


def test_metrics_count_what_the_registry_holds(api: TestClient) -> None:
    text = api.get("/metrics").text
    assert 'driftloop_trainings_total{model="weather"} 1.0' in text
    assert 'driftloop_promotions_total{env="staging",model="weather"} 1.0' in text
    assert 'driftloop_rejections_total{model="weather"} 0.0' in text
    assert 'driftloop_drift_checks_total{model="weather"} 0.0' in text


def test_probes(api: TestClient, tmp_path: Path) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    broken = TestClient(create_app(Settings(models_dir=tmp_path / "none", tracking_uri="http://127.0.0.1:9/")))
    assert broken.get("/readyz").status_code == 503


def test_check_starts_a_flow_run_of_the_monitor_deployment(
    api: TestClient, prefect: str, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("PREFECT_API_URL", prefect)
    # given a monitor deployment registered in the Prefect API
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("monitor")
        client.create_deployment(flow_id=flow_id, name="monitor", entrypoint="flows/monitor.py:monitor")
    # when a check is requested through the API
    response = api.post("/models/weather/check", headers=AUTH)
    # then a flow run of monitor/monitor exists with the model's config as parameter
    assert response.status_code == 202, response.text
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(response.json()["flow_run_id"])
    assert run.parameters == {"config_path": str(trained)}


def test_check_answers_503_when_prefect_is_unreachable(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    response = api.post("/models/weather/retrain", headers=AUTH)
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]


def test_the_fleet_is_read_again_when_a_model_file_is_added_and_a_bad_file_is_listed_not_fatal(
    api: TestClient, trained: Path
) -> None:
    # given a running API over a models folder with one model
    assert api.get("/models").json()["configured"] == ["weather"]
    assert api.post("/models/rain/promote", json={"to": "staging"}, headers=AUTH).status_code == 404
    # when a model file is added, and a file with a typo
    document = yaml.safe_load(trained.read_text())
    document["model"]["name"] = "rain"
    (trained.parent / "rain.yaml").write_text(yaml.safe_dump(document))
    (trained.parent / "typo.yaml").write_text("model: {name: typo, task: classification}\n")
    # then the API serves the new model with no restart, and names the bad file and its key
    listing = api.get("/models").json()
    assert listing["configured"] == ["rain", "weather"]
    [(path, error)] = listing["config_errors"].items()
    assert path.endswith("typo.yaml") and "model.target: required key is missing" in error
    refused = api.post("/models/rain/promote", json={"to": "staging"}, headers=AUTH)
    assert refused.status_code == 409 and "rain-dev has no @champion" in refused.json()["detail"]
