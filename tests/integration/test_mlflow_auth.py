"""MLflow with the chart's basic auth, for real: a ``mlflow server --app-name basic-auth`` started by the
chart's start script on PostgreSQL (tests/mlflow_auth.py), its users made by the chart's hook script.

Who may do what: anonymous callers nothing but /health (the probes); the service user runs a real
driftloop pass (the ``driftloop`` CLI, as a flow-run Job runs it) that registers a version and sets its
alias; a reader reads the registry and is refused (403) when moving or deleting an alias.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.mlflow_auth import AuthMlflow, auth_mlflow_server

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")
MODEL = "weather-auth"
DEV = f"{MODEL}-dev"
ALIAS = "/api/2.0/mlflow/registered-models/alias"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMlflow]:
    with auth_mlflow_server(tmp_path_factory.mktemp("mlflow-auth")) as mlflow:
        hook = mlflow.users_hook()
        assert hook.returncode == 0, hook.stdout + hook.stderr
        yield mlflow


@pytest.fixture(scope="module")
def service_env(server: AuthMlflow, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ``driftloop`` CLI's environment as in a flow-run Job: MLflow's service user, the session's Prefect."""
    env = server.client_env(server.service)
    env.update({"PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home"))})
    return env


def driftloop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRIFTLOOP, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def registered(server: AuthMlflow, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One monitoring pass of a new model, as the service user: it trains v1 and makes it dev @champion."""
    from service.demo_data import make_stream, write_stream

    folder = tmp_path_factory.mktemp("world")
    write_stream(make_stream(n_batches=2, rows=300, reference_rows=900, drift_at=99), folder / "data")
    config = folder / "driftloop.yaml"
    document = {
        "model": {"name": MODEL, "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {"reference": "data/reference.csv", "current": "data/stream/*.csv"},
        "registry": {"tracking_uri": server.url},
    }
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    result = driftloop(service_env, "run", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return config


@pytest.fixture(scope="module")
def second_version(server: AuthMlflow, registered: Path) -> str:
    """A second dev version (no alias), made by the service user from v1's source: something to move to."""
    first = server.call(
        "GET", "/api/2.0/mlflow/model-versions/get", server.service, params={"name": DEV, "version": "1"}
    )
    assert first.status_code == 200, first.text
    v1 = first.json()["model_version"]
    created = server.call(
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        server.service,
        json={"name": DEV, "source": v1["source"], "run_id": v1["run_id"]},
    )
    assert created.status_code == 200, created.text
    return created.json()["model_version"]["version"]


def champion(server: AuthMlflow) -> str:
    response = server.call("GET", ALIAS, server.admin, params={"name": DEV, "alias": "champion"})
    assert response.status_code == 200, response.text
    return response.json()["model_version"]["version"]


def test_health_is_open_to_the_probes_and_every_api_call_needs_credentials(server: AuthMlflow) -> None:
    assert server.call("GET", "/health").status_code == 200
    search = "/api/2.0/mlflow/experiments/search"
    assert server.call("GET", search, params={"max_results": 1}).status_code == 401
    assert server.call("GET", search, ("driftloop", "wrong-password-123"), params={"max_results": 1}).status_code == 401
    assert server.call("GET", search, server.service, params={"max_results": 1}).status_code == 200


def test_a_driftloop_pass_as_the_service_user_registers_a_version_and_sets_its_alias(
    server: AuthMlflow, service_env: dict[str, str], registered: Path
) -> None:
    # given the pass that ran as the service user (fixture), when the registry is listed with the CLI
    result = driftloop(service_env, "models", "--config", str(registered), "--json")
    assert result.returncode == 0, result.stderr
    environments = {e["env"]: e for e in json.loads(result.stdout)["models"][0]["environments"]}
    # then v1 is dev @champion, and MLflow records the service user as the one who created the model
    assert environments["dev"]["aliases"]["champion"] == "1"
    model = server.call("GET", "/api/2.0/mlflow/registered-models/get", server.admin, params={"name": DEV})
    assert model.status_code == 200 and champion(server) == "1"
    grants = server.call(
        "GET", "/api/3.0/mlflow/users/permissions/list", server.admin, params={"username": server.service[0]}
    ).json()
    assert grants["is_admin"] is False


def test_an_anonymous_alias_move_or_delete_is_refused(server: AuthMlflow, second_version: str) -> None:
    moved = server.call("POST", ALIAS, json={"name": DEV, "alias": "champion", "version": second_version})
    deleted = server.call("DELETE", ALIAS, json={"name": DEV, "alias": "champion"})
    assert (moved.status_code, deleted.status_code) == (401, 401)
    assert champion(server) == "1"


def test_a_reader_reads_the_registry_but_cannot_move_or_delete_an_alias(
    server: AuthMlflow, second_version: str
) -> None:
    # a reader sees the model and where its alias points
    assert server.call("GET", "/api/2.0/mlflow/registered-models/get", server.reader, params={"name": DEV}).ok
    seen = server.call("GET", ALIAS, server.reader, params={"name": DEV, "alias": "champion"})
    assert seen.status_code == 200 and seen.json()["model_version"]["version"] == "1"
    # but moving or deleting it is forbidden, and the alias stays
    moved = server.call(
        "POST", ALIAS, server.reader, json={"name": DEV, "alias": "champion", "version": second_version}
    )
    deleted = server.call("DELETE", ALIAS, server.reader, json={"name": DEV, "alias": "champion"})
    assert (moved.status_code, deleted.status_code) == (403, 403)
    assert champion(server) == "1"


def test_the_service_user_moves_an_alias_but_cannot_manage_users(server: AuthMlflow, second_version: str) -> None:
    # the same move a reader is refused succeeds for the service user (promotion and rollback)
    moved = server.call("POST", ALIAS, server.service, json={"name": DEV, "alias": "staged", "version": second_version})
    assert moved.status_code == 200, moved.text
    assert server.call("DELETE", ALIAS, server.service, json={"name": DEV, "alias": "staged"}).status_code == 200
    # it is no admin: creating a user or granting itself rights is forbidden
    created = server.call(
        "POST", "/api/2.0/mlflow/users/create", server.service, json={"username": "mallory", "password": "x" * 16}
    )
    granted = server.call(
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        server.service,
        json={
            "username": server.reader[0],
            "resource_type": "registered_model",
            "resource_id": "*",
            "permission": "EDIT",
        },
    )
    assert (created.status_code, granted.status_code) == (403, 403)


def grants_of(server: AuthMlflow, username: str) -> list[dict[str, Any]]:
    response = server.call("GET", "/api/3.0/mlflow/users/permissions/list", server.admin, params={"username": username})
    assert response.status_code == 200, response.text
    return sorted(response.json()["permissions"], key=lambda row: (row["resource_type"], row["resource_pattern"]))


def test_the_users_hook_run_again_keeps_the_grants_and_restores_the_secrets_passwords(server: AuthMlflow) -> None:
    before = grants_of(server, server.service[0])
    # given someone changed the reader's password in MLflow, away from the one in its Secret
    changed = server.call(
        "PATCH",
        "/api/2.0/mlflow/users/update-password",
        server.admin,
        json={"username": server.reader[0], "password": "changed-in-the-ui-123"},
    )
    assert changed.status_code == 200, changed.text
    assert server.call("GET", "/api/2.0/mlflow/users/current", server.reader).status_code == 401
    # when the hook runs again (an upgrade)
    hook = server.users_hook()
    # then it succeeds, the Secret's password works again and the service user's grants are the same two
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert server.call("GET", "/api/2.0/mlflow/users/current", server.reader).status_code == 200
    after = grants_of(server, server.service[0])
    assert after == before
    # (besides MANAGE on what it created, which MLflow gives every creator)
    assert {(g["resource_type"], g["permission"]) for g in after if g["resource_pattern"] == "*"} == {
        ("experiment", "EDIT"),
        ("registered_model", "MANAGE"),
    }
    assert grants_of(server, server.reader[0]) == []


def test_the_users_hook_refuses_a_reader_password_mlflow_would_reject(server: AuthMlflow) -> None:
    hook = server.users_hook(reader_password="short")
    assert hook.returncode == 1
    assert "auth.mlflow.readers" in hook.stderr and "'alice'" in hook.stderr and "12 characters" in hook.stderr


def test_the_auth_ini_written_at_start_reads_back_the_database_url_and_only_its_owner_reads_it(
    server: AuthMlflow,
) -> None:
    import configparser

    ini = server.root / "tmp" / "mlflow-auth" / "basic_auth.ini"
    assert oct(ini.stat().st_mode & 0o777) == "0o600"
    # the URL-encoded password (%40, %25) reads back as written through configparser's interpolation
    parser = configparser.ConfigParser()
    parser.read(ini)
    assert parser["mlflow"]["database_uri"] == server.database_url
    assert parser["mlflow"]["default_permission"] == "READ"
