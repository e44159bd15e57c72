"""MLflow's UI behind the chart's basic auth, in headless Chromium: a reader from ``auth.mlflow.readers``
signs in with the browser's own basic-auth prompt (Playwright's ``http_credentials``) and browses the
registry; an anonymous visitor is refused; the reader's browser session cannot move an alias.

The server is the chart's (tests/mlflow_auth.py: its start script and ini on PostgreSQL, users made by
its hook script); the model is registered by the service user over MLflow's REST API. Screenshots go
to /tmp/driftloop-screenshots/ (``DRIFTLOOP_SCREENSHOTS``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import SCREENSHOTS
from tests.mlflow_auth import AuthMlflow, auth_mlflow_server

pytestmark = pytest.mark.slow
MODEL = "weather-auth-ui-dev"
ALIAS = "/ajax-api/2.0/mlflow/registered-models/alias"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMlflow]:
    with auth_mlflow_server(tmp_path_factory.mktemp("mlflow-auth-ui")) as mlflow:
        hook = mlflow.users_hook()
        assert hook.returncode == 0, hook.stdout + hook.stderr
        yield mlflow


@pytest.fixture(scope="module")
def model(server: AuthMlflow) -> str:
    """Version 1 of MODEL as @champion, registered by the service user as a flow run does."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = server.call("POST", f"/api/2.0/mlflow/{path}", server.service, json=body)
        assert response.status_code == 200, f"{path}: {response.text}"
        return response.json()

    experiment = post("experiments/create", {"name": "driftloop/weather-auth-ui/training"})["experiment_id"]
    run = post("runs/create", {"experiment_id": experiment})["run"]["info"]
    post("registered-models/create", {"name": MODEL})
    source = f"{run['artifact_uri']}/model"
    version = post("model-versions/create", {"name": MODEL, "source": source, "run_id": run["run_id"]})
    post(
        "registered-models/alias", {"name": MODEL, "alias": "champion", "version": version["model_version"]["version"]}
    )
    return MODEL


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)


def signed_in(browser: Any, server: AuthMlflow) -> Any:
    username, password = server.reader
    return browser.new_context(
        viewport={"width": 1400, "height": 1000}, http_credentials={"username": username, "password": password}
    )


def test_a_reader_signs_in_and_browses_the_registry(
    server: AuthMlflow, model: str, browser: Any, tmp_path: Path
) -> None:
    context = signed_in(browser, server)
    page = context.new_page()
    try:
        # when the reader opens the model's page, answering the browser's sign-in prompt
        page.goto(f"{server.url}/#/models/{model}", wait_until="domcontentloaded")
        page.get_by_text("Version 1").first.wait_for(timeout=90_000)
        shoot(page, tmp_path, "mlflow-auth-reader-model")
        # then MLflow shows the version and where @champion points
        text = page.inner_text("body")
        assert "Version 1" in text and "champion" in text
    finally:
        context.close()


def test_an_anonymous_visitor_is_refused_by_the_ui(server: AuthMlflow, browser: Any) -> None:
    from playwright.sync_api import Error

    context = browser.new_context()
    try:
        # the server answers 401 with a basic-auth challenge: the browser's sign-in prompt
        answer = context.request.get(f"{server.url}/", max_redirects=0)
        assert answer.status == 401
        assert answer.headers["www-authenticate"].lower().startswith("basic")
        # a browser with no credentials to give gets no page at all
        page = context.new_page()
        with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{server.url}/#/models/{MODEL}", wait_until="domcontentloaded")
    finally:
        context.close()


def test_the_readers_browser_session_cannot_move_or_delete_an_alias(
    server: AuthMlflow, model: str, browser: Any
) -> None:
    context = signed_in(browser, server)
    try:
        # the reader's session reads the alias, the same call the UI makes...
        seen = context.request.get(f"{server.url}{ALIAS}", params={"name": model, "alias": "champion"})
        assert seen.status == 200 and seen.json()["model_version"]["version"] == "1"
        # ...but is refused when moving it or deleting it
        moved = context.request.post(
            f"{server.url}{ALIAS}", data={"name": model, "alias": "prod-champion", "version": "1"}
        )
        deleted = context.request.delete(f"{server.url}{ALIAS}", data={"name": model, "alias": "champion"})
        assert (moved.status, deleted.status) == (403, 403)
    finally:
        context.close()
    still = server.call(
        "GET", "/api/2.0/mlflow/registered-models/alias", server.admin, params={"name": model, "alias": "champion"}
    )
    assert still.json()["model_version"]["version"] == "1"
