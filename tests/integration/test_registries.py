"""Promotion across separate MLflow registries, for real: two `mlflow server`s on 127.0.0.1.

dev (and staging) live on a plain server; prod on a second one with MLflow's basic auth (the chart's
start script, tests/mlflow_auth.py), reached with credentials of its own (``PROD_MLFLOW_TRACKING_*``)
while the process's MLFLOW_TRACKING_* stay unset: a request that fell back to MLflow's process-wide
credentials would be refused. Nothing is mocked; the fault proxy (tests/integration/faults.py) stands
between driftloop and prod where a test stops prod in the middle of a promotion.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config_file import load_config
from service.crossing import COPY_SOURCE
from service.errors import RegistryError, RegistryUnavailable
from service.promote import approve, promote_through
from service.registry import CHALLENGER, CHAMPION, PREVIOUS, TAG, Registry
from service.settings import Settings
from service.stack.processes import Service, base_env, executable, free_port
from tests.integration.faults import Fault, FaultProxy
from tests.mlflow_auth import AuthMlflow, auth_mlflow_server
from tests.service.test_registry_and_promotion import drifted_window, train

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")
QUICK_FAILURE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("mlflow-dev")
    port = free_port()
    argv = [
        executable("mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
        "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    server = Service("mlflow-dev", argv, base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), root,
                     f"http://127.0.0.1:{port}/health")  # fmt: skip
    server.start(timeout=240)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMlflow]:
    with auth_mlflow_server(tmp_path_factory.mktemp("mlflow-prod")) as mlflow:
        hook = mlflow.users_hook()
        assert hook.returncode == 0, hook.stdout + hook.stderr
        yield mlflow


def url_of(service: Service) -> str:
    return service.health_url.removesuffix("/health")


@pytest.fixture
def two_registries(
    world: Callable[..., Path], dev_server: Service, prod_server: AuthMlflow, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """A model whose dev and staging live on the dev server and prod on the prod server (its own credentials)."""
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PROD_MLFLOW_TRACKING_USERNAME", prod_server.service[0])
    monkeypatch.setenv("PROD_MLFLOW_TRACKING_PASSWORD", prod_server.service[1])

    def build(name: str, prod_uri: str | None = None, evaluation: dict[str, Any] | None = None, **options: Any) -> Path:
        registry = {
            "tracking_uri": url_of(dev_server),
            "environments": {"prod": {"tracking_uri": prod_uri or prod_server.url, "credentials_env": "PROD_MLFLOW"}},
        }
        config = {"model": {"name": name}, "registry": registry, "promotion": {"prod": "approval"}}
        if evaluation:
            config["evaluation"] = evaluation
        return world(config=config, **options)

    return build


def prod_versions(prod: AuthMlflow, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``-prod on the prod server, read over its REST API as its admin."""
    found = prod.call(
        "GET", "/api/2.0/mlflow/model-versions/search", prod.admin, params={"filter": f"name='{name}-prod'"}
    )
    assert found.status_code == 200, found.text
    return found.json().get("model_versions", [])


def prod_aliases(prod: AuthMlflow, name: str) -> dict[str, str]:
    found = prod.call("GET", "/api/2.0/mlflow/registered-models/get", prod.admin, params={"name": f"{name}-prod"})
    if found.status_code == 404:
        return {}
    assert found.status_code == 200, found.text
    return {a["alias"]: a["version"] for a in found.json()["registered_model"].get("aliases", [])}


def tags_of(version: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in version.get("tags", [])}


def cli_environment(cli_env: dict[str, str], prod: AuthMlflow) -> dict[str, str]:
    return {
        **cli_env,
        "PROD_MLFLOW_TRACKING_USERNAME": prod.service[0],
        "PROD_MLFLOW_TRACKING_PASSWORD": prod.service[1],
    }


def driftloop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRIFTLOOP, *args], env=env, capture_output=True, text=True, timeout=900)


def test_loop_copies_into_prod_registry_and_prod_serves_approves_and_rolls_back_without_dev(
    two_registries: Callable[..., Path], dev_server: Service, prod_server: AuthMlflow, cli_env: dict[str, str]
) -> None:
    # given a model whose prod has its own registry and data that drifts at batch 4, when the loop runs
    # (the CLI, as a user runs it): a first champion, then a retrain on the drift
    config_path = two_registries("cross", n_batches=5, drift_at=4, evaluation={"mode": "dry_run"})
    env = cli_environment(cli_env, prod_server)
    ran = driftloop(env, "run", "--config", str(config_path))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # then the prod server holds the retrained version as @challenger, marked complete, recording its dev source
    dev = Registry(load_config(config_path))
    source = dev.at_alias("staging", CHAMPION)
    assert source is not None and dev.lineage(source).get("drift_run_id"), "the loop did not retrain on the drift"
    copies = prod_versions(prod_server, "cross")
    assert len({tags_of(c)[f"{TAG}{COPY_SOURCE}"] for c in copies}) == len(copies) == 2  # one copy per source
    copy = next(c for c in copies if tags_of(c)[f"{TAG}source.run_id"] == source.run_id)
    tags = tags_of(copy)
    assert prod_aliases(prod_server, "cross") == {CHALLENGER: copy["version"]}
    assert tags[f"{TAG}copy.complete"] == "true"
    assert tags[f"{TAG}source.registry"] == url_of(dev_server)
    assert (tags[f"{TAG}source.model"], tags[f"{TAG}source.version"]) == ("cross-staging", source.version)
    assert tags[f"{TAG}source.run_id"] == source.run_id and copy["run_id"] != source.run_id
    # and it carries the source's lineage, metrics, data hashes and gate decision (not where it stood in staging)
    local = {f"{TAG}{key}" for key in ("status", "approved", "promoted_at", "copied_from")}
    carried = {key: value for key, value in source.tags.items() if key.startswith(TAG) and key not in local}
    assert {f"{TAG}train_hash", f"{TAG}holdout_hash", f"{TAG}gate"} <= set(carried)
    assert {key: tags.get(key) for key in carried} == carried
    # and its run's artifacts download from prod: the model with signature and input example, lineage, contract
    registry = Registry(load_config(config_path))
    challenger = registry.at_alias("prod", CHALLENGER)
    assert challenger is not None and challenger.env == "prod"
    assert registry.lineage(challenger) == dev.lineage(source)
    assert registry.run_dict(challenger.run_id, "contract.json", "prod") == dev.run_dict(source.run_id, "contract.json")
    mlmodel = registry.run_text(challenger.run_id, "model/MLmodel", "prod")
    assert "signature:" in mlmodel and "saved_input_example_info" in mlmodel
    report = "drift/drift_report.html"
    assert registry.run_text(challenger.run_id, report, "prod") == dev.run_text(source.run_id, report)
    listing = json.loads(driftloop(env, "models", "cross", "--config", str(config_path), "--json").stdout)
    prod_view = next(e for e in listing["models"][0]["environments"] if e["env"] == "prod")
    assert prod_view["aliases"] == {CHALLENGER: copy["version"]}
    # and so does the API: prod's aliases, and the copy's metrics and lineage, read from prod
    api = TestClient(create_app(Settings(models_dir=config_path.parent)))
    model = api.get("/models/cross")
    assert model.status_code == 200, model.text
    prod_env = next(e for e in model.json()["environments"] if e["env"] == "prod")
    assert prod_env["aliases"] == {CHALLENGER: copy["version"]}
    detail = api.get(f"/models/cross/environments/prod/versions/{copy['version']}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["aliases"] == [CHALLENGER] and detail.json()["lineage"] == dev.lineage(source)
    assert detail.json()["metrics"] and detail.json()["drift_report"]
    # when it is approved, a third version goes through and is approved, with dev stopped from then on
    approved = driftloop(env, "approve", "cross", "--env", "prod", "--config", str(config_path))
    assert approved.returncode == 0, approved.stdout + approved.stderr
    train(registry, drifted_window(registry), estimator="sklearn.ensemble.RandomForestClassifier")
    promote_through(registry)
    approve(registry, "prod")
    assert prod_aliases(prod_server, "cross") == {CHAMPION: "3", PREVIOUS: "2"}
    dev_server.stop()
    try:
        batch = config_path.parent / "data" / "stream" / "batch_001.csv"
        output = config_path.parent / "scored.csv"
        # then prod's champion scores a batch read from the prod server alone
        scored = driftloop(env, "predict", "--env", "prod", "--input", str(batch), "--output", str(output),
                           "--config", str(config_path))  # fmt: skip
        assert scored.returncode == 0, scored.stdout + scored.stderr
        assert "cross-prod/3" in scored.stdout and len(pd.read_csv(output)) == len(pd.read_csv(batch))
        # and a rollback in prod needs no dev either
        rolled = driftloop(env, "rollback", "cross", "--env", "prod", "--config", str(config_path))
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert prod_aliases(prod_server, "cross") == {CHAMPION: "2"}
    finally:
        dev_server.start(timeout=240)


def aliased_copies_are_whole(prod: AuthMlflow, name: str) -> None:
    """Every version that carries an alias in prod is a complete copy whose model downloads."""
    versions = {v["version"]: v for v in prod_versions(prod, name)}
    for alias, number in prod_aliases(prod, name).items():
        assert tags_of(versions[number]).get(f"{TAG}copy.complete") == "true", f"@{alias} on a half copy"


@pytest.mark.parametrize(
    "fault",
    [
        Fault(path="mlflow-artifacts/artifacts/", method="PUT", after=2, action="drop"),
        Fault(path="model-versions/set-tag", body=("copy.complete",), action="drop"),
    ],
    ids=["during-artifact-upload", "before-the-copy-is-marked-complete"],
)
def test_prod_server_stopping_mid_promotion_leaves_no_alias_on_a_half_copy_and_a_rerun_makes_one_copy(
    two_registries: Callable[..., Path], prod_server: AuthMlflow, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in QUICK_FAILURE.items():
        monkeypatch.setenv(key, value)
    name = f"halfway-{fault.path.split('/')[0]}"
    with FaultProxy(prod_server.url) as proxy:
        registry = Registry(load_config(two_registries(name, prod_uri=proxy.url, n_batches=2, drift_at=99)))
        train(registry)
        # given prod's server that stops answering in the middle of the copy
        with proxy.armed(fault), pytest.raises(RegistryUnavailable, match=proxy.url):
            promote_through(registry)
        assert fault.failed, "the fault never struck: the test did not stop prod mid-copy"
        # then no alias points to what was half copied
        assert prod_aliases(prod_server, name) == {}
        # when the promotion runs again with prod back
        outcomes = promote_through(registry)
    # then exactly one copy exists, complete, @challenger, and its model downloads
    assert [o.action for o in outcomes] == ["unchanged", "awaiting_approval"]
    copies = prod_versions(prod_server, name)
    assert len(copies) == 1
    assert prod_aliases(prod_server, name) == {CHALLENGER: copies[0]["version"]}
    aliased_copies_are_whole(prod_server, name)
    direct = Registry(load_config(two_registries(name, n_batches=2, drift_at=99)))
    challenger = direct.at_alias("prod", CHALLENGER)
    assert challenger is not None and direct.load_version(challenger) is not None
    # and promoting the same source again makes no second copy
    promote_through(direct)
    key = tags_of(copies[0])[f"{TAG}{COPY_SOURCE}"]
    assert len(direct.versions_with_tag("prod", COPY_SOURCE, key)) == 1
    assert len(prod_versions(prod_server, name)) == 1


def test_wrong_prod_credential_fails_naming_the_server_and_environment(
    two_registries: Callable[..., Path], prod_server: AuthMlflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(load_config(two_registries("wrongcred", n_batches=2, drift_at=99)))
    train(registry)
    # given prod's credentials with a wrong password
    monkeypatch.setenv("PROD_MLFLOW_TRACKING_PASSWORD", "not-the-password")
    registry = Registry(registry.config)
    # when promoting into prod, then it fails naming prod's server, the environment and its credentials
    with pytest.raises(RegistryError) as failure:
        promote_through(registry)
    message = str(failure.value)
    assert prod_server.url in message and "environment 'prod'" in message and "PROD_MLFLOW_TRACKING_*" in message
    assert "401" in message or "Unauthorized" in message
    # and nothing reached prod
    assert prod_versions(prod_server, "wrongcred") == []
