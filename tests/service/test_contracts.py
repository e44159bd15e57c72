"""Tests of service.contracts: drawing a data contract from the demo reference and checking batches."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from service.contracts import (
    ColumnSpec,
    DataContract,
    conform,
    contract_for_columns,
    contract_from_dict,
    contract_from_reference,
    contract_to_dict,
    drop_unlabelled,
    validate_batch,
)
from service.demo_data import make_stream
from service.errors import ContractViolation
from service.settings import Config

SOURCE = "incoming/batch_001.csv"
NUMERIC = ["temperature", "humidity", "pressure", "wind_speed", "cloud_cover"]
CATEGORICAL = ["region", "season"]


def weather_config(**sections: object) -> Config:
    model = {"name": "weather", "task": "classification", "target": "weather", "ignore": ["date"]}
    model |= sections.pop("model", {})  # type: ignore[arg-type]
    return Config.model_validate(
        {"model": model, "data": {"reference": "reference.csv", "current": "incoming/*.csv"}, **sections}
    )


@pytest.fixture(scope="module")
def stream():
    return make_stream(n_batches=2, rows=200, reference_rows=400)


@pytest.fixture(scope="module")
def reference(stream) -> pd.DataFrame:
    return stream.reference


@pytest.fixture(scope="module")
def contract(reference: pd.DataFrame) -> DataContract:
    return contract_from_reference(reference, weather_config(), "reference.csv")


@pytest.fixture
def batch(stream) -> pd.DataFrame:
    """A fresh, valid 200-row batch (a copy, so a test may spoil it)."""
    return stream.batches[0].copy()


def violation(frame: pd.DataFrame, contract: DataContract, *, require_target: bool = True) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        validate_batch(frame, contract, SOURCE, require_target=require_target)
    return caught.value


def with_unseen_regions(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Replace the region of the first ``count`` rows with one the reference never had."""
    return frame.assign(region=np.where(np.arange(len(frame)) < count, "mars", frame["region"]))


# --- the contract drawn from the reference ------------------------------------------------------------


def test_contract_holds_every_column_but_target_and_ignored_ones_with_its_kind(
    contract: DataContract,
) -> None:
    # given: the demo reference (sensors, region, season, date, weather) and `ignore: [date]`
    # when: the contract fixture drew it
    # then
    assert contract.feature_names == NUMERIC + CATEGORICAL
    assert contract.numerical == NUMERIC
    assert contract.categorical == CATEGORICAL
    assert contract.target == "weather"
    assert contract.ignore == ("date",)
    assert (contract.min_rows, contract.max_unseen_category_share) == (10, 0.05)
    region = next(spec for spec in contract.features if spec.name == "region")
    assert region.categories == frozenset({"north", "south", "east", "west", "coast"})


def test_configured_features_limit_the_contract(reference: pd.DataFrame) -> None:
    # given
    config = weather_config(model={"features": ["humidity", "region"]})
    # when
    contract = contract_from_reference(reference, config, "reference.csv")
    # then
    assert contract.feature_names == ["humidity", "region"]


@pytest.mark.parametrize(
    ("sections", "column"),
    [
        ({"model": {"features": ["humidity", "altitude"]}}, "altitude"),
        ({"model": {"target": "label"}}, "label"),
        ({"drift": {"columns": ["humidity", "visibility"]}}, "visibility"),
    ],
    ids=["feature", "target", "drift-column"],
)
def test_config_naming_a_column_absent_from_the_reference_is_a_violation(
    reference: pd.DataFrame, sections: dict[str, object], column: str
) -> None:
    # given: the config names a column the reference does not have
    config = weather_config(**sections)
    # when
    with pytest.raises(ContractViolation) as caught:
        contract_from_reference(reference, config, "data/reference.csv")
    # then
    assert caught.value.source == "data/reference.csv"
    assert caught.value.problems == [f"column {column!r} named in the config is missing"]
    assert str(caught.value).startswith("data/reference.csv breaks the data contract:")


def test_empty_reference_is_a_violation(reference: pd.DataFrame) -> None:
    # given: the header without rows
    # when
    with pytest.raises(ContractViolation) as caught:
        contract_from_reference(reference.head(0), weather_config(), "data/reference.csv")
    # then
    assert caught.value.problems == ["has no rows: the reference must hold data to learn from"]


# --- checking batches ------------------------------------------------------------------------------


def test_good_batch_passes(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: a batch from the same stream as the reference
    # when / then: no exception
    validate_batch(batch, contract, SOURCE, require_target=True)


def test_ignored_column_may_be_absent(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: the batch has no `date`, which the config ignores
    # when / then
    validate_batch(batch.drop(columns="date"), contract, SOURCE, require_target=True)


BadBatch = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda f: f.drop(columns="humidity"), "column 'humidity' is missing"),
        (
            lambda f: f.assign(station_id=1),
            (
                "column 'station_id' is not in the contract: expected only ['cloud_cover', 'date', "
                "'humidity', 'pressure', 'region', 'season', 'temperature', 'weather', 'wind_speed']"
            ),
        ),
        (
            lambda f: f.assign(temperature=f["temperature"].astype(object).where(f.index > 0, "hot")),
            "column 'temperature' has dtype object: expected numeric values (found e.g. ['hot'])",
        ),
        (lambda f: f.head(0), "has 0 rows: expected at least 10"),
        (lambda f: f.head(5), "has 5 rows: expected at least 10"),
        (lambda f: f.assign(humidity=np.nan), "column 'humidity' is entirely null: expected numeric values"),
        (lambda f: f.assign(region=None), "column 'region' is entirely null: expected categorical values"),
        (lambda f: f.assign(weather=None), "column 'weather' (the target) is entirely null"),
        (
            lambda f: with_unseen_regions(f, 20),
            ("column 'region' has 10.0% values not seen in the reference (e.g. ['mars']): expected at most 5.0%"),
        ),
        (
            lambda f: f.assign(weather=f["weather"].where(f.index >= 20)),
            "column 'weather' (the target) is missing in 10.0% of rows (20 of 200): expected at most 5.0%",
        ),
        (
            lambda f: f.assign(humidity=f["humidity"].where(f.index >= 3, np.inf).where(f.index != 3, -np.inf)),
            "column 'humidity' has 4 infinite values: expected finite numbers",
        ),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "string-in-numeric-column",
        "no-rows",
        "fewer-than-min-rows",
        "all-null-numeric",
        "all-null-categorical",
        "all-null-target",
        "unseen-categories",
        "missing-target-share",
        "infinite-values",
    ],
)
def test_bad_batch_is_a_violation_naming_the_file_the_column_and_what_was_expected(
    batch: pd.DataFrame, contract: DataContract, spoil: BadBatch, problem: str
) -> None:
    # given: a good batch spoiled in one way
    bad = spoil(batch)
    # when
    caught = violation(bad, contract)
    # then: exactly that problem is reported, under the file's name
    assert caught.source == SOURCE
    assert caught.problems == [problem]
    assert str(caught) == f"{SOURCE} breaks the data contract:\n  - {problem}"


def test_every_problem_of_a_batch_is_reported_at_once(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: two missing columns and one extra
    bad = batch.drop(columns=["humidity", "season"]).assign(station_id=1)
    # when
    caught = violation(bad, contract)
    # then
    assert caught.problems[:2] == ["column 'humidity' is missing", "column 'season' is missing"]
    assert caught.problems[2].startswith("column 'station_id' is not in the contract")
    assert len(caught.problems) == 3


def test_unseen_categories_within_the_allowed_share_pass(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: 5 of 200 regions (2.5%) are new, under the default 5%
    few_new = with_unseen_regions(batch, 5)
    # when / then
    validate_batch(few_new, contract, SOURCE, require_target=True)


def test_a_larger_allowed_share_of_unseen_categories_is_honoured(reference: pd.DataFrame, batch: pd.DataFrame) -> None:
    # given: 10% new regions, and a contract that allows 20%
    contract = contract_from_reference(
        reference, weather_config(contract={"max_unseen_category_share": 0.2}), "reference.csv"
    )
    # when / then
    validate_batch(with_unseen_regions(batch, 20), contract, SOURCE, require_target=True)


def test_min_rows_comes_from_the_config(reference: pd.DataFrame, batch: pd.DataFrame) -> None:
    # given
    contract = contract_from_reference(reference, weather_config(contract={"min_rows": 500}), "reference.csv")
    # when
    caught = violation(batch, contract)
    # then
    assert caught.problems == ["has 200 rows: expected at least 500"]


def test_batch_without_target_passes_when_the_target_is_not_required(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given: an unlabeled batch, as scored by inference
    unlabeled = batch.drop(columns="weather")
    # when / then: fine for scoring, but not for training
    validate_batch(unlabeled, contract, SOURCE, require_target=False)
    assert violation(unlabeled, contract).problems == ["column 'weather' is missing"]


def test_batch_with_target_still_passes_when_the_target_is_not_required(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given / when / then
    validate_batch(batch, contract, SOURCE, require_target=False)


# --- conform ---------------------------------------------------------------------------------------


def test_conform_makes_categories_strings_or_none_and_numbers_floats(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given: integer temperatures and some missing regions
    raw = batch.assign(
        temperature=batch["temperature"].round().astype("int64"),
        region=batch["region"].where(batch.index >= 3, None),
    )
    # when
    conformed = conform(raw, contract)
    # then
    assert all(conformed[name].dtype == "float64" for name in NUMERIC)
    assert conformed["temperature"].tolist() == [float(v) for v in raw["temperature"]]
    assert conformed["region"].tolist()[:3] == [None, None, None]
    assert all(isinstance(value, str) for value in conformed["region"].iloc[3:])
    assert conformed["region"].iloc[3:].tolist() == batch["region"].iloc[3:].tolist()
    assert raw["temperature"].dtype == "int64"  # the input is left as it was


def test_conform_turns_non_string_categories_into_strings() -> None:
    # given: a categorical column read as numbers in a batch
    contract = DataContract((ColumnSpec("plan", "categorical", frozenset({"1", "2"})),), None, (), 1, 0.0)
    frame = pd.DataFrame({"plan": [1, 2, None]}, dtype=object)
    # when
    conformed = conform(frame, contract)
    # then
    assert conformed["plan"].tolist() == ["1", "2", None]


# --- serialisation ---------------------------------------------------------------------------------


def test_contract_round_trips_through_a_dict_and_json(contract: DataContract) -> None:
    # given
    payload = contract_to_dict(contract)
    # when
    direct = contract_from_dict(payload)
    via_json = contract_from_dict(json.loads(json.dumps(payload)))
    # then
    assert direct == contract
    assert via_json == contract
    assert payload["features"][5] == {  # type: ignore[index]
        "name": "region",
        "kind": "categorical",
        "categories": ["coast", "east", "north", "south", "west"],
    }


# --- ad-hoc contracts ------------------------------------------------------------------------------


def test_contract_for_columns_covers_every_column_but_the_ignored_ones(reference: pd.DataFrame) -> None:
    # given / when
    contract = contract_for_columns(reference, ["date"], "a.csv")
    # then: no target, so the label is just another (categorical) column
    assert contract.target is None
    assert contract.feature_names == [*NUMERIC, *CATEGORICAL, "weather"]
    assert contract.categorical == [*CATEGORICAL, "weather"]
    assert contract.ignore == ("date",)


def test_contract_for_columns_rejects_an_ignored_column_that_does_not_exist(reference: pd.DataFrame) -> None:
    # given: --ignore names a column the file lacks
    # when
    with pytest.raises(ContractViolation) as caught:
        contract_for_columns(reference, ["date", "station"], "a.csv")
    # then
    assert caught.value.source == "a.csv"
    assert caught.value.problems == ["column 'station' given to --ignore is missing"]


def test_contract_for_columns_accepts_a_small_batch_of_the_same_columns(
    reference: pd.DataFrame, batch: pd.DataFrame
) -> None:
    # given: an ad-hoc contract needs only one row and allows any new category
    contract = contract_for_columns(reference, ["date"], "a.csv")
    # when / then
    validate_batch(with_unseen_regions(batch.head(1), 1), contract, "b.csv", require_target=True)


# --- missing targets ------------------------------------------------------------------------------


def without_labels(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Blank the target of the first ``count`` rows."""
    return frame.assign(weather=frame["weather"].where(frame.index >= count))


def test_a_few_rows_without_a_target_pass_validation(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: 10 of 200 labels (5%) missing, the default limit
    # when / then
    validate_batch(without_labels(batch, 10), contract, SOURCE, require_target=True)


def test_rows_without_a_target_are_dropped_before_training_and_counted(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given: 8 of 200 rows have no label
    unlabelled = without_labels(batch, 8)
    # when
    labelled, dropped = drop_unlabelled(unlabelled, contract, SOURCE)
    # then: the 192 labelled rows, in order, with a fresh index
    assert dropped == 8
    assert len(labelled) == 192
    assert labelled["weather"].notna().all()
    assert labelled.index.tolist() == list(range(192))
    assert labelled["temperature"].tolist() == batch["temperature"].iloc[8:].tolist()


def test_too_many_rows_without_a_target_stop_training_naming_file_column_and_share(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given: 30 of 200 labels (15%) missing, above the default 5%
    # when
    with pytest.raises(ContractViolation) as caught:
        drop_unlabelled(without_labels(batch, 30), contract, SOURCE)
    # then
    assert caught.value.source == SOURCE
    assert caught.value.problems == [
        "column 'weather' (the target) is missing in 15.0% of rows (30 of 200): expected at most 5.0%"
    ]


def test_allowed_share_of_missing_targets_comes_from_the_config(reference: pd.DataFrame, batch: pd.DataFrame) -> None:
    # given: a contract that accepts up to 20% unlabelled rows
    config = weather_config(contract={"max_missing_target_share": 0.2})
    contract = contract_from_reference(reference, config, "reference.csv")
    # when
    labelled, dropped = drop_unlabelled(without_labels(batch, 30), contract, SOURCE)
    # then
    assert contract.max_missing_target_share == 0.2
    validate_batch(without_labels(batch, 30), contract, SOURCE, require_target=True)
    assert (len(labelled), dropped) == (170, 30)


def test_a_fully_labelled_frame_is_returned_whole(batch: pd.DataFrame, contract: DataContract) -> None:
    # given / when
    labelled, dropped = drop_unlabelled(batch, contract, SOURCE)
    # then
    assert dropped == 0
    pd.testing.assert_frame_equal(labelled, batch.reset_index(drop=True))


# --- infinite and out-of-range numbers ------------------------------------------------------------


def test_infinite_values_in_the_reference_are_a_violation(reference: pd.DataFrame) -> None:
    # given: a reference with two infinite pressures
    spoiled = reference.assign(pressure=reference["pressure"].where(reference.index >= 2, np.inf))
    # when
    with pytest.raises(ContractViolation) as caught:
        contract_from_reference(spoiled, weather_config(), "data/reference.csv")
    # then
    assert caught.value.problems == ["column 'pressure' has 2 infinite values: expected finite numbers"]


def test_infinite_target_of_a_regression_batch_is_a_violation(reference: pd.DataFrame) -> None:
    # given: humidity as a regression target, and a batch with one infinite label
    config = weather_config(model={"task": "regression", "target": "humidity", "ignore": ["date", "weather"]})
    contract = contract_from_reference(reference, config, "reference.csv")
    bad = reference.assign(humidity=reference["humidity"].where(reference.index > 0, np.inf))
    # when
    caught = violation(bad, contract)
    # then
    assert caught.problems == ["column 'humidity' has 1 infinite values: expected finite numbers"]


def test_numeric_columns_record_the_references_range(reference: pd.DataFrame, contract: DataContract) -> None:
    # given / when: the contract fixture drew it
    specs = {spec.name: spec for spec in contract.features}
    # then: each numeric column has the reference's min and max; categories have no range
    for name in NUMERIC:
        assert (specs[name].minimum, specs[name].maximum) == (reference[name].min(), reference[name].max())
    assert (specs["region"].minimum, specs["region"].maximum) == (None, None)
    assert (contract.max_out_of_range_share, contract.range_margin) == (0.01, 0.5)


def test_values_far_outside_the_references_range_are_a_violation_naming_column_range_and_examples(
    batch: pd.DataFrame, contract: DataContract
) -> None:
    # given: 5 of 200 humidities (2.5%) read -500, e.g. a sensor's error code
    humidity = next(spec for spec in contract.features if spec.name == "humidity")
    low, high = humidity.minimum, humidity.maximum
    margin = (high - low) * 0.5  # type: ignore[operator]
    bad = batch.assign(humidity=batch["humidity"].where(batch.index >= 5, -500.0))
    # when
    caught = violation(bad, contract)
    # then
    accepted = f"[{low - margin:g}, {high + margin:g}]"  # type: ignore[operator]
    assert caught.problems == [
        (
            f"column 'humidity' has 2.5% values outside {accepted} (the reference's range [{low:g}, {high:g}] "
            "widened by 50% of its width; e.g. [-500.0]): expected at most 1.0%"
        )
    ]


def test_a_value_out_of_range_now_and_then_is_tolerated(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: 2 of 200 humidities (1%, the default share) far out of range
    few = batch.assign(humidity=batch["humidity"].where(batch.index >= 2, -500.0))
    # when / then
    validate_batch(few, contract, SOURCE, require_target=True)


def test_values_a_little_beyond_the_references_extremes_pass(batch: pd.DataFrame, contract: DataContract) -> None:
    # given: a fifth of the batch just above the reference's highest pressure (within the margin)
    pressure = next(spec for spec in contract.features if spec.name == "pressure")
    above = batch.assign(pressure=batch["pressure"].where(batch.index >= 40, pressure.maximum + 1.0))  # type: ignore[operator]
    # when / then
    validate_batch(above, contract, SOURCE, require_target=True)


def test_a_margin_of_zero_holds_batches_to_the_exact_reference_range(
    reference: pd.DataFrame, batch: pd.DataFrame
) -> None:
    # given: no margin, and 4 of 200 pressures (2%) just above the reference's highest
    contract = contract_from_reference(reference, weather_config(contract={"range_margin": 0.0}), "reference.csv")
    top = reference["pressure"].max()
    above = batch.assign(pressure=batch["pressure"].where(batch.index >= 4, top + 1.0))
    # when
    caught = violation(above, contract)
    # then
    assert caught.problems[0].startswith(f"column 'pressure' has 2.0% values outside [{reference['pressure'].min():g}")


def test_drifted_demo_batches_are_not_mistaken_for_bad_data() -> None:
    # given: batches from the demo's shifted climate (warmer, more humid, lower pressure)
    drifted = make_stream(n_batches=3, rows=1000, reference_rows=400, drift_at=1)
    contract = contract_from_reference(drifted.reference, weather_config(), "reference.csv")
    # when / then: every one passes, so the drift check gets to see it
    for frame in drifted.batches:
        validate_batch(frame, contract, SOURCE, require_target=True)


def test_ad_hoc_contracts_accept_any_range(reference: pd.DataFrame, batch: pd.DataFrame) -> None:
    # given: comparing two arbitrary files, where a new range is the drift being asked about
    contract = contract_for_columns(reference, ["date"], "a.csv")
    far = batch.assign(pressure=batch["pressure"] + 500)
    # when / then
    validate_batch(far, contract, "b.csv", require_target=False)


# --- stored contracts -----------------------------------------------------------------------------


def test_numeric_ranges_and_new_limits_are_stored(contract: DataContract) -> None:
    # given / when
    payload = contract_to_dict(contract)
    # then
    humidity = next(spec for spec in contract.features if spec.name == "humidity")
    assert payload["features"][1] == {  # type: ignore[index]
        "name": "humidity",
        "kind": "numeric",
        "categories": [],
        "min": humidity.minimum,
        "max": humidity.maximum,
    }
    assert (payload["max_missing_target_share"], payload["max_out_of_range_share"], payload["range_margin"]) == (
        0.05,
        0.01,
        0.5,
    )


def test_contract_stored_before_ranges_reads_with_defaults(contract: DataContract, batch: pd.DataFrame) -> None:
    # given: a contract as stored by an older driftloop, without ranges or the newer limits
    payload = contract_to_dict(contract)
    for key in ("max_missing_target_share", "max_out_of_range_share", "range_margin"):
        del payload[key]
    for item in payload["features"]:  # type: ignore[attr-defined]
        item.pop("min", None)
        item.pop("max", None)
    # when
    old = contract_from_dict(json.loads(json.dumps(payload)))
    # then: unbounded ranges, default limits
    assert all((spec.minimum, spec.maximum) == (None, None) for spec in old.features)
    assert (old.max_missing_target_share, old.max_out_of_range_share, old.range_margin) == (0.05, 0.01, 0.5)
    validate_batch(batch.assign(humidity=-500.0), old, SOURCE, require_target=True)
    assert violation(without_labels(batch, 30), old).problems[0].startswith("column 'weather' (the target) is missing")
