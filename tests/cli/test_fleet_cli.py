"""`driftloop run --models DIR`: a fleet of models from one folder, through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")


def run_fleet(env: dict[str, str], models: Path) -> tuple[int, dict[str, dict[str, object]], str]:
    result = subprocess.run(
        [DRIFTLOOP, "run", "--models", str(models), "--json"], env=env, capture_output=True, text=True, timeout=900
    )
    rows = {row["model"]: row for row in json.loads(result.stdout)["models"]}
    return result.returncode, rows, result.stderr


def test_a_fleet_runs_every_model_and_names_the_bad_one(
    cli_env: dict[str, str], world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a models folder: a classifier, a regressor on the same stream, and a file with a typo
    weather = world(n_batches=4, drift_at=3)
    models = tmp_path / "models"
    models.mkdir()
    document = yaml.safe_load(weather.read_text())
    document["data"] = {
        "reference": str(tmp_path / "data/reference.csv"),
        "current": str(tmp_path / "data/stream/*.csv"),
    }
    (models / "a-weather.yaml").write_text(yaml.safe_dump(document))
    regression = {
        **document,
        "model": {"name": "humidity", "task": "regression", "target": "humidity", "ignore": ["date"]},
    }
    regression["evaluation"] = {"min_gain": 0.0}
    (models / "b-humidity.yml").write_text(yaml.safe_dump(regression))
    (models / "c-broken.yaml").write_text(yaml.safe_dump({**document, "drift": {"thresold": 0.1}}))
    # when one pass runs over the folder
    code, rows, stderr = run_fleet(cli_env, models)
    # then both good models were checked and trained, and the bad file is named with its key
    assert code == 2, stderr
    assert rows["weather"]["exit_code"] == 0 and rows["weather"]["checked"] == 4 and rows["weather"]["retrained"] >= 1
    assert rows["humidity"]["exit_code"] == 0 and rows["humidity"]["checked"] == 4
    assert rows["c-broken"]["exit_code"] == 2
    assert "c-broken.yaml" in rows["c-broken"]["error"] and "drift.thresold: unknown key" in rows["c-broken"]["error"]
    # and each good model has its champion in the shared store
    from service.config_file import load_config
    from service.registry import CHAMPION, Registry

    for file in ("a-weather.yaml", "b-humidity.yml"):
        assert Registry(load_config(models / file)).at_alias("staging", CHAMPION) is not None
    # when the bad file is removed and a new model file is added between two passes
    (models / "c-broken.yaml").unlink()
    (models / "d-pressure.yaml").write_text(
        yaml.safe_dump({**regression, "model": {**regression["model"], "name": "pressure", "target": "pressure"}})
    )
    code, rows, stderr = run_fleet(cli_env, models)
    # then the next pass picks it up, and the others have nothing new
    assert code == 0, stderr
    assert set(rows) == {"weather", "humidity", "pressure"}
    assert rows["pressure"]["checked"] == 4 and rows["weather"]["checked"] == 0
