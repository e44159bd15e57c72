"""Tests of service.skops_types (the types a fitted pipeline is made of) and of the model save that trusts
them: the quick walk must name every type skops needs trusted, a save whose list misses one must still
end with a model that loads, trusting skops' own list, and the save's audit of its file must refuse what
skops' load refuses, without loading the model back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow.sklearn
import pandas as pd
import pytest
import skops.io
import yaml
from skops.io.exceptions import UntrustedTypesFoundException
from threadpoolctl import threadpool_limits

from service import skops_types, tracking
from service.contracts import DataContract, conform, contract_from_reference
from service.demo_data import make_stream
from service.settings import Config
from service.skops_types import UntrustedTypesError, check_saves_by_audit, dump_and_audit, exact_types, types_in
from service.train import fit_pipeline

ESTIMATORS = [
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.dummy.DummyClassifier",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):  # as in test_evaluate_and_train: a busy machine oversubscribed
        yield


def weather_config(estimator: str) -> Config:
    model = {"name": "weather", "task": "classification", "target": "weather", "ignore": ["date"]}
    model["estimator"] = estimator
    return Config.model_validate({"model": model, "data": {"reference": "r.csv", "current": "c/*.csv"}})


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_stream(n_batches=1, rows=400, reference_rows=1500, drift_at=1).reference


def fitted(estimator: str, reference: pd.DataFrame) -> tuple[object, DataContract, pd.DataFrame]:
    config = weather_config(estimator)
    contract = contract_from_reference(reference, config, "r.csv")
    frame = conform(reference, contract)
    return fit_pipeline(config, contract, frame), contract, frame


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_walk_names_every_type_skops_would_ask_to_trust(estimator: str, reference: pd.DataFrame) -> None:
    model, _, _ = fitted(estimator, reference)
    assert set(exact_types(model)) <= set(types_in(model))


def test_the_walk_names_only_types_found_in_the_pipeline(reference: pd.DataFrame) -> None:
    model, _, _ = fitted("sklearn.linear_model.LogisticRegression", reference)
    named = types_in(model)
    assert "sklearn.linear_model._logistic.LogisticRegression" in named
    assert not [name for name in named if "ensemble" in name or name.startswith(("os.", "subprocess."))]


class HoldsALockAndAModule:
    """A step no pickle can store (a lock) that keeps a module at hand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codec = json


def test_the_walk_stops_at_what_cannot_be_pickled_and_names_nothing_from_a_module() -> None:
    named = types_in([HoldsALockAndAModule()])
    assert f"{__name__}.HoldsALockAndAModule" in named
    assert not [name for name in named if name.startswith("json.")]


def saved_trust(folder: Path) -> list[str]:
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    return flavor["skops_trusted_types"]


def test_a_save_whose_walk_missed_a_type_trusts_skops_list_and_loads(
    reference: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a walk that names nothing, so MLflow's check of the save refuses the boosted trees' types
    model, contract, frame = fitted("sklearn.ensemble.HistGradientBoostingClassifier", reference)
    monkeypatch.setattr(tracking, "types_in", lambda model: [])
    # when
    tracking._save_model(model, tmp_path / "model", contract, frame, contract.feature_names)
    # then: saved again with skops' own list, and it loads and predicts as the fitted model does
    assert sorted(saved_trust(tmp_path / "model")) == sorted(exact_types(model))
    loaded = mlflow.sklearn.load_model(str(tmp_path / "model"))
    sample = frame[contract.feature_names].head(50)
    assert list(loaded.predict(sample)) == list(model.predict(sample))  # type: ignore[attr-defined]


def test_with_mlflows_own_check_a_save_whose_walk_missed_a_type_still_trusts_skops_list(
    reference: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an MLflow whose private save is not the one the audit replaces (its own check, a load, stays)
    # and a walk that names nothing
    check_saves_by_audit()
    monkeypatch.setattr(mlflow.sklearn, "_save_model", mlflow.sklearn._save_model.mlflows_own)
    monkeypatch.setattr(skops_types, "_MLFLOW_SAVE_PARAMETERS", ["another", "signature"])
    monkeypatch.setattr(tracking, "types_in", lambda model: [])
    model, contract, frame = fitted("sklearn.ensemble.HistGradientBoostingClassifier", reference)
    # when
    tracking._save_model(model, tmp_path / "model", contract, frame, contract.feature_names)
    # then MLflow's refusal is seen for what it is: saved again with skops' own list, and it loads
    assert not getattr(mlflow.sklearn._save_model, "audits_skops", False)
    assert sorted(saved_trust(tmp_path / "model")) == sorted(exact_types(model))
    sample = frame[contract.feature_names].head(50)
    loaded = mlflow.sklearn.load_model(str(tmp_path / "model"))
    assert list(loaded.predict(sample)) == list(model.predict(sample))  # type: ignore[attr-defined]


def test_a_save_trusts_the_walked_types(reference: pd.DataFrame, tmp_path: Path) -> None:
    model, contract, frame = fitted("sklearn.ensemble.HistGradientBoostingClassifier", reference)
    tracking._save_model(model, tmp_path / "model", contract, frame, contract.feature_names)
    assert saved_trust(tmp_path / "model") == types_in(model)
    assert json.loads((tmp_path / "model" / "input_example.json").read_text())  # the rest of the save is there


def test_a_save_checks_its_file_without_loading_the_model_back(
    reference: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: skops' load fails if called; MLflow's own check of a skops save calls it
    model, contract, frame = fitted("sklearn.ensemble.HistGradientBoostingClassifier", reference)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the save loaded the model back")

    monkeypatch.setattr(skops.io, "load", no_load)
    # when
    tracking._save_model(model, tmp_path / "model", contract, frame, contract.feature_names)
    # then: saved with the walked list, and the file holds no type beyond it
    assert saved_trust(tmp_path / "model") == types_in(model)
    written = skops.io.get_untrusted_types(file=tmp_path / "model" / "model.skops")
    assert set(written) <= set(types_in(model))


@pytest.mark.parametrize("drop", ["nothing", "the trees' type"])
def test_the_audit_refuses_exactly_what_skops_load_refuses(drop: str, reference: pd.DataFrame, tmp_path: Path) -> None:
    model, _, _ = fitted("sklearn.ensemble.HistGradientBoostingClassifier", reference)
    trusted = [name for name in exact_types(model) if drop == "nothing" or "TreePredictor" not in name]
    path = str(tmp_path / "model.skops")
    try:
        dump_and_audit(model, path, trusted)
        audit_refused = False
    except UntrustedTypesError as exc:
        audit_refused = True
        assert any("TreePredictor" in name for name in exc.untrusted)
        assert not Path(path).exists()  # a refused file is not left behind
    skops.io.dump(model, path)
    try:
        skops.io.load(path, trusted=trusted)
        load_refused = False
    except UntrustedTypesFoundException:
        load_refused = True
    assert audit_refused == load_refused == (drop != "nothing")


def test_a_save_in_another_format_is_left_to_mlflow(reference: pd.DataFrame, tmp_path: Path) -> None:
    model, _, _ = fitted("sklearn.linear_model.LogisticRegression", reference)
    check_saves_by_audit()
    mlflow.sklearn.save_model(model, str(tmp_path / "model"), serialization_format="cloudpickle")
    assert (tmp_path / "model" / "model.pkl").exists()
