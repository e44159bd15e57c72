"""What an operator sees in the UIs: MLflow's registry pages show driftloop's versions, aliases per
environment and lineage tags; the Prefect UI shows a monitor run's drift verdict artifact.

The models are made by the real flows (run in this process against the stack's servers): a monitor pass
over a stream drifting at batch 4 trains v1 on the reference, confirms the drift at batch 5 and retrains
v2, which goes dev → staging and waits for approval in prod. Screenshots are saved under the test's
tmp_path and copied to /tmp/driftloop-screenshots/ (``DRIFTLOOP_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from browser.conftest import SCREENSHOTS
from service.stack.servers import Stack

pytestmark = pytest.mark.slow
MODEL = "weather-ui"


@pytest.fixture(scope="module")
def loop(ui_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import os

    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from service.demo_data import make_stream, write_stream

    folder = tmp_path_factory.mktemp("ui-world")
    write_stream(make_stream(n_batches=5, rows=400, reference_rows=1200, drift_at=4), folder / "data")
    config = folder / "driftloop.yaml"
    document = {
        "model": {"name": MODEL, "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {"reference": "data/reference.csv", "current": "data/stream/*.csv"},
        "evaluation": {"min_gain": 0.01},
        "promotion": {"staging": "auto", "prod": "approval"},
        "registry": {"tracking_uri": ui_stack.mlflow_url},
    }
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        with temporary_settings({PREFECT_API_URL: ui_stack.prefect_url, PREFECT_HOME: folder / "prefect-home"}):
            from flows.monitor import monitor

            summary = monitor(str(config))
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    assert summary.bootstrap is not None and len(summary.retrains) == 1
    from mlflow import MlflowClient

    # the monitor run that recorded the drift check (MLflow keeps the Prefect flow run id with it)
    check = MlflowClient(ui_stack.mlflow_url).get_run(summary.verdicts[-1].check_run_id)
    yield {"config": config, "flow_run_id": check.data.tags["driftloop.flow_run_id"], "summary": summary}


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)


def test_mlflow_ui_shows_versions_aliases_per_environment_and_lineage_tags(
    ui_stack: Stack, loop: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # the dev model's page lists both versions, v2 as @champion and v1 as @previous
        page.goto(f"{ui_stack.mlflow_url}/#/models/{MODEL}-dev", wait_until="domcontentloaded")
        page.get_by_text("Version 2").first.wait_for(timeout=90_000)
        shoot(page, tmp_path, "mlflow-model-dev")
        text = page.inner_text("body")
        assert "Version 1" in text and "Version 2" in text
        assert "@ champion" in text.replace("@champion", "@ champion") or "champion" in text
        assert "previous" in text
        # prod: v2 waits as @challenger
        page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{ui_stack.mlflow_url}/#/models/{MODEL}-prod", wait_until="domcontentloaded")
        page.get_by_text("challenger").first.wait_for(timeout=90_000)
        shoot(page, tmp_path, "mlflow-model-prod")
        # v2's page shows its lineage tags
        page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{ui_stack.mlflow_url}/#/models/{MODEL}-dev/versions/2", wait_until="domcontentloaded")
        page.get_by_text("driftloop.git_sha").first.wait_for(timeout=90_000)
        shoot(page, tmp_path, "mlflow-version-dev-2")
        text = page.inner_text("body")
        for tag in ("driftloop.git_sha", "driftloop.train_hash", "driftloop.drift_run_id", "driftloop.flow_run_id"):
            assert tag in text, f"{tag} not shown on the version page"
        assert "champion" in text
    finally:
        page.close()


def test_prefect_ui_shows_the_drift_verdict_artifact_of_a_monitor_run(
    ui_stack: Stack, loop: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    # given the drift verdicts the monitor run published, as the Prefect API lists them
    request = urllib.request.Request(
        f"{ui_stack.prefect_url}/artifacts/filter",
        data=json.dumps({"artifacts": {"key": {"any_": [f"drift-{MODEL}"]}}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        artifacts = json.loads(response.read())
    drifted = [a for a in artifacts if a["flow_run_id"] == loop["flow_run_id"] and "Drift detected" in a["data"]]
    assert drifted, "the monitor run published no drift verdict"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # when the verdict's page is opened in the Prefect UI
        page.goto(f"{ui_stack.prefect_ui_url}/artifacts/artifact/{drifted[0]['id']}", wait_until="domcontentloaded")
        page.get_by_text("Drift detected").first.wait_for(timeout=90_000)
        shoot(page, tmp_path, "prefect-drift-artifact")
        # then it renders the verdict of a drifted batch of this run, with its per-column table
        text = page.inner_text("body")
        assert re.search(r"Drift detected in\s+\S*batch_00[45]\.csv", text), text[:500]
        assert "Wasserstein distance (normed)" in text and "Jensen-Shannon distance" in text
    finally:
        page.close()
