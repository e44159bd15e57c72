"""`airflow dags test` of the local (bash) DAG on the demo data, against a real MLflow sqlite store, and
`driftloop run` (the Prefect path) on the same batches in a store of its own: both end the same."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import airflow_bin

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")
ENVIRONMENTS = ("dev", "staging", "prod")
# The DAG's first run trains the first champion, its second checks batches 1-6 and retrains on the
# drift confirmed at batch 6, its third checks 7-8 against the new champion and asks for nothing.
RUNS = ("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00")


def registry_state(models: Path) -> dict[str, tuple[int, dict[str, str]]]:
    """Per environment: how many versions, and where each alias points."""
    from mlflow import MlflowClient

    from service.config_file import load_config

    config = load_config(models / "weather.yaml")
    client = MlflowClient(config.tracking_uri())
    state = {}
    for env in ENVIRONMENTS:
        name = config.registered_name(env)
        versions = client.search_model_versions(f"name = '{name}'")
        aliases = client.get_registered_model(name).aliases
        state[env] = (len(versions), {alias: str(version) for alias, version in aliases.items()})
    return state


def task_states(env: dict[str, str], run_id: str) -> dict[str, str]:
    result = subprocess.run(
        [airflow_bin(), "tasks", "states-for-dag-run", "driftloop_weather", run_id, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {row["task_id"]: row["state"] for row in json.loads(result.stdout)}


def dag_run_ids(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [airflow_bin(), "dags", "list-runs", "driftloop_weather", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(json.loads(result.stdout), key=lambda run: run["logical_date"])
    assert all(run["state"] == "success" for run in runs), runs
    return [run["run_id"] for run in runs]


def test_the_local_dag_ends_where_the_prefect_path_ends(
    airflow_env: Callable[..., dict[str, str]], demo_models: Callable[[str], Path], cli_env: dict[str, str]
) -> None:
    # given the demo's weather stream twice, each with its own MLflow store
    airflow_models, prefect_models = demo_models("airflow"), demo_models("prefect")
    env = airflow_env(airflow_models, DRIFTLOOP_AIRFLOW_RUNNER="local", DRIFTLOOP_BIN=DRIFTLOOP)
    migrated = subprocess.run([airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    # when Airflow runs the model's DAG three times, locally (bash tasks calling the driftloop CLI)
    for logical_date in RUNS:
        result = subprocess.run(
            [airflow_bin(), "dags", "test", "driftloop_weather", logical_date],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # then every run succeeded: the first two retrained and promoted, the third had nothing to do
    first, second, third = (task_states(env, run_id) for run_id in dag_run_ids(env))
    for states in (first, second):
        assert (states["retrain"], states["promote"], states["nothing_to_do"]) == ("success", "success", "skipped")
    assert (third["retrain"], third["nothing_to_do"]) == ("skipped", "success")
    # when the Prefect path makes one pass over the same batches
    ran = subprocess.run(
        [DRIFTLOOP, "run", "--config", str(prefect_models / "weather.yaml"), "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    # then both registries hold as many versions per environment, with the same aliases
    airflow_state = registry_state(airflow_models)
    assert airflow_state == registry_state(prefect_models)
    assert airflow_state["dev"] == (2, {"champion": "2", "previous": "1"})
    assert airflow_state["prod"][1] == {"challenger": "2"}  # prod waits for `driftloop approve`
