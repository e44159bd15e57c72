"""The `registry.environments` section: which environment lives in which registry, with which credentials,
and the clear errors for what cannot work (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config_file import load_config
from service.errors import ConfigError
from service.registry import Registry

BASE = {
    "model": {"name": "weather", "task": "classification", "target": "weather"},
    "data": {"reference": "ref.csv", "current": "in/*.csv"},
}


def write(tmp_path: Path, registry: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "driftloop.yaml"
    path.write_text(yaml.safe_dump({**BASE, "registry": registry, **extra}))
    return path


def test_an_environment_with_its_own_registry_reads_it_and_the_others_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow-dev:5000")
    own = {"prod": {"tracking_uri": "http://mlflow-prod:5000/", "credentials_env": "PROD_MLFLOW"}}
    config = load_config(write(tmp_path, {"tracking_uri": "http://ignored:5000", "environments": own}))
    # MLFLOW_TRACKING_URI replaces the default only
    assert config.tracking_uri() == config.tracking_uri("staging") == "http://mlflow-dev:5000"
    assert config.tracking_uri("prod") == "http://mlflow-prod:5000"


@pytest.mark.parametrize(
    ("registry", "named"),
    [
        ({"environments": {"dev": {"tracking_uri": "http://x:5000"}}}, "registry.environments.dev"),
        ({"environments": {"qa": {"tracking_uri": "http://x:5000"}}}, "['qa']"),
        (
            {"environments": {"prod": {"tracking_uri": "sqlite:///prod.db"}}},
            "registry.environments.prod.tracking_uri",
        ),
        ({"environments": {"prod": {"tracking_uri": "http://x", "credentials": "P"}}}, "credentials: unknown key"),
        ({"environments": {"prod": {"tracking_uri": "http://x", "credentials_env": "PROD-1"}}}, "credentials_env"),
    ],
    ids=["first-environment", "unknown-environment", "not-a-server", "unknown-key", "bad-prefix"],
)
def test_a_registry_entry_that_cannot_work_is_a_config_error_naming_it(
    tmp_path: Path, registry: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, registry))
    assert named in str(error.value)


def test_credentials_named_but_unset_fail_naming_the_key_and_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for suffix in ("USERNAME", "PASSWORD", "TOKEN"):
        monkeypatch.delenv(f"PROD_MLFLOW_TRACKING_{suffix}", raising=False)
    own = {"prod": {"tracking_uri": "http://mlflow-prod:5000", "credentials_env": "PROD_MLFLOW"}}
    registry = Registry(load_config(write(tmp_path, {"environments": own})))
    with pytest.raises(ConfigError) as error:
        registry.store("prod")
    message = str(error.value)
    assert "registry.environments.prod.credentials_env" in message and "PROD_MLFLOW_TRACKING_TOKEN" in message


def test_each_environment_store_sends_only_its_own_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dev-user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "dev-password")
    monkeypatch.setenv("PROD_MLFLOW_TRACKING_TOKEN", "prod-token")
    own = {"prod": {"tracking_uri": "http://mlflow-prod:5000", "credentials_env": "PROD_MLFLOW"}}
    registry = Registry(load_config(write(tmp_path, {"tracking_uri": "http://mlflow-dev:5000", "environments": own})))
    prod = registry.store("prod").client._tracking_client.store.get_host_creds()
    assert (prod.host, prod.username, prod.password, prod.token) == (
        "http://mlflow-prod:5000",
        None,
        None,
        "prod-token",
    )
    repo = registry.store("prod").artifacts("mlflow-artifacts:/1/abc/artifacts")
    assert repo.artifact_uri.startswith("http://mlflow-prod:5000/api/2.0/mlflow-artifacts/artifacts/1/abc")
    assert (repo._host_creds.token, repo._host_creds.username) == ("prod-token", None)
    assert registry.store("staging") is registry.default
    dev = registry.default.client._tracking_client.store.get_host_creds()
    assert (dev.username, dev.token) == ("dev-user", None)
