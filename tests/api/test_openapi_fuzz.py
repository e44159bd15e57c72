"""Schemathesis against our OpenAPI spec, over a real MLflow store and a real Prefect test API:
whatever it sends, with or without the token, the API never answers with a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from conftest import TOKEN
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.settings import Settings


@pytest.fixture
def api_schema(trained: Path, prefect: str, monkeypatch: pytest.MonkeyPatch) -> schemathesis.BaseSchema:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("PREFECT_API_URL", prefect)
    with get_client(sync_client=True) as client:
        for name in ("monitor", "retrain"):
            client.create_deployment(
                flow_id=client.create_flow_from_name(name), name=name, entrypoint=f"flows/{name}.py:{name}"
            )
    app = create_app(Settings(models_dir=trained.parent, api_token=TOKEN))
    assert TestClient(app).get("/openapi.json").status_code == 200
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case: schemathesis.Case) -> None:
    # each generated request is sent twice: as a stranger, then with the token
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text)
