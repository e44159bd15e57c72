"""The steps an external orchestrator calls (`check`, `retrain --no-promote`, `promote --auto`), through the
installed console script and without Prefect, against a real MLflow sqlite store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def step(*args: str, expect: int = 0) -> dict[str, Any]:
    """Run ``driftloop ARGS --json`` with no Prefect API in reach; return its JSON answer."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_", "DRIFTLOOP"))}
    env.update(TELEMETRY_OFF)
    result = subprocess.run([DRIFTLOOP, *args, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == expect, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(result.stdout) if result.stdout.strip() else {"stderr": result.stderr}


def aliases(config: Path) -> dict[str, dict[str, str]]:
    from mlflow import MlflowClient

    from service.config_file import load_config

    loaded = load_config(config)
    client = MlflowClient(loaded.tracking_uri())
    found = {}
    for env in loaded.environments:
        try:
            registered = client.get_registered_model(loaded.registered_name(env))
            found[env] = {alias: str(version) for alias, version in registered.aliases.items()}
        except Exception:
            found[env] = {}
    return found


def test_check_retrain_and_promote_answer_each_request_once(world: Callable[..., Path]) -> None:
    # given a model with no champion yet, over a stream that drifts from batch 4 on
    config = world(n_batches=5, drift_at=4, config={"promotion": {"prod": "approval"}})
    c = ("--config", str(config))
    # when it is checked: a retrain is requested, for no drift check (the first champion)
    first = step("check", "weather", *c)
    assert (first["retrain_requested"], first["drift_run"]) == (True, None) and first["verdicts"] == []
    # when the first champion is trained, then promoted
    trained = step("retrain", "weather", *c, "--no-promote")
    assert (trained["version"], trained["settled"]) == ("1", False)
    assert aliases(config)["staging"] == {}  # nothing promoted by a retrain told not to
    promoted = step("promote", "weather", *c, "--auto")
    assert [(o["env"], o["action"]) for o in promoted["outcomes"]] == [
        ("staging", "champion"),
        ("prod", "awaiting_approval"),
    ]
    # when the new batches are checked: the drift confirmed at batch 5 asks for a retrain
    checked = step("check", "weather", *c)
    drift_run = checked["drift_run"]
    assert checked["retrain_requested"] is True and drift_run
    assert [v["batch_uri"].rsplit("/", 1)[-1] for v in checked["verdicts"]][-1] == "batch_005.csv"
    # when that retrain runs twice (a retried task): one version
    again = [step("retrain", "weather", *c, "--drift-run", drift_run, "--no-promote") for _ in range(2)]
    assert [answer["version"] for answer in again] == ["2", "2"]
    # then until the promotion is done, a check asks for the same drift check again, and checks nothing
    waiting = step("check", "weather", *c)
    assert (waiting["retrain_requested"], waiting["drift_run"], waiting["verdicts"]) == (True, drift_run, [])
    # when the promotion runs twice: it promotes once; prod waits for approval
    moved = step("promote", "weather", *c, "--auto", "--drift-run", drift_run)
    assert [(o["env"], o["version"], o["action"]) for o in moved["outcomes"]] == [
        ("staging", "2", "champion"),
        ("prod", "2", "awaiting_approval"),
    ]
    assert step("promote", "weather", *c, "--auto", "--drift-run", drift_run)["outcomes"] == []
    assert aliases(config) == {
        "dev": {"champion": "2", "previous": "1"},
        "staging": {"champion": "2", "previous": "1"},
        "prod": {"challenger": "2"},
    }
    # and the request is answered: the next check asks for nothing
    assert step("check", "weather", *c)["retrain_requested"] is False


def test_check_quarantines_a_bad_batch_exits_2_and_still_answers(world: Callable[..., Path], tmp_path: Path) -> None:
    # given a model with its first champion, and a new batch that lacks a column
    config = world(n_batches=2, drift_at=9)
    c = ("--config", str(config))
    step("retrain", "weather", *c)
    stream = tmp_path / "data" / "stream"
    batch = (stream / "batch_002.csv").read_text().splitlines()
    (stream / "batch_003.csv").write_text("\n".join(",".join(line.split(",")[:-1]) for line in batch) + "\n")
    # when it is checked
    answer = step("check", "weather", *c, expect=2)
    # then the bad batch is named, the good ones were checked, and no retrain is asked for
    assert answer["quarantined"] == [str(stream / "batch_003.csv")]
    assert [v["quarantined"] for v in answer["verdicts"]] == [False, False, True]
    assert answer["retrain_requested"] is False


def test_a_model_not_in_the_models_folder_is_bad_input_naming_the_folder_and_its_bad_files(tmp_path: Path) -> None:
    # given a models folder whose one model file does not load
    models = tmp_path / "models"
    models.mkdir()
    (models / "weather.yaml").write_text(yaml.safe_dump({"model": {"name": "weather", "target": "weather"}}))
    # when another model is checked from it
    result = step("check", "humidity", "--models", str(models), expect=2)
    # then the error names the folder and the model, and the file that did not load
    assert f"{models}: no model file configures model 'humidity'" in result["stderr"]
    assert f"{models / 'weather.yaml'} is not a valid driftloop config" in result["stderr"]
