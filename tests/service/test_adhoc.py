"""The ad-hoc check of two files (``driftloop drift``): files are checked a column at a time,
with the verdicts, errors and refusals of a check of the whole tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import service.adhoc as adhoc
import service.columns as columns
from service.errors import ContractViolation
from service.settings import DriftSection


def table(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """Seven columns (more than one group per core): numbers of varied shapes and strings with gaps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "normal": rng.normal(drift, 1, rows),
            "skewed": rng.lognormal(0.5 * drift, 0.7, rows),
            "few": rng.choice([1.0, 2.0, 3.0], rows, p=[0.5 - 0.2 * drift, 0.3, 0.2 + 0.2 * drift]),
            "steady": rng.normal(0, 1, rows),
            "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.5 - 0.3 * drift, 0.3, 0.2 + 0.3 * drift]),
            "plan": rng.choice(["free", "pro"], rows).astype(object),
            "id": np.arange(rows),
        }
    )
    frame.loc[::13, "plan"] = None
    return frame


def write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture
def reference(tmp_path: Path) -> str:
    return write(table(4000, seed=1), tmp_path / "reference.parquet")


@pytest.mark.parametrize("drift", [0.0, 1.0], ids=["no drift", "drift"])
def test_parquet_files_checked_by_columns_give_the_whole_table_verdicts(
    reference: str, tmp_path: Path, drift: float
) -> None:
    # given a reference and a batch as parquet, and the same data as csv (which is checked whole)
    current = write(table(3000, seed=2, drift=drift), tmp_path / "current.parquet")
    as_csv = [tmp_path / "reference.csv", tmp_path / "current.csv"]
    for source, target in zip((reference, current), as_csv, strict=True):
        pd.read_parquet(source).to_csv(target, index=False)
    # when both pairs are checked
    by_columns = adhoc.check_files(reference, current, ["id"], DriftSection())
    whole = adhoc.check_files(str(as_csv[0]), str(as_csv[1]), ["id"], DriftSection())
    # then verdicts, scores and row counts are the same, column for column, in the files' order
    assert by_columns == whole
    assert [c.column for c in by_columns.columns] == ["normal", "skewed", "few", "steady", "city", "plan"]
    assert by_columns.n_reference == 4000 and by_columns.n_current == 3000
    assert by_columns.dataset_drift is (drift > 0) and by_columns.html == ""


def test_parquet_files_are_read_a_column_at_a_time(
    reference: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a batch as parquet, and a record of every read: of whole tables, and of columns
    current = write(table(3000, seed=2), tmp_path / "current.parquet")
    monkeypatch.setattr(adhoc, "read_window", lambda *args, **kwargs: pytest.fail("a whole table was read"))
    reads: list[str] = []
    read_column = columns._File.column

    def recording(self: columns._File, name: str) -> pd.Series:
        reads.append(name)
        return read_column(self, name)

    monkeypatch.setattr(columns._File, "column", recording)
    # when checked
    adhoc.check_files(reference, current, ["id"], DriftSection())
    # then every checked column was read alone, once from each file, and the ignored one not at all
    assert sorted(reads) == sorted(["normal", "skewed", "few", "steady", "city", "plan"] * 2)


def test_a_parquet_batch_missing_a_column_is_refused_from_its_schema(reference: str, tmp_path: Path) -> None:
    # given a batch without one column and with a column the reference lacks
    current = write(table(300, seed=2).drop(columns=["skewed"]).assign(extra=1.0), tmp_path / "current.parquet")
    # when checked
    with pytest.raises(ContractViolation) as caught:
        adhoc.check_files(reference, current, ["id"], DriftSection())
    # then the batch file is named with both problems
    message = str(caught.value)
    assert current in message and "column 'skewed' is missing" in message
    assert "column 'extra' is not in the contract" in message


def test_every_problem_of_a_parquet_batch_is_reported_at_once_across_column_groups(
    reference: str, tmp_path: Path
) -> None:
    # given a batch with infinite values in its first column and an all-null column further on
    bad = table(300, seed=2)
    bad.loc[:4, "normal"] = np.inf
    bad["plan"] = None
    current = write(bad, tmp_path / "current.parquet")
    # when checked
    with pytest.raises(ContractViolation) as caught:
        adhoc.check_files(reference, current, ["id"], DriftSection())
    # then both problems are named, under the batch's name
    assert caught.value.source == current
    assert any("column 'normal' has 5 infinite values" in problem for problem in caught.value.problems)
    assert any("column 'plan' is entirely null" in problem for problem in caught.value.problems)


def test_an_empty_parquet_batch_is_named_once(reference: str, tmp_path: Path) -> None:
    # given a batch with the right columns and no rows
    current = write(table(300, seed=2).iloc[:0], tmp_path / "current.parquet")
    # when checked
    with pytest.raises(ContractViolation) as caught:
        adhoc.check_files(reference, current, ["id"], DriftSection())
    # then the missing rows are one problem, not one per group of columns
    assert caught.value.problems == ["has 0 rows: expected at least 1"]


def test_an_ignored_column_missing_from_a_parquet_reference_is_named(reference: str, tmp_path: Path) -> None:
    current = write(table(300, seed=2), tmp_path / "current.parquet")
    with pytest.raises(ContractViolation) as caught:
        adhoc.check_files(reference, current, ["nope"], DriftSection())
    assert caught.value.source == reference
    assert caught.value.problems == ["column 'nope' given to --ignore is missing"]


def test_a_stored_index_is_not_checked_as_a_column(tmp_path: Path) -> None:
    # given parquet files written with their (named) index, as pandas does by default
    reference, current = table(2000, seed=1).set_index("id"), table(1500, seed=2).set_index("id")
    reference.to_parquet(tmp_path / "reference.parquet")
    current.to_parquet(tmp_path / "current.parquet")
    # when checked
    result = adhoc.check_files(
        str(tmp_path / "reference.parquet"), str(tmp_path / "current.parquet"), [], DriftSection()
    )
    # then the index is not among the checked columns, as when the whole tables are read
    assert "id" not in [c.column for c in result.columns] and len(result.columns) == 6
