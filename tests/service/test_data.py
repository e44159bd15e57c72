"""Tests of service.data: listing, reading and writing batches in a temporary folder, and hashing them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from service.data import frame_hash, list_batches, read_frame, read_window, write_frame
from service.errors import DataSourceError


@pytest.fixture
def frame() -> pd.DataFrame:
    """A small batch with integer, float and text columns."""
    return pd.DataFrame(
        {
            "temperature": [12.5, 18.25, -3.0, 7.75],
            "visits": [3, 0, 12, 7],
            "region": ["north", "coast", "south", "east"],
            "weather": ["sunny", "rainy", "cloudy", "rainy"],
        }
    )


@pytest.fixture
def batch_folder(tmp_path: Path, frame: pd.DataFrame) -> Path:
    """A folder with three batches written out of name order, and a file that is not a batch."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in ["batch_10.csv", "batch_02.csv", "batch_01.csv"]:
        frame.to_csv(folder / name, index=False)
    (folder / "notes.txt").write_text("not a batch\n")
    return folder


def data_error(action, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DataSourceError) as caught:
        action(*args)
    return str(caught.value)


# --- listing ---------------------------------------------------------------------------------------


def test_glob_lists_matching_files_in_name_order(batch_folder: Path) -> None:
    # given: batch_10, batch_02 and batch_01 written in that order
    # when
    batches = list_batches(str(batch_folder / "batch_*.csv"))
    # then
    assert batches == [str(batch_folder / name) for name in ["batch_01.csv", "batch_02.csv", "batch_10.csv"]]


def test_single_file_is_listed_as_given(batch_folder: Path) -> None:
    # given
    path = str(batch_folder / "batch_02.csv")
    # when / then
    assert list_batches(path) == [path]


def test_glob_matching_nothing_is_an_error_naming_the_pattern(batch_folder: Path) -> None:
    # given
    pattern = str(batch_folder / "*.parquet")
    # when / then
    assert data_error(list_batches, pattern) == f"{pattern}: no file matches this pattern"


def test_missing_file_is_an_error_naming_it(batch_folder: Path) -> None:
    # given
    path = str(batch_folder / "batch_99.csv")
    # when / then
    assert data_error(list_batches, path) == f"{path}: file not found"
    assert data_error(read_frame, path) == f"{path}: file not found"


# --- reading ---------------------------------------------------------------------------------------


def test_csv_and_parquet_of_the_same_data_read_equal_and_hash_equal(tmp_path: Path, frame: pd.DataFrame) -> None:
    # given: the same frame saved in both formats
    frame.to_csv(tmp_path / "batch.csv", index=False)
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    # when
    from_csv, from_parquet = (
        read_frame(str(tmp_path / "batch.csv")),
        read_frame(str(tmp_path / "batch.parquet")),
    )
    # then
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    pd.testing.assert_frame_equal(from_csv, frame)
    assert frame_hash(from_csv) == frame_hash(from_parquet) == frame_hash(frame)


def test_full_precision_floats_hash_the_same_from_csv_and_parquet(tmp_path: Path) -> None:
    # given: a float with 17 significant digits, as unrounded sensor data has
    frame = pd.DataFrame({"x": [0.10490011715303971, 1.0]})
    frame.to_csv(tmp_path / "batch.csv", index=False)
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    # when
    from_csv, from_parquet = (
        read_frame(str(tmp_path / "batch.csv")),
        read_frame(str(tmp_path / "batch.parquet")),
    )
    # then
    assert frame_hash(from_csv) == frame_hash(from_parquet)


def test_missing_values_read_as_missing_and_hash_equal_from_csv_and_parquet(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    # given: a missing text and a missing number, saved in both formats
    frame.loc[2, "region"] = None
    frame.loc[1, "temperature"] = None
    frame.to_csv(tmp_path / "batch.csv", index=False)
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    # when
    from_csv, from_parquet = (
        read_frame(str(tmp_path / "batch.csv")),
        read_frame(str(tmp_path / "batch.parquet")),
    )
    # then: the same cells are missing (csv gives NaN and parquet None for text), and the hashes agree
    assert from_csv.isna().equals(from_parquet.isna())
    assert from_csv.isna().sum().to_dict() == {"temperature": 1, "visits": 0, "region": 1, "weather": 0}
    assert frame_hash(from_csv) == frame_hash(from_parquet)


def test_compressed_csv_is_read_as_csv(tmp_path: Path, frame: pd.DataFrame) -> None:
    # given
    frame.to_csv(tmp_path / "batch.csv.gz", index=False)
    # when / then
    pd.testing.assert_frame_equal(read_frame(str(tmp_path / "batch.csv.gz")), frame)


def test_unsupported_file_type_is_an_error_naming_the_file_and_the_formats(batch_folder: Path) -> None:
    # given
    path = str(batch_folder / "notes.txt")
    # when
    message = data_error(read_frame, path)
    # then
    assert message == f"{path}: unsupported file type: expected a .csv or .parquet file"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("empty.csv", "file is empty: expected a header row and data rows"),
        ("empty.parquet", "cannot read as parquet"),
    ],
)
def test_empty_file_is_an_error_naming_it(tmp_path: Path, name: str, expected: str) -> None:
    # given: a zero-byte file
    path = tmp_path / name
    path.touch()
    # when
    message = data_error(read_frame, str(path))
    # then
    assert message.startswith(f"{path}: {expected}")


@pytest.mark.parametrize("action", [read_frame, list_batches], ids=["read_frame", "list_batches"])
def test_unknown_protocol_is_an_error_naming_the_uri(action) -> None:  # type: ignore[no-untyped-def]
    # given
    uri = "nosuchproto://bucket/batch.csv"
    # when
    message = data_error(action, uri)
    # then
    assert message.startswith(f"{uri}: cannot ")
    assert "nosuchproto" in message.removeprefix(uri)


@pytest.mark.parametrize("action", [read_frame, list_batches], ids=["read_frame", "list_batches"])
def test_path_under_a_missing_folder_is_an_error_naming_it(tmp_path: Path, action) -> None:  # type: ignore[no-untyped-def]
    # given
    path = str(tmp_path / "no" / "such" / "folder" / "batch.csv")
    # when / then
    assert data_error(action, path) == f"{path}: file not found"


def test_read_window_concatenates_batches_in_the_order_given(batch_folder: Path, frame: pd.DataFrame) -> None:
    # given: two batches with different content
    first, second = batch_folder / "batch_01.csv", batch_folder / "batch_02.csv"
    frame.head(1).to_csv(second, index=False)
    # when
    window = read_window([str(second), str(first)])
    # then
    assert len(window) == 1 + len(frame)
    assert window["temperature"].tolist() == [12.5, *frame["temperature"]]
    assert window.index.tolist() == list(range(len(window)))


def test_read_window_of_no_batches_is_an_error() -> None:
    # given / when / then
    assert data_error(read_window, []) == "no batches given: expected at least one file"


# --- hashing ---------------------------------------------------------------------------------------


def test_hash_changes_when_one_value_changes(frame: pd.DataFrame) -> None:
    # given
    changed = frame.copy()
    changed.loc[2, "temperature"] = -3.5
    # when / then
    assert frame_hash(frame.copy()) == frame_hash(frame)
    assert frame_hash(changed) != frame_hash(frame)


def test_hash_changes_when_a_column_is_renamed(frame: pd.DataFrame) -> None:
    # given / when / then
    assert frame_hash(frame.rename(columns={"visits": "visitors"})) != frame_hash(frame)


def test_hash_ignores_the_index(frame: pd.DataFrame) -> None:
    # given: the same rows with another index, as after a filter
    reindexed = frame.set_axis([10, 11, 12, 13])
    # when / then
    assert frame_hash(reindexed) == frame_hash(frame)


# --- writing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scored.csv", "scored.parquet"])
def test_write_frame_creates_missing_parent_folders(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    # given: an output path two folders deep that do not exist yet
    path = tmp_path / "out" / "2026-01-02" / name
    # when
    write_frame(frame, str(path))
    # then
    assert path.is_file()
    pd.testing.assert_frame_equal(read_frame(str(path)), frame)


def test_write_frame_to_an_unsupported_type_is_an_error(tmp_path: Path, frame: pd.DataFrame) -> None:
    # given
    path = str(tmp_path / "scored.json")
    # when / then
    assert data_error(write_frame, frame, path) == f"{path}: unsupported file type: expected a .csv or .parquet file"
    assert not (tmp_path / "scored.json").exists()


def test_write_frame_to_an_unknown_protocol_is_an_error_naming_the_uri(frame: pd.DataFrame) -> None:
    # given
    uri = "nosuchproto://bucket/scored.csv"
    # when / then
    assert data_error(write_frame, frame, uri).startswith(f"{uri}: cannot write")
