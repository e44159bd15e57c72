"""Batches checked a column at a time (service.columns, service.column_check): the same verdicts, problems
and content hash as a check of the whole frames, on csv and parquet, with no whole table ever read."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import service.adhoc as adhoc
import service.columns as columns
from service import column_check, csv_spill
from service.contracts import DataContract, conform, contract_for_columns
from service.data import frame_hash, read_frame, read_window
from service.drift.check import check_drift, profile_reference
from service.errors import ContractViolation
from service.settings import DriftSection

FEATURES = ["normal", "skewed", "few", "with_nans", "count", "city", "plan"]


def table(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """Numbers of varied shapes (gaps, integers), strings with gaps, a boolean and a target."""
    rng = np.random.default_rng(seed)
    with_nans = rng.normal(5 + 2 * drift, 1, rows)
    with_nans[rng.random(rows) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "normal": rng.normal(drift, 1, rows),
            "skewed": rng.lognormal(0.5 * drift, 0.7, rows),
            "few": rng.choice([1.0, 2.0, 3.0], rows, p=[0.5 - 0.2 * drift, 0.3, 0.2 + 0.2 * drift]),
            "with_nans": with_nans,
            "count": rng.integers(0, 40 + int(30 * drift), rows),
            "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.5 - 0.3 * drift, 0.3, 0.2 + 0.3 * drift]),
            "plan": rng.choice(["free", "pro"], rows).astype(object),
            "vip": rng.random(rows) < 0.1,
            "label": rng.integers(0, 2, rows),
        }
    )
    frame.loc[::13, "plan"] = None
    return frame


def written(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return str(path)


def model_contract(reference: pd.DataFrame) -> DataContract:
    drawn = contract_for_columns(reference, ["vip", "label"], "reference")
    return DataContract(drawn.features, "label", ("vip",), 100, 0.2, max_out_of_range_share=1.0)


def whole_check(reference: pd.DataFrame, batch: pd.DataFrame, contract: DataContract) -> object:
    reference, batch = conform(reference, contract), conform(batch, contract)
    kinds = {"numerical": contract.numerical, "categorical": contract.categorical}
    profile = profile_reference(reference, **kinds)
    return check_drift(reference, batch, settings=DriftSection(), profile=profile, **kinds)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("drift", [0.0, 1.0], ids=["no drift", "drift"])
def test_a_batch_checked_by_columns_gets_the_whole_frame_verdicts_and_hash(
    tmp_path: Path, suffix: str, drift: float
) -> None:
    # given a champion's reference (prepared once) and a batch as csv or parquet
    reference = table(4000, seed=1)
    contract = model_contract(reference)
    uri = written(table(3000, seed=2, drift=drift), tmp_path / f"batch{suffix}")
    profile = profile_reference(conform(reference, contract), contract.numerical, contract.categorical)
    # when it is checked a column at a time, and whole as before
    tested = (contract.numerical, contract.categorical)
    result, batch_hash = column_check.check_batch(uri, contract, profile, tested, DriftSection(), len(reference))
    whole = whole_check(reference, read_frame(uri, categories=True), contract)
    # then every column's test, score and verdict, the row counts and the hash are the same
    assert result == whole
    assert result.dataset_drift is (drift > 0)
    assert batch_hash == frame_hash(read_frame(uri))


def test_csv_and_parquet_copies_of_a_batch_hash_alike_when_streamed(tmp_path: Path) -> None:
    # given the same rows as csv and as parquet
    reference, batch = table(2000, seed=1), table(1500, seed=2)
    contract = model_contract(reference)
    profile = profile_reference(conform(reference, contract), contract.numerical, contract.categorical)
    tested = (contract.numerical, contract.categorical)
    hashes = [
        column_check.check_batch(written(batch, tmp_path / name), contract, profile, tested, DriftSection(), 1)[1]
        for name in ("batch.csv", "batch.parquet")
    ]
    # then they hash alike, and as the whole frame hashes (the hash batches were recorded under)
    assert hashes[0] == hashes[1] == frame_hash(batch)
    # and a changed value changes the hash
    changed = batch.assign(normal=batch["normal"].where(batch.index != 7, 0.5))
    other = column_check.check_batch(
        written(changed, tmp_path / "b.parquet"), contract, profile, tested, DriftSection(), 1
    )
    assert other[1] != hashes[0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_bad_column_names_the_file_and_column_as_the_whole_frame_check(tmp_path: Path, suffix: str) -> None:
    # given a batch with text in a numeric column, infinite values, and labels mostly missing
    reference = table(2000, seed=1)
    contract = model_contract(reference)
    bad = table(1500, seed=2).astype({"few": str})
    bad.loc[:3, "few"] = "n/a?"
    bad.loc[:9, "normal"] = np.inf
    bad["label"] = bad["label"].where(bad.index % 2 == 0)
    uri = written(bad, tmp_path / f"batch{suffix}")
    profile = profile_reference(conform(reference, contract), contract.numerical, contract.categorical)
    # when checked by columns
    with pytest.raises(ContractViolation) as caught:
        column_check.check_batch(uri, contract, profile, (contract.numerical, []), DriftSection(), 1)
    # then the file and each column are named, the problems listed as a check of the whole frame lists them
    with pytest.raises(ContractViolation) as whole:
        from service.contracts import validate_batch

        validate_batch(read_frame(uri, categories=True), contract, uri, require_target=True)
    assert caught.value.source == uri
    assert caught.value.problems == whole.value.problems
    assert any("column 'few' has dtype object" in problem for problem in caught.value.problems)
    assert any("column 'normal' has 10 infinite values" in problem for problem in caught.value.problems)
    assert any(
        "column 'label' (the target) is missing in 50.0% of rows" in problem for problem in caught.value.problems
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_driftloop_drift_by_columns_gives_the_whole_table_verdicts(tmp_path: Path, suffix: str) -> None:
    # given two files as csv or parquet
    reference = written(table(4000, seed=1).drop(columns="label"), tmp_path / f"reference{suffix}")
    current = written(table(3000, seed=2, drift=1.0).drop(columns="label"), tmp_path / f"current{suffix}")
    # when the ad-hoc check reads them a column at a time
    result = adhoc.check_files(reference, current, ["vip"], DriftSection())
    # then it equals the check of both whole tables, read as pandas reads them
    whole_reference = read_window([reference], categories=True)
    contract = contract_for_columns(whole_reference, ["vip"], reference)
    whole = check_drift(
        conform(whole_reference, contract),
        conform(read_window([current], categories=True), contract),
        numerical=contract.numerical,
        categorical=contract.categorical,
        settings=DriftSection(),
    )
    assert result == whole and result.dataset_drift


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_no_whole_table_is_read_and_columns_in_memory_are_bounded_by_threads(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two files, and a record of every read: of whole frames, and of columns (how many at once)
    reference = written(table(3000, seed=1).drop(columns="label"), tmp_path / f"reference{suffix}")
    current = written(table(2000, seed=2).drop(columns="label"), tmp_path / f"current{suffix}")
    monkeypatch.setattr(adhoc, "read_window", lambda *args, **kwargs: pytest.fail("a whole table was read"))
    read_column, lock = columns._File.column, threading.Lock()
    held, peak, seen = [0], [0], []

    def recording(self: columns._File, name: str) -> pd.Series:
        with lock:
            held[0] += 1
            peak[0] = max(peak[0], held[0])
            seen.append(name)
        try:
            return read_column(self, name)
        finally:
            with lock:
                held[0] -= 1

    monkeypatch.setattr(columns._File, "column", recording)
    monkeypatch.setattr(columns, "threads", lambda: 2)
    monkeypatch.setattr(column_check, "threads", lambda: 2)
    # when checked
    adhoc.check_files(reference, current, ["vip"], DriftSection())
    # then every column was read once from each side, and never more than a column per thread at once
    assert sorted(seen) == sorted(FEATURES * 2)
    assert 1 <= peak[0] <= 2


@pytest.mark.parametrize("held", ["spilled", "in memory"])
def test_a_csv_column_is_typed_over_all_its_values_as_pandas_types_it(
    tmp_path: Path, held: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a csv file whose columns need every row to be typed: a text value after many numbers (pandas
    # reads the column as text), integers with a gap (floats), signs and spaces, booleans, an empty column;
    # spilled to parquet a block at a time as a big file is, or held in memory as a small one is
    monkeypatch.setattr(csv_spill, "IN_MEMORY_BYTES", 0 if held == "spilled" else csv_spill.IN_MEMORY_BYTES)
    spills = []
    monkeypatch.setattr(csv_spill, "spill", lambda *args, spill=csv_spill.spill: spills.append(1) or spill(*args))
    rows = 70_000
    lines = ["late_text,gappy,signed,flags,empty,plain"]
    lines += [f"{i},{'' if i == 5 else i}, +{i} ,{'True' if i % 2 else 'false'},,{i * 0.5}" for i in range(rows)]
    lines.append("oops,1,2,True,,1.5")
    path = tmp_path / "batch.csv"
    path.write_text("\n".join(lines) + "\n")
    # when read a column at a time, and whole by pandas
    with columns.ColumnTable([str(path)]) as batch:
        read = {name: batch.column(name) for name in batch.names}
    whole = pd.read_csv(path, float_precision="round_trip")
    # then every column has pandas' type (text as a Categorical of the same strings) and the same values
    for name, column in read.items():
        expected = whole[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            assert expected.dtype == object and column.astype(object).equals(expected), name
        else:
            assert column.dtype == expected.dtype and column.equals(expected), name
    assert frame_hash(pd.DataFrame(read)) == frame_hash(whole)
    assert len(spills) == (1 if held == "spilled" else 0)


# A child's peak resident set (ru_maxrss) is read by a small launcher, so the test's own memory (pandas,
# the generated tables) is not charged to it.
LAUNCHER = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""
CHECK = (
    "from service.adhoc import check_files; from service.settings import DriftSection; "
    "check_files({!r}, {!r}, [], DriftSection())"
)


def peak_bytes(reference: Path, current: Path) -> int:
    import subprocess
    import sys

    code = CHECK.format(str(reference), str(current))
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return int(launched.stdout)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_peak_memory_grows_with_a_column_not_with_the_table(tmp_path: Path, suffix: str) -> None:
    # given pairs of files with the same rows, of 8 and of 48 numeric columns (as csv or parquet)
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows, pairs = 200_000, {}
    for width in (8, 48):
        pair = []
        for side, seed in (("reference", 1), ("current", 2)):
            rng = np.random.default_rng(seed)
            data = pa.table({f"x{i}": rng.normal(0.1 * seed, 1, rows) for i in range(width)})
            path = tmp_path / f"{side}_{width}{suffix}"
            pq.write_table(data, path) if suffix == ".parquet" else pacsv.write_csv(data, path)
            pair.append(path)
        pairs[width] = pair
    # when each pair is checked in a fresh process, its peak memory measured
    narrow, wide = peak_bytes(*pairs[8]), peak_bytes(*pairs[48])
    # then the 40 more columns (128 MB more as floats, both sides) cost well under that: the check holds a
    # column per thread, not the tables (read whole, they cost more than all of it: ~190 MB for csv). The
    # csv reader's blocks stay in pyarrow's memory pool once freed, so csv gets 3/4 of it (one busy run
    # grew 67 MB against half's 64; parquet grows far less).
    more_data = rows * 40 * 8 * 2
    limit = more_data * (3 / 4 if suffix == ".csv" else 1 / 2)
    assert wide - narrow < limit, f"peak {narrow / 1e6:.0f} MB -> {wide / 1e6:.0f} MB"
