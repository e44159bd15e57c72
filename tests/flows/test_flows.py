"""The Prefect flows on a real Prefect test API (one per session) with a real MLflow sqlite store."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

import service.retrain
from flows.inference import batch_inference
from flows.monitor import monitor
from flows.promote import promote
from flows.retrain import retrain
from service.config_file import load_config
from service.errors import RegistryError
from service.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry
from tests.support import events_named


def registry_state(config_path: Path) -> dict[str, object]:
    registry = Registry(load_config(config_path))
    return {
        env: {
            "versions": [v.version for v in registry.versions(env)],
            **{
                alias: getattr(registry.at_alias(env, alias), "version", None)
                for alias in (CHAMPION, CHALLENGER, PREVIOUS)
            },
        }
        for env in registry.config.environments
    }


def monitoring_runs(config_path: Path) -> int:
    registry = Registry(load_config(config_path))
    return len(registry.client.search_runs([registry.experiment_id("monitoring")]))


def test_monitor_detects_drift_at_the_injected_batch_and_retrains_once_for_the_burst(
    prefect: str, world: Callable[..., Path]
) -> None:
    # given a stream of 6 batches drifting from batch 4, debounce "2 of the last 3", and no champion
    config_path = world(n_batches=6, drift_at=4)
    # when one monitoring pass runs
    summary = monitor(str(config_path))
    # then a first champion is trained on the reference
    assert summary.bootstrap is not None and summary.bootstrap.version == "1"
    # and drift is seen at batch 4 and not before; batch 5 confirms it and triggers the only retrain
    verdicts = {Path(v.batch_uri).name: v for v in summary.verdicts}
    assert [name for name, v in verdicts.items() if v.dataset_drift] == ["batch_004.csv", "batch_005.csv"]
    assert [name for name, v in verdicts.items() if v.retrain] == ["batch_005.csv"]
    assert len(summary.retrains) == 1
    # and batch 6, checked against the retrained champion's data, does not drift
    assert not verdicts["batch_006.csv"].dataset_drift
    # and the new version reached staging automatically while prod waits for approval
    assert registry_state(config_path) == {
        "dev": {"versions": ["1", "2"], CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"},
        "staging": {"versions": ["1", "2"], CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"},
        "prod": {"versions": ["1", "2"], CHAMPION: None, CHALLENGER: "2", PREVIOUS: None},
    }
    # and the version carries the drift report of the check that triggered it
    registry = Registry(load_config(config_path))
    v2 = registry.version("dev", "2")
    assert v2.tags["driftloop.drift_run_id"] == verdicts["batch_005.csv"].check_run_id
    report = registry.client.download_artifacts(v2.run_id, "drift/drift_report.html")
    assert Path(report).stat().st_size > 10_000


def test_a_second_pass_checks_no_batch_twice_and_trains_nothing(prefect: str, world: Callable[..., Path]) -> None:
    # given a pass over the whole stream
    config_path = world(n_batches=5, drift_at=4)
    monitor(str(config_path))
    state, runs = registry_state(config_path), monitoring_runs(config_path)
    # when the monitor runs again over the same batches (a schedule firing with nothing new)
    again = monitor(str(config_path))
    # then every batch is recognised as checked, and no run, version or alias is added
    assert again.bootstrap is None and again.retrains == []
    assert all(v.already_checked for v in again.verdicts)
    assert monitoring_runs(config_path) == runs == 5
    assert registry_state(config_path) == state


def test_monitor_publishes_the_drift_verdict_as_prefect_artifacts(prefect: str, world: Callable[..., Path]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    # given a monitor pass over a stream whose last batch drifts
    config_path = world(n_batches=2, drift_at=2)
    summary = monitor(str(config_path))
    # when the Prefect API is asked for the model's drift artifacts
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["drift-weather", "drift-weather-report"])),
        )
    # then the verdict names the drifted batch, and a link (rendered as markdown) points at its report
    verdicts = [str(a.data) for a in found if a.key == "drift-weather"]
    assert any("Drift detected" in text and "batch_002.csv" in text for text in verdicts)
    assert any("No drift" in text and "batch_001.csv" in text for text in verdicts)
    links = [str(a.data) for a in found if a.key == "drift-weather-report"]
    assert any(summary.verdicts[-1].report_uri in link for link in links)


def test_a_bad_batch_is_quarantined_with_its_cause_and_the_batches_after_it_are_checked(
    prefect: str, world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a monitored stream
    config_path = world(n_batches=3, drift_at=9)
    monitor(str(config_path))
    state = registry_state(config_path)
    stream = tmp_path / "data" / "stream"
    good = pd.read_csv(stream / "batch_003.csv")
    # when a batch arrives without its humidity column, and a good one after it
    good.drop(columns=["humidity"]).to_csv(stream / "batch_004.csv", index=False)
    good.sample(frac=1.0, random_state=1).to_csv(stream / "batch_005.csv", index=False)
    since = datetime.now(UTC)
    summary = monitor(str(config_path))
    # then the bad batch is quarantined with the file and column named, and the next one is checked
    verdicts = {Path(v.batch_uri).name: v for v in summary.verdicts}
    assert verdicts["batch_004.csv"].quarantined and not verdicts["batch_004.csv"].already_checked
    assert "'humidity' is missing" in verdicts["batch_004.csv"].reason
    assert not verdicts["batch_005.csv"].quarantined and not verdicts["batch_005.csv"].already_checked
    assert [Path(v.batch_uri).name for v in summary.quarantined] == ["batch_004.csv"]
    # and it was announced as a Prefect event naming the file and the cause
    [event] = events_named(prefect, "driftloop.batch.rejected", since)
    assert event["payload"]["details"]["batch"].endswith("batch_004.csv")
    assert "'humidity' is missing" in event["payload"]["details"]["cause"]
    # and nothing was registered or moved
    assert registry_state(config_path) == state
    # when the monitor runs again, the bad batch is skipped as quarantined, not read again
    again = {Path(v.batch_uri).name: v for v in monitor(str(config_path)).verdicts}
    assert again["batch_004.csv"].quarantined and again["batch_004.csv"].already_checked
    # and once its content is fixed, it is checked like any other batch
    good.sample(frac=1.0, random_state=2).to_csv(stream / "batch_004.csv", index=False)
    fixed = {Path(v.batch_uri).name: v for v in monitor(str(config_path)).verdicts}
    assert not fixed["batch_004.csv"].quarantined and not fixed["batch_004.csv"].already_checked


def test_promote_flow_approves_and_rolls_back(prefect: str, world: Callable[..., Path]) -> None:
    # given v1 approved for prod, and v2 waiting for approval after a drift retrain
    config_path = world(n_batches=5, drift_at=4)
    shutil.move(config_path.parent / "data" / "stream" / "batch_004.csv", config_path.parent / "held_004.csv")
    shutil.move(config_path.parent / "data" / "stream" / "batch_005.csv", config_path.parent / "held_005.csv")
    monitor(str(config_path))
    assert promote(str(config_path), "prod", "approve").action == "champion"
    shutil.move(config_path.parent / "held_004.csv", config_path.parent / "data" / "stream" / "batch_004.csv")
    shutil.move(config_path.parent / "held_005.csv", config_path.parent / "data" / "stream" / "batch_005.csv")
    monitor(str(config_path))
    assert registry_state(config_path)["prod"] == {
        "versions": ["1", "2"],
        CHAMPION: "1",
        CHALLENGER: "2",
        PREVIOUS: None,
    }
    # when v2 is approved and then rolled back
    approved = promote(str(config_path), "prod", "approve")
    after_approval = registry_state(config_path)["prod"]
    rolled = promote(str(config_path), "prod", "rollback")
    # then approval made v2 champion with v1 previous, and rollback put v1 back
    assert approved.action == "champion"
    assert after_approval == {"versions": ["1", "2"], CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"}
    assert rolled.action == "rolled_back"
    assert registry_state(config_path)["prod"][CHAMPION] == "1"


def test_batch_inference_scores_with_the_environment_champion(
    prefect: str, world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a champion in staging
    config_path = world(n_batches=1, drift_at=2)
    monitor(str(config_path))
    unlabeled = tmp_path / "to_score.csv"
    pd.read_csv(tmp_path / "data" / "stream" / "batch_001.csv").drop(columns=["weather"]).to_csv(unlabeled, index=False)
    # when a batch without labels is scored
    out = tmp_path / "scored" / "predictions.parquet"
    summary = batch_inference(str(config_path), "staging", str(unlabeled), str(out))
    # then every row has a prediction among the known classes
    scored = pd.read_parquet(out)
    assert summary.rows == len(scored) == 600
    assert set(scored["prediction"]) <= {"sunny", "cloudy", "rainy"}
    assert summary.model_uri == "models:/weather-staging/1"


def test_a_pass_reads_the_monitoring_history_once_however_many_batches_it_checks(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a champion and two checked batches, then two new batches arriving together
    config_path = world(n_batches=4, drift_at=99)
    stream = config_path.parent / "data" / "stream"
    held = config_path.parent / "held"
    held.mkdir()
    for name in ("batch_003.csv", "batch_004.csv"):
        shutil.move(stream / name, held / name)
    monitor(str(config_path))
    for name in ("batch_003.csv", "batch_004.csv"):
        shutil.move(held / name, stream / name)
    registry = Registry(load_config(config_path))
    monitoring = registry.experiment_id("monitoring")
    searches: list[list[str]] = []
    original = MlflowClient.search_runs

    def counting(self: MlflowClient, experiment_ids: list[str], *args: object, **kwargs: object) -> object:
        searches.append(list(experiment_ids))
        return original(self, experiment_ids, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "search_runs", counting)
    # when the next pass checks both
    summary = monitor(str(config_path))
    searched = searches.count([monitoring])
    # then both are checked and recorded, and the monitoring history was searched once (not once per
    # batch, per debounce, per record written and for the reports to draw)
    assert [Path(v.batch_uri).name for v in summary.verdicts if not v.already_checked] == [
        "batch_003.csv",
        "batch_004.csv",
    ]
    assert monitoring_runs(config_path) == 4
    assert searched == 1


def _flow_of(event: dict[str, Any]) -> str | None:
    """The name of the flow an event's run belongs to."""
    related = event.get("related") or []
    return next((r.get("prefect.resource.name") for r in related if r.get("prefect.resource.role") == "flow"), None)


def test_a_retrain_subflow_sends_no_heartbeat_of_its_own_beside_its_pass(
    prefect: str, world: Callable[..., Path]
) -> None:
    # given a pass that trains its champion and retrains on drift: two retrain subflows in its process
    since = datetime.now(UTC)
    config_path = world(n_batches=1, drift_at=1, config={"drift": {"debounce": {"window": 1, "min_drifted": 1}}})
    summary = monitor(str(config_path))
    assert summary.bootstrap is not None and len(summary.retrains) == 1
    # when the pass's end is stored with the Prefect API (events are stored in the order they were sent)
    assert events_named(prefect, "prefect.flow-run.Completed", since, lambda event: _flow_of(event) == "monitor")
    # then the pass's flow run sent a heartbeat, which says the process is alive, and no retrain run did
    beating = {_flow_of(event) for event in events_named(prefect, "prefect.flow-run.heartbeat", since)}
    assert beating == {"monitor"}


def test_a_retrain_loads_the_champion_beside_the_fit_and_a_failed_load_fails_it_with_its_own_error(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a first champion, and a window of drifted batches to retrain on
    config_path = world(n_batches=5, drift_at=4)
    assert retrain(str(config_path)) is not None
    stream = Path(load_config(config_path).resolve("data/stream"))
    window = [str(stream / "batch_004.csv"), str(stream / "batch_005.csv")]
    on_flow_thread: list[bool] = []
    loaded = service.retrain.load_champion

    def recorded(registry: Registry) -> object:
        on_flow_thread.append(threading.current_thread() is threading.main_thread())
        return loaded(registry)

    monkeypatch.setattr(service.retrain, "load_champion", recorded)
    # when a retrain runs
    summary = retrain(str(config_path), window=window)
    # then the champion it is judged against was loaded once, by the task runner's thread, not the one fitting
    assert summary is not None and summary.version == "2"
    assert on_flow_thread == [False]

    # when the champion cannot be loaded (the registry refuses)
    def refused(registry: Registry) -> object:
        raise RegistryError("MLflow at http://registry refused to read the champion")

    monkeypatch.setattr(service.retrain, "load_champion", refused)
    # then the retrain fails with that error, and registers nothing
    with pytest.raises(RegistryError, match="refused to read the champion"):
        retrain(str(config_path), window=window)
    assert registry_state(config_path)["dev"]["versions"] == ["1", "2"]
