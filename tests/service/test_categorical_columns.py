"""String columns read from parquet as pandas Categoricals: read, hashed, validated, conformed and tested for
drift from their codes, with the same outcome as object strings and without making a string per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.contracts import conform, contract_for_columns, validate_batch
from service.data import frame_hash, read_frame, read_window
from service.drift import stats as drift_stats
from service.drift.check import check_drift
from service.errors import ContractViolation
from service.monitor import read_batch
from service.settings import DriftSection


def mixed(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "lyon", "nice", "lille"], rows, p=[0.4 - 0.3 * shift, 0.3, 0.2, 0.1 + 0.3 * shift])
    plan = rng.choice(["free", "pro"], rows, p=[0.7 - 0.4 * shift, 0.3 + 0.4 * shift]).astype(object)
    plan[::11] = None  # missing values in a string column
    return pd.DataFrame({"age": rng.normal(40 + 5 * shift, 8, rows), "city": city, "plan": plan})


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    mixed(3000, seed=1).to_parquet(reference, index=False)
    mixed(2000, seed=2, shift=1.0).to_parquet(current, index=False)
    return reference, current


def no_strings_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any conversion of a Categorical to a string per row fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Categorical was converted to one value per row")

    monkeypatch.setattr(pd.Categorical, "astype", refuse)
    monkeypatch.setattr(pd.Categorical, "__array__", refuse)


def test_parquet_strings_read_as_categoricals_hash_as_the_object_strings_they_replace(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given a parquet file with string columns, one with missing values, and a csv copy of it
    reference, _ = files
    as_csv = tmp_path / "reference.csv"
    pd.read_parquet(reference).to_csv(as_csv, index=False)
    # when it is read with categories, and as before
    categorical, strings = read_frame(str(reference), categories=True), read_frame(str(reference))
    # then strings come as Categoricals, numbers as before, and the content hash is unchanged (a batch
    # seen before is still recognised), also against the csv copy
    assert isinstance(categorical["city"].dtype, pd.CategoricalDtype)
    assert isinstance(categorical["plan"].dtype, pd.CategoricalDtype)
    assert categorical["age"].dtype == "float64" and strings["city"].dtype == object
    assert categorical["plan"].isna().sum() == strings["plan"].isna().sum() > 0
    assert frame_hash(categorical) == frame_hash(strings) == frame_hash(read_frame(str(as_csv)))


def test_a_window_of_parquet_files_with_different_categories_stays_categorical(tmp_path: Path) -> None:
    # given two batches whose string column has different values
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"city": ["paris", "lyon"], "n": [1.0, 2.0]}).to_parquet(first, index=False)
    pd.DataFrame({"city": ["nice", "paris", None], "n": [3.0, 4.0, 5.0]}).to_parquet(second, index=False)
    # when read as one window
    window = read_window([str(first), str(second)], categories=True)
    # then the column is one Categorical holding every value, in file order
    assert isinstance(window["city"].dtype, pd.CategoricalDtype)
    assert window["city"].tolist()[:4] == ["paris", "lyon", "nice", "paris"] and pd.isna(window["city"].iloc[4])
    assert frame_hash(window) == frame_hash(read_window([str(first), str(second)]))


def test_categoricals_are_validated_conformed_and_tested_without_a_string_per_row(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given both files read with categories, and any per-row string conversion of a Categorical refused
    reference_path, current_path = files
    reference = read_frame(str(reference_path), categories=True)
    current = read_frame(str(current_path), categories=True)
    no_strings_per_row(monkeypatch)
    # when the contract is drawn, the batch validated and conformed, and the drift checked
    contract = contract_for_columns(reference, [], "reference.parquet")
    validate_batch(current, contract, "current.parquet", require_target=False)
    result = check_drift(
        conform(reference, contract),
        conform(current, contract),
        numerical=contract.numerical,
        categorical=contract.categorical,
        settings=DriftSection(),
    )
    # then the categorical columns stay categorical and their verdicts are those of object strings
    monkeypatch.undo()
    assert isinstance(conform(current, contract)["city"].dtype, pd.CategoricalDtype)
    strings = check_drift(
        *(conform(pd.read_parquet(path), contract) for path in files),
        numerical=contract.numerical,
        categorical=contract.categorical,
        settings=DriftSection(),
    )
    assert result == strings
    assert {"city", "plan"} <= set(result.drifted_columns())


def test_categories_without_rows_are_neither_in_the_contract_nor_counted_as_distinct_values() -> None:
    # given a Categorical that declares a category no row has
    column = pd.Series(pd.Categorical(["a", "b", "a", None], categories=["a", "b", "never"]))
    # when its contract and drift side are drawn
    contract = contract_for_columns(pd.DataFrame({"c": column}), [], "f.parquet")
    side = drift_stats.prepare(column, numeric=False)
    # then only the values that occur count: the test choice depends on the number of distinct values
    assert contract.features[0].categories == frozenset({"a", "b"})
    assert side.n_distinct == 2 and side.size == 3
    assert side.counts.to_dict() == {"a": 2, "b": 1}


def test_unseen_categories_of_a_categorical_batch_are_counted_and_named() -> None:
    # given a contract that knows "a" and "b", with no unseen value allowed
    reference = pd.DataFrame({"c": pd.Categorical(["a", "b"] * 5)})
    contract = contract_for_columns(reference, [], "ref.parquet")
    contract = type(contract)(contract.features, None, (), 1, 0.0)
    batch = pd.DataFrame({"c": pd.Categorical(["a", "z", "y", "z", None], categories=["a", "y", "z", "unused"])})
    # when a batch with new values is validated
    with pytest.raises(ContractViolation) as caught:
        validate_batch(batch, contract, "cur.parquet", require_target=False)
    # then the share counts rows (3 of 4 non-null) and the examples are the new values that occur
    assert "column 'c' has 75.0% values not seen in the reference (e.g. ['y', 'z'])" in str(caught.value)


def test_strings_in_a_numeric_column_read_as_categorical_name_the_dtype_and_values() -> None:
    # given a contract with a numeric column, and a batch where it holds strings, read as categories
    contract = contract_for_columns(pd.DataFrame({"n": [1.0, 2.0]}), [], "ref.parquet")
    batch = pd.DataFrame({"n": pd.Categorical(["1.5", "hot", "2"])})
    # when validated
    with pytest.raises(ContractViolation) as caught:
        validate_batch(batch, contract, "cur.parquet", require_target=False)
    # then the message is the one object strings get
    assert "column 'n' has dtype object: expected numeric values (found e.g. ['hot'])" in str(caught.value)


def test_conform_shares_the_columns_that_already_fit() -> None:
    # given a frame whose numbers are floats already and whose strings are a Categorical
    frame = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": pd.Categorical(["a", "b", "a"])})
    contract = contract_for_columns(frame, [], "f.parquet")
    # when conformed
    conformed = conform(frame, contract)
    # then no column was copied: a million-row batch is not held twice
    assert np.shares_memory(conformed["n"].to_numpy(), frame["n"].to_numpy())
    assert np.shares_memory(conformed["c"].cat.codes.to_numpy(), frame["c"].cat.codes.to_numpy())


def test_conform_gives_a_categorical_of_numbers_string_categories() -> None:
    # given a categorical column whose categories are numbers
    frame = pd.DataFrame({"plan": pd.Categorical([1, 2, None, 1])})
    contract = contract_for_columns(pd.DataFrame({"plan": ["1", "2"]}), [], "ref.csv")
    # when conformed
    conformed = conform(frame, contract)
    # then it stays categorical, with the values as strings
    assert isinstance(conformed["plan"].dtype, pd.CategoricalDtype)
    assert conformed["plan"].tolist()[:2] == ["1", "2"] and pd.isna(conformed["plan"].iloc[2])


def test_evidently_engine_and_report_take_categorical_frames_with_the_fast_engines_verdicts(
    files: tuple[Path, Path],
) -> None:
    # given both files read with categories, conformed
    reference, current = (read_frame(str(path), categories=True) for path in files)
    contract = contract_for_columns(reference, [], "reference.parquet")
    reference, current = conform(reference, contract), conform(current, contract)
    kinds = {"numerical": contract.numerical, "categorical": contract.categorical}
    # when Evidently's engine checks them, and the fast engine draws its (sampled) report
    full = check_drift(reference, current, settings=DriftSection(engine="evidently"), **kinds)
    fast = check_drift(reference, current, settings=DriftSection(report_rows=2000), with_report=True, **kinds)
    # then both give the same verdicts, and the report is Evidently's page with the sample noted
    assert [c.drifted for c in full.columns] == [c.drifted for c in fast.columns]
    assert full.dataset_drift == fast.dataset_drift
    assert "random sample of 2,000 of 3,000 reference rows" in fast.html


def test_the_monitor_reads_a_parquet_batch_as_categories_under_the_hash_it_had_as_strings(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    # given a contract and a parquet batch, hashed as the monitor hashed it before (object strings)
    reference, current = files
    contract = contract_for_columns(pd.read_parquet(reference), [], str(reference))
    before = frame_hash(pd.read_parquet(current))
    # when the monitor reads it
    frame, batch_hash = read_batch(str(current), contract)
    # then its strings are categories, and the hash is the one recorded for it before: not a new batch
    assert isinstance(frame["city"].dtype, pd.CategoricalDtype)
    assert batch_hash == before
