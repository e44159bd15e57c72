"""Left alone, the loop never makes a wrong decision: failures of MLflow, retried steps and edited
configs, on a real Prefect test API and real MLflow stores (sqlite, and a closed port for an outage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.monitor import monitor
from service import train
from service.config_file import load_config
from service.errors import RegistryUnavailable
from service.records import MONITORING
from service.reference import current_reference
from service.registry import CHAMPION, Registry


def finished_checks(config_path: Path) -> list[str]:
    """The batch URI of every finished drift-check run, one entry per run."""
    registry = Registry(load_config(config_path))
    runs = registry.client.search_runs(
        [registry.experiment_id(MONITORING)], "tags.`driftloop.kind` = 'drift_check' and attributes.status = 'FINISHED'"
    )
    return sorted(run.data.tags["driftloop.batch_uri"] for run in runs)


def test_an_unreachable_registry_is_an_outage_not_a_missing_champion(
    world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a model whose tracking server does not answer (a closed port on this machine)
    config_path = world(config={"registry": {"tracking_uri": "http://127.0.0.1:9"}})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry = Registry(load_config(config_path))
    # when the champion is looked up, then the answer is "could not ask", naming the server, never None
    with pytest.raises(RegistryUnavailable, match=r"127\.0\.0\.1:9"):
        registry.at_alias("dev", CHAMPION)
    with pytest.raises(RegistryUnavailable):
        current_reference(registry)


def test_a_monitor_pass_against_a_registry_outage_trains_nothing(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a tracking server that is down, and a trainer that records whether it was called
    config_path = world(config={"registry": {"tracking_uri": "http://127.0.0.1:9"}})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    fitted = []
    monkeypatch.setattr(train, "build_pipeline", lambda *args: fitted.append(args))
    # when the monitor runs, then it fails naming the server, and no model was trained
    with pytest.raises(RegistryUnavailable, match=r"127\.0\.0\.1:9"):
        monitor(str(config_path))
    assert fitted == []


def test_a_retried_check_recording_counts_the_batch_once(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    # given a champion, and an upload of the check's result that fails once with a server error
    config_path = world(n_batches=2, drift_at=2)
    stream = config_path.parent / "data" / "stream"
    held = config_path.parent / "held.csv"
    (stream / "batch_002.csv").rename(held)
    monitor(str(config_path))
    held.rename(stream / "batch_002.csv")
    real_log_dict = MlflowClient.log_dict
    failures = []

    def flaky_log_dict(self: MlflowClient, run_id: str, dictionary: object, artifact_file: str) -> None:
        if artifact_file == "drift/result.json" and not failures:
            failures.append(run_id)
            raise MlflowException("upstream connect error", error_code=TEMPORARILY_UNAVAILABLE)
        real_log_dict(self, run_id, dictionary, artifact_file)

    monkeypatch.setattr(MlflowClient, "log_dict", flaky_log_dict)
    # when the pass checks the drifted batch (the recording task is retried)
    summary = monitor(str(config_path))
    # then the upload failed once, and the batch has exactly one finished check: the run the failed
    # attempt opened, completed by the retry
    assert len(failures) == 1
    uris = finished_checks(config_path)
    assert [Path(uri).name for uri in uris] == ["batch_001.csv", "batch_002.csv"]
    assert summary.verdicts[-1].check_run_id == failures[0]


def test_a_failed_retrain_stays_pending_and_the_next_pass_runs_it(
    prefect: str, world: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a stream whose drift is confirmed at batch 5, and a trainer that fails after the first champion
    config_path = world(n_batches=5, drift_at=4)
    real_fit = train.fit_pipeline
    calls = []

    def failing_after_first(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("node lost while fitting")
        return real_fit(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "fit_pipeline", failing_after_first)
    # when the pass decides to retrain and the retrain fails
    with pytest.raises(RuntimeError, match="node lost"):
        monitor(str(config_path))
    registry = Registry(load_config(config_path))
    assert [v.version for v in registry.versions("dev")] == ["1"]
    # then the next pass finds the decision still pending and retrains for that very drift check
    again = monitor(str(config_path))
    assert len(again.retrains) == 1
    v2 = registry.version("dev", "2")
    drifted = [c for c in finished_checks(config_path) if c.endswith("batch_005.csv")]
    assert len(drifted) == 1
    assert registry.client.get_run(v2.tags["driftloop.drift_run_id"]).data.tags["driftloop.batch_uri"] == drifted[0]
    # and a third pass has nothing left to do
    third = monitor(str(config_path))
    assert third.retrains == [] and all(v.already_checked for v in third.verdicts)


def test_two_models_with_their_own_stores_in_one_process_each_write_only_their_own(
    prefect: str, world: Callable[..., Path], tmp_path: Path
) -> None:
    # given two models with different stores, run alternately in one process
    first = world(n_batches=1, drift_at=5)
    document = yaml.safe_load(first.read_text())
    document["model"]["name"] = "second"
    document["registry"] = {"tracking_uri": f"sqlite:///{tmp_path / 'second.db'}"}
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(document))
    monitor(str(first))
    monitor(str(second))
    monitor(str(first))
    # then each store holds its own model and experiments only
    for path, own, other in ((first, "weather", "second"), (second, "second", "weather")):
        client = Registry(load_config(path)).client
        names = {model.name for model in client.search_registered_models()}
        experiments = {experiment.name for experiment in client.search_experiments()}
        assert names == {f"{own}-dev", f"{own}-staging", f"{own}-prod"}
        assert not any(other in name for name in experiments)
        assert f"driftloop/{own}/monitoring" in experiments


def test_an_edited_config_takes_effect_at_the_next_retrain(
    prefect: str, world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a champion trained on every column
    config_path = world(n_batches=1, drift_at=5)
    monitor(str(config_path))
    # when the config drops a feature
    document = yaml.safe_load(config_path.read_text())
    document["model"]["ignore"] = ["date", "wind_speed"]
    config_path.write_text(yaml.safe_dump(document))
    # then the next pass says so, and keeps checking against the champion's contract
    summary = monitor(str(config_path))
    assert any(change.startswith("model.ignore") for change in summary.config_changes)
    registry = Registry(load_config(config_path))
    assert "wind_speed" in current_reference(registry).contract.feature_names
    # and a forced retrain trains on the new features
    from flows.retrain import retrain

    retrain(str(config_path))
    assert "wind_speed" not in current_reference(registry).contract.feature_names
    assert monitor(str(config_path)).config_changes == []


def test_rows_without_a_label_are_dropped_from_training_and_counted(
    prefect: str, world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a reference in which 2% of the rows have no label
    config_path = world(n_batches=1, drift_at=5)
    reference = tmp_path / "data" / "reference.csv"
    frame = pd.read_csv(reference)
    frame.loc[frame.sample(frac=0.02, random_state=0).index, "weather"] = None
    frame.to_csv(reference, index=False)
    # when the first champion is trained, then it trains, and the version records how many rows were dropped
    summary = monitor(str(config_path))
    assert summary.bootstrap is not None
    v1 = Registry(load_config(config_path)).version("dev", "1")
    assert v1.tags["driftloop.dropped_unlabelled_rows"] == str(round(len(frame) * 0.02))
