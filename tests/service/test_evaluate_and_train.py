"""Tests of service.train (building and fitting the configured pipeline) and service.evaluate (the
champion/challenger gate), on the seeded demo stream: a champion that learned the pre-drift climate
against challengers that learned the drifted one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from service.contracts import DataContract, conform, contract_from_reference, drop_unlabelled
from service.demo_data import make_stream
from service.errors import ConfigError
from service.evaluate import GateDecision, evaluate_gate, score, split_holdout
from service.settings import Config
from service.train import build_estimator, build_pipeline, fit_pipeline

ROTATE = {"sunny": "cloudy", "cloudy": "rainy", "rainy": "sunny"}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # HistGradientBoosting starts one OpenMP thread per core; on a busy shared machine that
    # oversubscription made one small fit take 15-30 s instead of 0.4 s.
    with threadpool_limits(limits=1):
        yield


def make_config(task: str = "classification", **sections: dict[str, object]) -> Config:
    """The demo's weather config (or a regression one on ``y``), with ``sections`` merged in."""
    if task == "classification":
        model = {"name": "weather", "task": task, "target": "weather", "ignore": ["date"]}
    else:
        model = {"name": "load", "task": task, "target": "y"}
    model |= sections.pop("model", {})
    raw = {"model": model, "data": {"reference": "reference.csv", "current": "incoming/*.csv"}}
    return Config.model_validate(raw | sections)


@pytest.fixture(scope="module")
def config() -> Config:
    return make_config()


@pytest.fixture(scope="module")
def stream():
    # Batch 1 is pre-drift; batches 2 and 3 (1600 rows) have the new climate.
    return make_stream(n_batches=3, rows=800, reference_rows=1000, drift_at=2)


@pytest.fixture(scope="module")
def contract(stream, config: Config) -> DataContract:
    return contract_from_reference(stream.reference, config, "reference.csv")


@pytest.fixture(scope="module")
def reference(stream, contract: DataContract) -> pd.DataFrame:
    return conform(stream.reference, contract)


@pytest.fixture(scope="module")
def drifted_split(stream, contract: DataContract, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The drifted batches, split into a training part and a fresh holdout."""
    drifted = conform(pd.concat(stream.batches[1:], ignore_index=True), contract)
    return split_holdout(drifted, config)


@pytest.fixture(scope="module")
def holdout(drifted_split: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return drifted_split[1]


@pytest.fixture(scope="module")
def champion(config: Config, contract: DataContract, reference: pd.DataFrame) -> Pipeline:
    """The model in production: it learned the climate before the drift."""
    return fit_pipeline(config, contract, reference)


@pytest.fixture(scope="module")
def challenger(config: Config, contract: DataContract, drifted_split) -> Pipeline:
    """A retrain on the drifted batches."""
    return fit_pipeline(config, contract, drifted_split[0])


class Oracle:
    """Knows the holdout's labels (by row index), but gets ``broken_region`` wrong on purpose."""

    def __init__(self, holdout: pd.DataFrame, target: str, broken_region: str | None = None) -> None:
        self.labels = holdout[target]
        self.broken_region = broken_region

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        labels = self.labels.loc[features.index].to_numpy().copy()
        broken = (features["region"] == self.broken_region).to_numpy()
        labels[broken] = [ROTATE[label] for label in labels[broken]]
        return labels


# --- the gate --------------------------------------------------------------------------------------


def test_challenger_trained_after_drift_beats_the_champion_on_a_drifted_holdout(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> None:
    # given: a champion fitted before the drift and a challenger fitted after it
    # when: both are scored on the same fresh holdout
    decision = evaluate_gate(challenger, champion, holdout, contract, config)
    # then
    assert decision.passed is True
    assert decision.promote is True
    assert decision.metric == "f1_macro"
    assert decision.champion_score is not None
    gain = decision.challenger_score - decision.champion_score
    assert gain > 0
    scores = f"{decision.challenger_score:.4f} vs champion {decision.champion_score:.4f}"
    assert decision.reason == f"f1_macro {scores}: gain {gain:+.4f}"
    assert decision.slice_regressions == {}


def test_challenger_worse_than_the_champion_fails_the_gate_naming_metric_and_scores(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> None:
    # given: the roles swapped, so the pre-drift model challenges the post-drift one
    # when
    decision = evaluate_gate(champion, challenger, holdout, contract, config)
    # then
    assert decision.passed is False
    assert decision.promote is False
    assert decision.challenger_score < decision.champion_score  # type: ignore[operator]
    assert decision.reason.startswith(
        f"f1_macro {decision.challenger_score:.4f} vs champion {decision.champion_score:.4f}: gain -"
    )
    assert decision.reason.endswith("is below the required +0.0000")


def test_dummy_estimator_challenger_fails_against_a_real_champion(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract, drifted_split
) -> None:
    # given: a config whose estimator always predicts the most frequent class
    dummy_config = make_config(model={"estimator": "sklearn.dummy.DummyClassifier"})
    dummy = fit_pipeline(dummy_config, contract, drifted_split[0])
    # when
    decision = evaluate_gate(dummy, challenger, holdout, contract, dummy_config)
    # then
    assert isinstance(dummy[-1], DummyClassifier)
    assert decision.passed is False
    assert "f1_macro" in decision.reason
    assert f"{decision.challenger_score:.4f} vs champion {decision.champion_score:.4f}" in decision.reason


def test_gain_below_min_gain_fails_the_gate(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: the required gain is a little more than the challenger's actual gain
    baseline = evaluate_gate(challenger, champion, holdout, contract, make_config())
    gain = baseline.challenger_score - baseline.champion_score  # type: ignore[operator]
    demanding = make_config(evaluation={"min_gain": round(gain + 0.01, 4)})
    # when
    decision = evaluate_gate(challenger, champion, holdout, contract, demanding)
    # then
    assert baseline.passed is True
    assert decision.passed is False
    assert decision.min_gain == round(gain + 0.01, 4)
    assert decision.reason.endswith(f"gain {gain:+.4f} is below the required {gain + 0.01:+.4f}")


@pytest.mark.parametrize(("mode", "promote"), [("enabled", False), ("dry_run", True)])
def test_only_an_enabled_gate_stops_a_failing_challenger(
    challenger: Pipeline,
    champion: Pipeline,
    holdout: pd.DataFrame,
    contract: DataContract,
    mode: str,
    promote: bool,
) -> None:
    # given: a challenger that loses (roles swapped), under each evaluation mode
    config = make_config(evaluation={"mode": mode})
    # when
    decision = evaluate_gate(champion, challenger, holdout, contract, config)
    # then: the verdict is recorded as failed, but only `enabled` holds the challenger back
    assert decision.passed is False
    assert decision.mode == mode
    assert decision.promote is promote


def test_dry_run_says_it_promoted_a_failing_challenger_anyway(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: a losing challenger (roles swapped) under dry_run
    enforced = evaluate_gate(champion, challenger, holdout, contract, make_config())
    # when
    decision = evaluate_gate(champion, challenger, holdout, contract, make_config(evaluation={"mode": "dry_run"}))
    # then: the failed verdict, and the override, are both on record
    assert (decision.passed, decision.promote, decision.overridden) == (False, True, True)
    assert decision.reason == enforced.reason + "; dry_run: promoted anyway"
    assert enforced.overridden is False


def test_dry_run_of_a_passing_challenger_overrides_nothing(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given / when
    decision = evaluate_gate(challenger, champion, holdout, contract, make_config(evaluation={"mode": "dry_run"}))
    # then
    assert (decision.passed, decision.promote, decision.overridden) == (True, True, False)
    assert "dry_run" not in decision.reason


class Unscorable:
    """A champion that must not be asked for a prediction."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        raise AssertionError("the champion was scored")


def test_disabled_evaluation_promotes_without_scoring_the_champion(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: evaluation disabled, a champion that fails if scored, and a gate it would fail anyway
    config = make_config(evaluation={"mode": "disabled", "min_gain": 0.9, "slice_by": ["region"]})
    # when
    decision = evaluate_gate(challenger, Unscorable(), holdout, contract, config)
    # then: promoted with no comparison; the challenger's own score is kept for the record
    assert decision.promote is True
    assert decision.passed is True
    assert decision.overridden is False
    assert decision.champion_score is None
    assert (decision.slice_regressions, decision.skipped_slices) == ({}, {})
    assert 0 < decision.challenger_score <= 1
    assert decision.reason == (
        "evaluation disabled (evaluation.mode: disabled): promoted without comparing with the champion"
    )


def test_first_model_passes_because_there_is_no_champion(
    holdout: pd.DataFrame, contract: DataContract, drifted_split
) -> None:
    # given: even a dummy challenger under a demanding gain, but nothing to compare it with
    config = make_config(model={"estimator": "sklearn.dummy.DummyClassifier"}, evaluation={"min_gain": 0.5})
    dummy = fit_pipeline(config, contract, drifted_split[0])
    # when
    decision = evaluate_gate(dummy, None, holdout, contract, config)
    # then
    assert decision.passed is True
    assert decision.reason == "no champion yet"
    assert decision.champion_score is None
    assert 0 < decision.challenger_score < 1


def test_decision_serialises_to_json(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> None:
    # given
    decision = evaluate_gate(challenger, champion, holdout, contract, config)
    # when
    payload = json.loads(json.dumps(decision.to_dict()))
    # then
    assert payload["passed"] is True
    assert payload["metric"] == "f1_macro"
    assert payload["reason"] == decision.reason
    assert GateDecision(**payload) == decision


@pytest.mark.parametrize(
    ("task", "metric"),
    [("classification", "f1_macr"), ("classification", "neg_rmse"), ("regression", "roc_auc")],
)
def test_a_metric_unknown_or_unfit_for_the_task_fails_on_load_naming_evaluation_metric(task: str, metric: str) -> None:
    # given: a typo in the metric, or a metric of the other task
    # when: the config is validated (before any model is trained)
    with pytest.raises(ValidationError) as caught:
        make_config(task, evaluation={"metric": metric})
    # then: the message names the key, the metric and what fits
    message = str(caught.value)
    assert f"evaluation.metric {metric!r} does not fit a {task} model" in message
    assert "expected one of" in message


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "roc_auc"])
def test_other_classification_metrics_score_between_zero_and_one(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract, metric: str
) -> None:
    # given / when
    value = score(challenger, holdout, contract, metric)
    # then: better than guessing among three classes
    assert 0.4 < value <= 1.0


# --- slices ----------------------------------------------------------------------------------------


def test_challenger_better_overall_but_broken_in_one_region_fails_on_that_slice(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: a challenger that is right everywhere except in `north`, where it is always wrong,
    # against the real post-drift model as champion
    config = make_config(evaluation={"slice_by": ["region"]})
    broken_north = Oracle(holdout, "weather", broken_region="north")
    # when
    decision = evaluate_gate(broken_north, challenger, holdout, contract, config)
    # then: better overall, yet held back, naming the region
    assert decision.challenger_score > decision.champion_score  # type: ignore[operator]
    assert decision.passed is False
    assert list(decision.slice_regressions) == ["region=north"]
    assert decision.slice_regressions["region=north"] > 0.5
    assert decision.reason.startswith("f1_macro regresses by more than 0.05 in slices {'region=north': ")


def test_challenger_good_in_every_region_passes_the_slice_check(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: the same oracle, without the broken region
    config = make_config(evaluation={"slice_by": ["region", "season"]})
    # when
    decision = evaluate_gate(Oracle(holdout, "weather"), challenger, holdout, contract, config)
    # then
    assert decision.passed is True
    assert decision.slice_regressions == {}


def test_slices_too_small_or_with_one_class_are_reported_not_silently_skipped(
    challenger: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given: a holdout with only 12 rows from `north`, and every `south` row labelled rainy
    north = holdout.index[holdout["region"] == "north"]
    small = holdout.drop(index=north[12:])
    small.loc[small["region"] == "south", "weather"] = "rainy"
    small = small.reset_index(drop=True)
    config = make_config(evaluation={"slice_by": ["region"]})
    # when
    decision = evaluate_gate(Oracle(small, "weather"), challenger, small, contract, config)
    # then: the gate passes, and says which slices it could not judge and why
    assert decision.passed is True
    assert decision.skipped_slices == {
        "region=north": "12 rows, fewer than 20",
        "region=south": "one target value only: rainy",
    }
    assert decision.reason.endswith(f"; slices too small to judge: {decision.skipped_slices}")
    assert json.loads(json.dumps(decision.to_dict()))["skipped_slices"] == decision.skipped_slices


def test_slice_by_an_unknown_column_is_a_config_error(
    challenger: Pipeline, champion: Pipeline, holdout: pd.DataFrame, contract: DataContract
) -> None:
    # given
    config = make_config(evaluation={"slice_by": ["station"]})
    # when / then
    with pytest.raises(ConfigError, match=r"^evaluation\.slice_by: column 'station' is not in the data$"):
        evaluate_gate(challenger, champion, holdout, contract, config)


# --- holdout split ---------------------------------------------------------------------------------


@pytest.fixture
def labelled() -> pd.DataFrame:
    """200 rows: classes a/b/c in proportions 50/30/20."""
    return pd.DataFrame({"x": np.arange(200.0), "weather": ["a"] * 100 + ["b"] * 60 + ["c"] * 40})


def test_holdout_takes_the_configured_share_stratified_by_class(labelled: pd.DataFrame) -> None:
    # given
    config = make_config(evaluation={"holdout": 0.25})
    # when
    train, holdout = split_holdout(labelled, config)
    # then: 50 rows held out, with the classes in the same proportions, and no row lost or shared
    assert (len(train), len(holdout)) == (150, 50)
    assert holdout["weather"].value_counts().to_dict() == {"a": 25, "b": 15, "c": 10}
    assert sorted([*train["x"], *holdout["x"]]) == labelled["x"].tolist()
    assert train.index.tolist() == list(range(150))


def test_holdout_split_is_reproducible_from_the_random_state(labelled: pd.DataFrame) -> None:
    # given
    seeded, other = make_config(training={"random_state": 3}), make_config(training={"random_state": 4})
    # when
    first, again, different = (split_holdout(labelled, c)[1] for c in (seeded, seeded, other))
    # then
    assert first["x"].tolist() == again["x"].tolist()
    assert first["x"].tolist() != different["x"].tolist()


def test_holdout_with_a_singleton_class_is_not_stratified(labelled: pd.DataFrame) -> None:
    # given: one class has a single row, which stratification cannot split
    rare = labelled.assign(weather=["z", *labelled["weather"].tolist()[1:]])
    # when
    train, holdout = split_holdout(rare, make_config(evaluation={"holdout": 0.1}))
    # then
    assert (len(train), len(holdout)) == (180, 20)


# --- building the estimator ------------------------------------------------------------------------


def test_default_estimator_is_seeded_from_training_random_state() -> None:
    # given
    config = make_config(training={"random_state": 42})
    # when
    estimator = build_estimator(config)
    # then
    assert isinstance(estimator, HistGradientBoostingClassifier)
    assert estimator.random_state == 42


def test_explicit_random_state_in_params_wins() -> None:
    # given
    config = make_config(model={"params": {"random_state": 7, "max_iter": 20}}, training={"random_state": 42})
    # when
    estimator = build_estimator(config)
    # then
    assert (estimator.random_state, estimator.max_iter) == (7, 20)


def test_estimator_without_random_state_is_built_as_configured() -> None:
    # given
    config = make_config(model={"estimator": "sklearn.neighbors.KNeighborsClassifier", "params": {"n_neighbors": 3}})
    # when
    estimator = build_estimator(config)
    # then
    assert isinstance(estimator, KNeighborsClassifier)
    assert estimator.n_neighbors == 3
    assert "random_state" not in estimator.get_params()


@pytest.mark.parametrize(
    "path", ["sklearn.ensemble.NoSuchForest", "nosuchpackage.Model", "HistGradientBoostingClassifier"]
)
def test_unknown_estimator_path_is_a_config_error_naming_model_estimator(path: str) -> None:
    # given
    config = make_config(model={"estimator": path})
    # when
    with pytest.raises(ConfigError) as caught:
        build_estimator(config)
    # then
    assert str(caught.value).startswith(f"model.estimator: cannot import {path!r}: expected a dotted class path")


@pytest.mark.parametrize("path", ["collections.OrderedDict", "sklearn.metrics.f1_score"])
def test_something_other_than_an_estimator_class_is_a_config_error(path: str) -> None:
    # given: a class that is not an estimator, and a function
    config = make_config(model={"estimator": path})
    # when / then
    with pytest.raises(ConfigError) as caught:
        build_estimator(config)
    assert str(caught.value) == f"model.estimator: {path!r} is not a scikit-learn estimator class"


def test_parameter_the_estimator_does_not_take_is_a_config_error_naming_model_params() -> None:
    # given
    config = make_config(model={"params": {"no_such_param": 1}})
    # when
    with pytest.raises(ConfigError) as caught:
        build_estimator(config)
    # then
    message = str(caught.value)
    assert message.startswith("model.params: not accepted by sklearn.ensemble.HistGradientBoostingClassifier")
    assert "no_such_param" in message


def test_parameter_value_the_estimator_rejects_at_fit_is_a_config_error(contract: DataContract, drifted_split) -> None:
    # given: a type-correct name with an impossible value, which scikit-learn only checks when fitting
    config = make_config(model={"params": {"max_iter": -5}})
    # when
    with pytest.raises(ConfigError) as caught:
        fit_pipeline(config, contract, drifted_split[0].head(100))
    # then
    assert str(caught.value).startswith("model.params: sklearn.ensemble.HistGradientBoostingClassifier failed")
    assert "max_iter" in str(caught.value)


def test_pipeline_encodes_the_contracts_column_kinds(config: Config, contract: DataContract) -> None:
    # given / when
    pipeline = build_pipeline(config, contract)
    # then
    transformers = {name: columns for name, _, columns in pipeline.named_steps["preprocess"].transformers}
    assert transformers == {"numeric": contract.numerical, "categorical": contract.categorical}
    assert isinstance(pipeline.named_steps["estimator"], HistGradientBoostingClassifier)


# --- regression ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_frame() -> pd.DataFrame:
    """y = 3 x1 - 2 x2 + 5 [site is b] + small noise, 400 rows."""
    rng = np.random.default_rng(3)
    x1, x2 = rng.uniform(0, 10, 400), rng.uniform(0, 10, 400)
    site = rng.choice(["a", "b"], 400)
    y = 3 * x1 - 2 * x2 + 5 * (site == "b") + rng.normal(0, 0.5, 400)
    return pd.DataFrame({"x1": x1, "x2": x2, "site": site, "y": y})


def test_regression_trains_the_default_regressor_and_beats_the_mean_on_neg_rmse(
    regression_frame: pd.DataFrame,
) -> None:
    # given: a regression config with default estimator and metric
    config = make_config("regression")
    contract = contract_from_reference(regression_frame, config, "reference.csv")
    frame = conform(regression_frame, contract)
    train, holdout = split_holdout(frame, config)
    mean_only = make_config("regression", model={"estimator": "sklearn.dummy.DummyRegressor"})
    # when
    model = fit_pipeline(config, contract, train)
    baseline = fit_pipeline(mean_only, contract, train)
    decision = evaluate_gate(model, baseline, holdout, contract, config)
    # then: the score is minus the RMSE, and the model beats predicting the mean by far
    assert isinstance(model[-1], HistGradientBoostingRegressor)
    assert isinstance(baseline[-1], DummyRegressor)
    assert contract.numerical == ["x1", "x2"] and contract.categorical == ["site"]
    residuals = holdout["y"] - model.predict(holdout[contract.feature_names])
    assert decision.metric == "neg_rmse"
    assert decision.challenger_score == pytest.approx(-np.sqrt(np.mean(residuals**2)))
    assert -3.0 < decision.challenger_score < 0
    assert decision.champion_score < -5.0  # type: ignore[operator]
    assert decision.passed is True


# --- training on a window with missing labels ------------------------------------------------------


def test_window_with_a_few_missing_labels_trains_once_they_are_dropped(
    config: Config, contract: DataContract, drifted_split
) -> None:
    # given: a training window in which every 40th row (2.5%) has no label
    window = drifted_split[0].copy()
    window.loc[window.index[::40], "weather"] = None
    missing = int(window["weather"].isna().sum())
    # when
    labelled, dropped = drop_unlabelled(window, contract, "incoming/batch_002.csv")
    model = fit_pipeline(config, contract, labelled)
    # then: no "Input y contains NaN" from scikit-learn; the labelled rows trained the model
    assert 0 < dropped == missing <= 0.05 * len(window)
    assert len(labelled) == len(window) - dropped
    assert 0 < score(model, drifted_split[1], contract, "f1_macro") <= 1
