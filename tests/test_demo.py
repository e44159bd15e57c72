"""`driftloop demo` end to end, as a new user runs it: embedded Prefect, local MLflow store, demo data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")


def driftloop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRIFTLOOP, *args], env=env, capture_output=True, text=True, timeout=900)


def prod_aliases(env: dict[str, str], config: Path) -> dict[str, str]:
    listing = json.loads(driftloop(env, "models", "weather", "--config", str(config), "--json").stdout)
    return next(e["aliases"] for e in listing["models"][0]["environments"] if e["env"] == "prod")


@pytest.mark.slow
def test_demo_detects_the_injected_drift_retrains_once_and_prod_waits_for_approval(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # given a fresh machine's view: no Prefect server configured, so Prefect runs embedded
    embedded = {key: value for key, value in cli_env.items() if key not in ("PREFECT_API_URL", "PREFECT_HOME")}
    workdir = tmp_path / "demo"
    # when the demo runs with its defaults (8 batches, drift injected from batch 5)
    result = driftloop(embedded, "demo", "--workdir", str(workdir))
    # then it succeeds and shows progress and the summary
    assert result.returncode == 0, result.stderr[-3000:]
    assert "batch 5 arrives" in result.stdout and "summary" in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{workdir}/mlflow.db" in result.stdout
    summary = json.loads((workdir / "summary.json").read_text())
    # and drift is detected at batch 5 and not before, and confirmed by batch 6 into exactly one retrain
    verdicts = {item["batch"]: item for item in summary["batches"]}
    assert [name for name, item in verdicts.items() if item["drift"]] == ["batch_005.csv", "batch_006.csv"]
    assert [name for name, item in verdicts.items() if item["retrain"]] == ["batch_006.csv"]
    assert len(summary["retrains"]) == 2  # the first champion, then the one retrain
    # and the retrained v2 is champion in dev and staging, and waits for approval in prod
    environments = summary["environments"]
    assert environments["dev"]["aliases"] == {"champion": "2", "previous": "1"}
    assert environments["staging"]["aliases"] == {"champion": "2", "previous": "1"}
    assert environments["prod"]["aliases"] == {"champion": "1", "challenger": "2"}
    # and every batch's drift report is an HTML file kept with its MLflow run under the workdir
    for item in summary["batches"]:
        report = Path(item["report"])
        assert report.is_file() and str(report).startswith(str(workdir)), report
        assert report.read_text()[:200].lower().lstrip().startswith("<!doctype html")
    # and Prefect's state stayed in the workdir too
    assert (workdir / "prefect").is_dir()
    config = workdir / "driftloop.yaml"
    # and the listing shows v2's score beside v1's on v2's own holdout (as its gate compared them), never
    # beside v1's score on v1's older holdout
    listing = driftloop(cli_env, "models", "weather", "--config", str(config))
    dev = json.loads(driftloop(cli_env, "models", "weather", "--config", str(config), "--json").stdout)
    v1_tags, v2_tags = (v["tags"] for v in dev["models"][0]["environments"][0]["versions"])
    v1_line, v2_line = [line for line in listing.stdout.splitlines() if line.strip().startswith(("v1 ", "v2 "))][:2]
    assert "no champion to compare" in v1_line
    holdout = v2_tags["holdout_hash"][:8]
    assert f"vs v1 {float(v2_tags['champion_score']):.3f} on holdout {holdout}" in v2_line
    assert v2_tags["holdout_hash"] != v1_tags["holdout_hash"]

    # when the operator approves prod, then rolls it back
    approved = driftloop(cli_env, "approve", "weather", "--env", "prod", "--config", str(config))
    assert approved.returncode == 0, approved.stderr
    after_approval = prod_aliases(cli_env, config)
    rolled = driftloop(cli_env, "rollback", "weather", "--env", "prod", "--config", str(config))
    assert rolled.returncode == 0, rolled.stderr
    # then approval made v2 the prod champion, and rollback restored v1
    assert after_approval == {"champion": "2", "previous": "1"}
    assert prod_aliases(cli_env, config)["champion"] == "1"


def test_demo_refuses_a_folder_it_did_not_make_and_leaves_it_alone(cli_env: dict[str, str], tmp_path: Path) -> None:
    # given a folder of the user's own
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    # when the demo is pointed at it
    result = driftloop(cli_env, "demo", "--workdir", str(mine))
    # then it refuses, and the folder is untouched
    assert result.returncode == 2
    assert "is not a driftloop demo folder" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]
