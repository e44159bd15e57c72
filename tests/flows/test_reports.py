"""Drift reports are drawn after the verdicts: at the end of a pass, or later by whoever draws next
(the sweep), and a report that cannot be drawn never holds a model back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.monitor import monitor
from flows.retrain import retrain
from service import records, registration, reports
from service.config_file import load_config
from service.monitor import REPORT_PENDING, work_to_do
from service.records import REPORT_PATH
from service.registry import CHAMPION, TAG, Registry


def report_states(registry: Registry) -> dict[str, tuple[str | None, str | None]]:
    """Batch file name → (report state, reason) of its drift check."""
    runs = registry.client.search_runs(
        [registry.experiment_id("monitoring")], f"tags.`{TAG}kind` = 'drift_check' and attributes.status = 'FINISHED'"
    )
    return {
        Path(run.data.tags[f"{TAG}batch_uri"]).name: (
            run.data.tags.get(f"{TAG}report"),
            run.data.tags.get(f"{TAG}report_reason") or None,
        )
        for run in runs
    }


def test_a_pass_left_to_the_sweep_records_its_verdicts_and_the_next_drawer_draws_each_report(
    prefect: str, world: Callable[..., Path]
) -> None:
    # given a champion and two batches, the second drifted
    config_path = world(n_batches=2, drift_at=2)
    registry = Registry(load_config(config_path))
    # when a pass started by the sweep checks them (it leaves the reports to the sweep)
    summary = monitor(str(config_path), draw_reports=False)
    # then both verdicts are recorded, their reports pending, and the model has work for the sweep only
    assert [verdict.dataset_drift for verdict in summary.verdicts] == [False, True]
    assert report_states(registry) == {"batch_001.csv": ("pending", None), "batch_002.csv": ("pending", None)}
    assert work_to_do(registry) == REPORT_PENDING
    # when the pending reports are drawn
    assert reports.draw_pending(registry) == 2
    # then each check carries Evidently's report, and nothing is left to do
    assert report_states(registry) == {"batch_001.csv": ("drawn", None), "batch_002.csv": ("drawn", None)}
    html = Path(registry.client.download_artifacts(summary.verdicts[1].check_run_id, REPORT_PATH)).read_text()
    drifted = summary.verdicts[1].drifted_columns
    assert html.lstrip().startswith("<!DOCTYPE html>") and drifted and all(column in html for column in drifted)
    assert work_to_do(registry) is None
    assert reports.draw_pending(registry) == 0


def test_a_report_whose_batch_changed_since_its_check_is_marked_unavailable_not_redrawn_forever(
    prefect: str, world: Callable[..., Path]
) -> None:
    # given a checked batch whose report is pending, and the batch rewritten since
    config_path = world(n_batches=1, drift_at=2)
    registry = Registry(load_config(config_path))
    monitor(str(config_path), draw_reports=False)
    batch = config_path.parent / "data" / "stream" / "batch_001.csv"
    rows = batch.read_text()
    batch.write_text(rows + rows.splitlines()[-1] + "\n")  # one row more: other content, still valid
    # when the reports are drawn
    reports.draw_pending(registry)
    # then its report is unavailable, the reason naming the file, and it is not pending any more
    state, reason = report_states(registry)["batch_001.csv"]
    assert state == "unavailable" and "batch_001.csv changed since it was checked" in reason
    assert reports.draw_pending(registry) == 0


def test_a_report_evidently_cannot_draw_leaves_the_pass_complete_with_the_reason_recorded(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Evidently failing on whatever it is given
    def refusing(*args: object, **kwargs: object) -> str:
        raise TypeError("evidently cannot draw this")

    monkeypatch.setattr(reports, "sampled_report", refusing)
    config_path = world(n_batches=2, drift_at=2)
    # when a pass checks the batches and draws their reports
    summary = monitor(str(config_path))
    # then the pass completes with its verdicts, and each report says why it is missing
    assert [verdict.dataset_drift for verdict in summary.verdicts] == [False, True]
    states = report_states(Registry(load_config(config_path)))
    assert set(states.values()) == {("unavailable", "TypeError: evidently cannot draw this")}


def test_a_retrain_does_not_wait_for_its_checks_report_and_its_training_run_gets_a_copy_drawn_once(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given one drifted batch, a debounce of one, and every report Evidently draws counted, with which
    # version was the dev champion when it was drawn
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    registry = Registry(load_config(config_path))
    drawn: list[tuple[int, str | None]] = []

    def counted(reference: object, current: object, *args: object, **kwargs: object) -> str:
        champion = registry.at_alias("dev", CHAMPION)
        drawn.append((len(current), champion.version if champion else None))  # type: ignore[arg-type]
        return original(reference, current, *args, **kwargs)  # type: ignore[arg-type]

    original = reports.sampled_report
    monkeypatch.setattr(reports, "sampled_report", counted)
    # when a pass trains the champion, checks the batch, retrains on its drift and draws its reports
    summary = monitor(str(config_path))
    # then the report was drawn once, after the retrain had made v2 the champion: it waited for no report
    assert [verdict.retrain for verdict in summary.verdicts] == [True] and len(summary.retrains) == 1
    assert drawn == [(600, "2")]
    assert report_states(registry) == {"batch_001.csv": ("drawn", None)}
    # and v2's training run holds a copy of the check's report, marked drawn
    v2 = registry.version("dev", "2")
    check_run_id = summary.verdicts[0].check_run_id
    assert registry.run_text(v2.run_id, REPORT_PATH) == registry.run_text(check_run_id, REPORT_PATH)
    assert registry.client.get_run(v2.run_id).data.tags[f"{TAG}report"] == "drawn"
    assert reports.copy_to_trainings(registry) == 0


def test_a_retrain_registered_after_its_checks_report_was_drawn_keeps_that_report_at_once(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a pass that handed its retrain to the retrain deployment (the cluster's way) and drew its report
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    registry = Registry(load_config(config_path))
    summary = monitor(str(config_path), retrain_via="event")
    assert summary.retrain_requested and report_states(registry) == {"batch_001.csv": ("drawn", None)}
    # when the retrain runs, with Evidently unable to draw anything
    monkeypatch.setattr(reports, "sampled_report", lambda *args, **kwargs: pytest.fail("a report was drawn again"))
    outcome = retrain(str(config_path), drift_run_id=summary.retrain_requested)
    # then its training run was logged with the check's report and needs nothing more
    assert outcome is not None and outcome.version == "2"
    run_id = registry.version("dev", "2").run_id
    assert registry.run_text(run_id, REPORT_PATH) == registry.run_text(summary.retrain_requested, REPORT_PATH)
    assert registry.client.get_run(run_id).data.tags[f"{TAG}report"] == "drawn"
    assert reports.copy_to_trainings(registry) == 0


def test_a_training_run_logged_while_its_checks_report_was_being_drawn_still_gets_a_copy(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a drift check whose report is drawn, and a retrain that read it as still pending (the drawing
    # finished, and looked for waiting training runs, between that read and the run's logging)
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    registry = Registry(load_config(config_path))
    summary = monitor(str(config_path), retrain_via="event")
    assert report_states(registry) == {"batch_001.csv": ("drawn", None)}
    monkeypatch.setattr(registration, "check_report", lambda *args: (records.REPORT_PENDING, None))
    # when the retrain logs its training run
    outcome = retrain(str(config_path), drift_run_id=summary.retrain_requested)
    # then the run got its copy at once, not at some later drawing
    assert outcome is not None
    run_id = registry.version("dev", outcome.version).run_id
    assert registry.run_text(run_id, REPORT_PATH) == registry.run_text(summary.retrain_requested, REPORT_PATH)
    assert registry.client.get_run(run_id).data.tags[f"{TAG}report"] == "drawn"


def test_a_version_whose_report_waits_for_the_sweep_links_none_until_the_drawing_copies_it(
    prefect: str, world: Callable[..., Path]
) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    # given a pass started by the sweep (reports left to it) that retrained on a drifted batch
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    registry = Registry(load_config(config_path))
    summary = monitor(str(config_path), draw_reports=False)
    assert len(summary.retrains) == 1 and summary.retrains[0].version == "2"
    api = TestClient(create_app(Settings(models_dir=config_path.parent)))
    # then v2's training run waits for its copy, and the API links no report meanwhile
    v2 = registry.version("dev", "2")
    assert registry.client.get_run(v2.run_id).data.tags[f"{TAG}report"] == "pending"
    assert api.get("/models/weather/environments/dev/versions/2").json()["drift_report"] is None
    # when the sweep draws the pending reports
    reports.draw_pending(registry)
    # then the copy is there, and the API links it
    link = api.get("/models/weather/environments/dev/versions/2").json()["drift_report"]
    assert link and link.endswith(REPORT_PATH)
    assert registry.run_text(v2.run_id, REPORT_PATH) == registry.run_text(summary.verdicts[0].check_run_id, REPORT_PATH)


def test_a_registry_of_another_environment_that_is_down_leaves_its_copies_waiting_and_fails_nothing(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import yaml

    from service.records import RecordRun

    # given a retrain whose training run waits for its check's report, and that report drawn since
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    registry = Registry(load_config(config_path))
    summary = monitor(str(config_path), draw_reports=False)
    check = registry.client.get_run(summary.verdicts[0].check_run_id)
    assert reports.draw(registry, RecordRun.of(check)) == "drawn"
    # and the model's prod moved to a registry of its own that does not answer
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    document = yaml.safe_load(config_path.read_text())
    document["registry"] = {"environments": {"prod": {"tracking_uri": "http://127.0.0.1:9"}}}
    moved = config_path.with_name("moved.yaml")
    moved.write_text(yaml.safe_dump(document))
    # when the waiting training runs are given their copies
    copied = reports.copy_to_trainings(Registry(load_config(moved)))
    # then the default registry's run got its copy, and prod's outage was logged, not raised
    assert copied == 1
    v2 = registry.version("dev", "2")
    assert registry.client.get_run(v2.run_id).data.tags[f"{TAG}report"] == "drawn"
    assert any("127.0.0.1:9" in record.getMessage() for record in caplog.records), caplog.text
