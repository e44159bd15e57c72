"""Registry and promotion against a real MLflow sqlite store in tmp_path, driven by `service/` alone
(no orchestrator): registration, lineage, idempotence, the gate, approval and rollback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from service import retrain
from service.config_file import load_config
from service.data import frame_hash
from service.errors import PromotionError, RegistryUnavailable
from service.evaluate import GateDecision
from service.mlflow_store import Store
from service.promote import Outcome, accept_candidate, approve, promote_through, rollback
from service.registration import register_challenger
from service.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry, VersionRef
from service.retrain import evaluate_challenger, fit_challenger, load_window


def aliases(registry: Registry) -> dict[str, dict[str, str | None]]:
    return {
        env: {
            alias: getattr(registry.at_alias(env, alias), "version", None) for alias in (CHAMPION, CHALLENGER, PREVIOUS)
        }
        for env in registry.config.environments
    }


def train(
    registry: Registry, window: list[str] | None = None, estimator: str | None = None
) -> tuple[VersionRef, GateDecision, Outcome]:
    """What the retrain flow does, step by step, with no orchestrator."""
    config = registry.config
    if estimator:
        config.model.estimator = estimator
    uris = window or [config.resolve(config.data.reference)]
    frame, contract, dropped = load_window(uris, config)
    challenger = fit_challenger(config, contract, frame, uris, dropped)
    decision = evaluate_challenger(registry, challenger, contract)
    version = register_challenger(registry, challenger, contract, decision, drift_run_id=None, flow_run_id="f-1")
    return version, decision, accept_candidate(registry, version, decision)


@pytest.fixture
def registry(world: Callable[..., Path]) -> Registry:
    return Registry(load_config(world(n_batches=5, drift_at=4)))


def drifted_window(registry: Registry) -> list[str]:
    folder = Path(registry.config.resolve("data/stream"))
    return [str(folder / "batch_004.csv"), str(folder / "batch_005.csv")]


def test_first_model_is_champion_in_dev_and_staging_and_waits_for_approval_in_prod(
    registry: Registry,
) -> None:
    # given an empty registry, when the first model is trained and promoted along the environments
    _version, decision, outcome = train(registry)
    outcomes = promote_through(registry)
    # then it is champion in dev and staging, and prod holds it as challenger awaiting approval
    assert decision.passed and decision.reason == "no champion yet"
    assert outcome.action == "champion"
    assert [o.action for o in outcomes] == ["champion", "awaiting_approval"]
    assert aliases(registry) == {
        "dev": {CHAMPION: "1", CHALLENGER: None, PREVIOUS: None},
        "staging": {CHAMPION: "1", CHALLENGER: None, PREVIOUS: None},
        "prod": {CHAMPION: None, CHALLENGER: "1", PREVIOUS: None},
    }
    assert registry.version("prod", "1").tags["driftloop.status"] == "awaiting_approval"


def test_a_copy_into_the_next_environment_carries_the_lineage_and_not_where_it_stood_before(
    registry: Registry,
) -> None:
    # given a model trained and champion in dev
    train(registry)
    # when it is promoted along: copied into staging (champion there) and into prod (awaiting approval)
    promote_through(registry)
    staging, prod = registry.version("staging", "1"), registry.version("prod", "1")
    assert {"driftloop.status", "driftloop.promoted_at"} <= set(staging.tags)
    # then the copy carries staging's lineage, metrics and gate, names its source, and was never promoted there
    local = {f"driftloop.{key}" for key in ("status", "promoted_at", "approved", "copied_from")}
    carried = {key: value for key, value in staging.tags.items() if key not in local}
    assert {"driftloop.train_hash", "driftloop.gate", "driftloop.training_run_id"} <= set(carried)
    assert {key: prod.tags.get(key) for key in carried} == carried
    assert prod.tags["driftloop.copied_from"] == staging.uri
    assert prod.tags["driftloop.status"] == "awaiting_approval" and "driftloop.promoted_at" not in prod.tags
    assert prod.run_id == staging.run_id


def test_a_registration_hashes_its_training_and_holdout_data_once_each_and_records_those_hashes(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given every frame the retrain steps hash, recorded
    hashed: list[int] = []

    def recorded(frame: pd.DataFrame) -> str:
        hashed.append(len(frame))
        return frame_hash(frame)

    monkeypatch.setattr(retrain, "frame_hash", recorded)
    # when a model is trained and registered
    version, _decision, _outcome = train(registry)
    # then the training rows and the holdout rows were hashed once each, for the key, lineage and tags alike
    lineage, params = registry.lineage(version), registry.client.get_run(version.run_id).data.params
    assert sorted(hashed) == sorted([int(params["rows.train"]), int(params["rows.holdout"])])
    assert lineage["train_hash"] == version.tags["driftloop.train_hash"]
    assert lineage["holdout_hash"] == version.tags["driftloop.holdout_hash"]
    # and the run's datasets are named by those hashes, not hashed again by MLflow
    datasets = registry.client.get_run(version.run_id).inputs.dataset_inputs
    digests = {item.tags[0].value: item.dataset.digest for item in datasets}
    assert digests == {"training": lineage["train_hash"][:16], "holdout": lineage["holdout_hash"][:16]}


def test_registered_version_carries_signature_example_datasets_metrics_and_lineage(
    registry: Registry, tmp_path: Path
) -> None:
    # when a model is trained and registered
    version, decision, _ = train(registry)
    # then the version has a signature and an input example (read from this registry's own store)
    info = mlflow.models.Model.load(registry.client.download_artifacts(version.run_id, "model", str(tmp_path)))
    assert info.signature is not None
    assert {spec.name for spec in info.signature.inputs.inputs} >= {"temperature", "region"}
    assert info.saved_input_example_info is not None
    # and its training run has the datasets, the holdout metric and the lineage artifacts
    run = registry.client.get_run(version.run_id)
    contexts = {tag.value for item in run.inputs.dataset_inputs for tag in item.tags}
    assert {"training", "holdout"} <= contexts
    # each dataset says driftloop's retrain made it, not the process that logged it (source "-")
    sources = [json.loads(item.dataset.source)["tags"] for item in run.inputs.dataset_inputs]
    assert all(tags["mlflow.source.name"] == "driftloop retrain" for tags in sources), sources
    assert run.data.metrics["holdout.challenger.f1_macro"] == pytest.approx(decision.challenger_score)
    lineage = registry.lineage(version)
    assert lineage["training_data"] == [registry.config.resolve("data/reference.csv")]
    assert len(str(lineage["train_hash"])) == 64
    for key in ("git_sha", "code_version", "train_hash", "holdout_hash", "flow_run_id", "training_run_id"):
        assert version.tags[f"driftloop.{key}"], key
    assert version.tags["driftloop.flow_run_id"] == "f-1"


def test_registering_the_same_training_run_again_returns_the_same_version(registry: Registry) -> None:
    # given a registered version
    version, _, _ = train(registry)
    # when its training run is registered again (a retried task)
    again = registry.register(version.run_id, "dev", {})
    # then no duplicate version exists
    assert again.version == version.version
    assert [v.version for v in registry.versions("dev")] == ["1"]


def test_promoting_twice_copies_once(registry: Registry) -> None:
    # given the first model promoted along the environments
    train(registry)
    promote_through(registry)
    # when promotion runs again
    outcomes = promote_through(registry)
    # then nothing is copied twice and nothing moves
    assert [o.action for o in outcomes] == ["unchanged", "awaiting_approval"]
    assert [v.version for v in registry.versions("staging")] == ["1"]
    assert [v.version for v in registry.versions("prod")] == ["1"]


def test_better_challenger_replaces_champion_and_old_one_becomes_previous(registry: Registry) -> None:
    # given a champion trained before the drift
    train(registry)
    promote_through(registry)
    # when a challenger is trained on drifted data
    version, decision, outcome = train(registry, drifted_window(registry))
    promote_through(registry)
    # then it wins on the same fresh holdout, its lineage names the champion it was judged against,
    # and it moves along to prod's approval
    assert decision.passed and decision.champion_score is not None
    assert decision.champion_version == version.tags["driftloop.champion_version"] == "1"
    assert decision.challenger_score > decision.champion_score
    assert outcome.action == "champion"
    assert aliases(registry)["dev"] == {CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"}
    assert aliases(registry)["staging"] == {CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"}
    assert aliases(registry)["prod"][CHALLENGER] == "2"


def test_a_registration_reads_nothing_back_and_a_promotion_reads_each_environments_aliases_once(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a champion promoted along, and every MLflow call the registry makes recorded by what it does
    train(registry)
    promote_through(registry)
    asked: list[str] = []
    ask = Store.ask

    def recorded(store: Store, what: str, call: Callable[[], object]) -> object:
        asked.append(what)
        return ask(store, what, call)

    monkeypatch.setattr(Store, "ask", recorded)
    # when a better challenger is registered and made dev's champion
    version, _, outcome = train(registry, drifted_window(registry))
    # then neither the new version nor its training run is read back
    assert outcome.action == "champion"
    read_back = (f"read weather-dev v{version.version}", f"read run {version.run_id}")
    assert not [what for what in asked if what in read_back]
    # when it is promoted into staging and prod
    asked.clear()
    promote_through(registry)
    # then each environment's aliases are read once (with its model), and its source's champion once
    sources = ["read weather-dev@champion", "read weather-staging@champion"]
    assert [what for what in asked if "@" in what and what.startswith("read ")] == sources
    for env in ("staging", "prod"):
        assert asked.count(f"read model weather-{env}") == 2, asked  # it exists, and where its aliases stand
    assert aliases(registry)["staging"] == {CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"}
    assert aliases(registry)["prod"][CHALLENGER] == "2"


def test_worse_challenger_stays_in_dev_tagged_with_why_and_nothing_moves(registry: Registry) -> None:
    # given a champion trained before the drift, promoted along
    train(registry)
    promote_through(registry)
    before = aliases(registry)
    # when a useless challenger (always predicts the majority class) is trained
    version, decision, outcome = train(registry, drifted_window(registry), "sklearn.dummy.DummyClassifier")
    # then the gate rejects it, it is tagged with the reason, and no alias moves
    assert not decision.passed
    assert outcome.action == "rejected"
    tags = registry.version("dev", version.version).tags
    assert tags["driftloop.status"] == "rejected"
    assert "below the required" in tags["driftloop.rejected_reason"]
    assert aliases(registry) == before
    assert [v.version for v in registry.versions("staging")] == ["1"]


def test_approve_then_rollback_restores_the_previous_prod_champion(registry: Registry) -> None:
    # given prod approved on v1 and v2 waiting for approval
    train(registry)
    promote_through(registry)
    approve(registry, "prod")
    train(registry, drifted_window(registry))
    promote_through(registry)
    assert aliases(registry)["prod"] == {CHAMPION: "1", CHALLENGER: "2", PREVIOUS: None}
    # when v2 is approved
    approved = approve(registry, "prod")
    # then it is champion and v1 is previous
    assert approved.action == "champion"
    assert aliases(registry)["prod"] == {CHAMPION: "2", CHALLENGER: None, PREVIOUS: "1"}
    # when prod is rolled back
    rolled = rollback(registry, "prod")
    # then v1 is champion again and v2 is tagged as rolled back
    assert rolled.action == "rolled_back"
    assert aliases(registry)["prod"][CHAMPION] == "1"
    assert registry.version("prod", "2").tags["driftloop.status"] == "rolled_back"


def test_approval_or_rollback_with_nothing_to_act_on_is_an_error_that_changes_nothing(
    registry: Registry,
) -> None:
    # given the first model promoted: prod has a challenger but no champion, staging nothing waiting
    train(registry)
    promote_through(registry)
    before = aliases(registry)
    # when approving an environment with nothing waiting, or rolling back one with no previous
    with pytest.raises(PromotionError, match="weather-staging has no @challenger"):
        approve(registry, "staging")
    with pytest.raises(PromotionError, match="weather-prod has no @previous"):
        rollback(registry, "prod")
    # then nothing moved
    assert aliases(registry) == before


def test_contract_is_stored_with_the_model_as_json(registry: Registry) -> None:
    version, _, _ = train(registry)
    contract = registry.run_dict(version.run_id, "contract.json")
    assert json.loads(json.dumps(contract))["target"] == "weather"
    assert {item["name"] for item in contract["features"]} == {
        "temperature",
        "humidity",
        "pressure",
        "wind_speed",
        "cloud_cover",
        "region",
        "season",
    }


def test_two_models_in_one_process_keep_to_their_own_stores(world: Callable[..., Path], tmp_path: Path) -> None:
    # given two configs with stores in different folders, opened one after the other in one process
    first = Registry(load_config(world(n_batches=1, drift_at=2)))
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    second_config = load_config(world(n_batches=1, drift_at=2))
    second_config.source = other_folder / "driftloop.yaml"
    second = Registry(second_config)
    # then each keeps its own tracking URI: opening the first did not leak into the second
    assert first.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert second.tracking_uri == f"sqlite:///{other_folder / 'mlflow.db'}"
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_a_drift_check_already_answered_by_a_rejected_version_trains_nothing_again(registry: Registry) -> None:
    from service.retrain import mark_settled, plan_retrain

    # given a champion, and a drift check against it whose retrain the gate rejected
    champion, _, _ = train(registry)
    check = registry.client.create_run(
        registry.experiment_id("monitoring"),
        tags={"driftloop.reference_run": champion.run_id, "driftloop.batch_uri": drifted_window(registry)[-1]},
    ).info.run_id
    assert plan_retrain(registry, None, check).skip_reason is None  # not answered yet: it would train
    rejected, _, outcome = train(registry, drifted_window(registry), "sklearn.dummy.DummyClassifier")
    registry.tag_version(rejected, {"drift_run_id": check})
    assert outcome.action == "rejected"
    # (registered and settled by the gate, but not yet marked done: a failure here leaves it unanswered)
    assert plan_retrain(registry, None, check).skip_reason is None
    mark_settled(registry, rejected)
    # when the same request arrives again (a burst, a retried trigger)
    plan = plan_retrain(registry, None, check)
    # then it is skipped, naming the version that answered it
    assert plan.skip_reason == f"drift check {check} was already answered by v{rejected.version}"


def test_a_retried_registration_after_the_training_run_finished_makes_no_second_run_or_version(
    registry: Registry,
) -> None:
    # given a training whose run was logged and finished, and whose registration then failed
    config = registry.config
    uris = [config.resolve(config.data.reference)]
    frame, contract, dropped = load_window(uris, config)
    challenger = fit_challenger(config, contract, frame, uris, dropped)
    decision = evaluate_challenger(registry, challenger, contract)
    real_register = registry.register
    registry.register = lambda *args, **kwargs: (_ for _ in ()).throw(RegistryUnavailable("MLflow down"))  # type: ignore[method-assign]
    with pytest.raises(RegistryUnavailable):
        register_challenger(registry, challenger, contract, decision, drift_run_id=None, flow_run_id="f-1")
    registry.register = real_register  # type: ignore[method-assign]
    # when the step is retried with the same challenger
    version = register_challenger(registry, challenger, contract, decision, drift_run_id=None, flow_run_id="f-1")
    # then the finished run is reused: one training run, one version
    runs = registry.client.search_runs([registry.experiment_id("training")])
    assert [run.info.run_id for run in runs] == [version.run_id]
    assert [v.version for v in registry.versions("dev")] == ["1"]
