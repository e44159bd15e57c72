"""``drift.engine: dask`` on a real Dask cluster (LocalCluster, two worker processes; see tests/dask_support.py).

Its verdicts and scores must be the fast engine's on the same files, whatever the files' split into
partitions (several files, parquet row groups, csv blocks); a worker killed mid-check must cost a retry,
not a verdict; a scheduler that does not answer is an infrastructure error naming its address; bad data
is bad input naming the file and the column.
"""

from __future__ import annotations

import socket
import uuid
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.adhoc import check_files
from service.drift.dask_engine import check_on_dask
from service.errors import ComputeUnavailable, ConfigError, ContractViolation
from service.settings import DriftSection
from tests.dask_support import killing_first, worker_pids
from tests.service.test_drift_engines import scenario


def table(rows: int, seed: int, drift: float) -> pd.DataFrame:
    """The engine tests' scenario less its skewed column, with an id first, integers as ints and the flag
    as booleans: numeric columns (rich, few-valued, integer, with missing values) and categorical ones
    (strings, booleans, many values), all shifted by ``drift``."""
    frame = scenario(rows, seed, drift).drop(columns="skewed")
    frame.insert(0, "id", np.arange(rows))
    return frame.assign(integer=frame["integer"].astype(int), flag=frame["flag"] == "yes")


def write_split(frame: pd.DataFrame, folder: Path, name: str, fmt: str, files: int) -> str:
    """``frame`` as ``files`` files of ``folder`` (parquet in row groups of 500 rows); return their glob."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), files + 1).astype(int)
    for index, (start, stop) in enumerate(pairwise(bounds)):
        part = frame.iloc[start:stop]
        path = folder / f"{name}_{index:02d}.{fmt}"
        if fmt == "parquet":
            part.to_parquet(path, index=False, row_group_size=500)
        else:
            part.to_csv(path, index=False)
    return str(folder / f"{name}_*.{fmt}")


def on_dask(scheduler: str, reference: str, current: str, **drift: object) -> dict:
    from service.data import list_batches

    settings = DriftSection(engine="dask", dask_scheduler=scheduler, **drift)
    # csv blocks of 8 kB: every csv file here is read as several blocks, on both workers
    references, currents = list_batches(reference), list_batches(current)
    return check_on_dask(references, currents, settings, ignore=["id"], csv_block_bytes=8192).to_dict()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("reference_rows", "drift"),
    [(4000, 0.0), (4000, 1.0), (800, 0.3)],
    ids=["distances, no drift", "distances, drift", "p-value tests, slight drift"],
)
def test_dask_engine_gives_the_fast_engines_verdicts_and_scores(
    dask_scheduler: str, tmp_path: Path, fmt: str, reference_rows: int, drift: float
) -> None:
    # given a reference and a batch, each split into files of several partitions
    reference = write_split(table(reference_rows, seed=1, drift=0.0), tmp_path / "reference", "reference", fmt, 2)
    current = write_split(table(reference_rows // 2, seed=2, drift=drift), tmp_path / "current", "batch", fmt, 3)
    # when both engines check them
    fast = check_files(reference, current, ["id"], DriftSection()).to_dict()
    dask = on_dask(dask_scheduler, reference, current)
    # then every verdict, test, threshold and score is the same, and so are the row counts
    assert dask == fast
    assert [column["column"] for column in dask["columns"]][:4] == ["normal", "few_values", "with_nans", "integer"]


@pytest.mark.parametrize(("stattest", "fmt"), [("psi", "parquet"), ("jensenshannon", "csv")])
def test_dask_engine_gives_the_fast_engines_scores_for_a_configured_stattest(
    dask_scheduler: str, tmp_path: Path, stattest: str, fmt: str
) -> None:
    reference = write_split(table(3000, seed=3, drift=0.0), tmp_path / "reference", "reference", fmt, 1)
    current = write_split(table(2000, seed=4, drift=0.3), tmp_path / "current", "batch", fmt, 2)
    fast = check_files(reference, current, ["id"], DriftSection(stattest=stattest)).to_dict()
    assert on_dask(dask_scheduler, reference, current, stattest=stattest) == fast


def test_workers_read_s3_partitions_themselves(
    dask_scheduler: str, s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    # given the files in an S3 bucket, which the workers reach from their own environment
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    bucket = f"driftloop-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    table(3000, seed=5, drift=0.0).to_parquet(tmp_path / "reference.parquet", row_group_size=1000)
    table(2000, seed=6, drift=1.0).to_csv(tmp_path / "batch.csv", index=False)
    for name in ("reference.parquet", "batch.csv"):
        s3.upload_file(str(tmp_path / name), bucket, name)
    reference, batch = f"s3://{bucket}/reference.parquet", f"s3://{bucket}/batch.csv"
    # when checked on the cluster, then the verdicts are those of the fast engine on the same objects
    fast = check_files(reference, batch, ["id"], DriftSection()).to_dict()
    dask = on_dask(dask_scheduler, reference, batch)
    assert dask == fast and dask["dataset_drift"] is True


def test_a_worker_killed_mid_check_is_retried_and_the_check_answers_once(dask_scheduler: str, tmp_path: Path) -> None:
    # given files to check, and a cluster one of whose workers dies as it starts deciding a column
    reference = write_split(table(4000, seed=7, drift=0.0), tmp_path / "reference", "reference", "parquet", 2)
    current = write_split(table(3000, seed=8, drift=1.0), tmp_path / "current", "batch", "parquet", 2)
    fast = check_files(reference, current, ["id"], DriftSection()).to_dict()
    marker = tmp_path / "killed"
    before = worker_pids(dask_scheduler)
    # when the check runs
    with killing_first(dask_scheduler, "driftloop-decide-", marker):
        dask = on_dask(dask_scheduler, reference, current)
    # then a worker was killed mid-check (its process is gone, the nanny started another)
    killed_pid, key = marker.read_text().split(" ", 1)
    assert int(killed_pid) in before and key.startswith("driftloop-decide-")
    assert int(killed_pid) not in worker_pids(dask_scheduler)
    # and the check answered once, with the verdicts of an undisturbed check
    assert dask == fast


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_an_infrastructure_error_naming_its_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a scheduler address where nothing listens, taken from the environment
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DRIFTLOOP_DASK_SCHEDULER", address)
    monkeypatch.setenv("DRIFTLOOP_DASK_CONNECT_TIMEOUT", "2")
    reference = write_split(table(500, seed=1, drift=0.0), tmp_path, "reference", "csv", 1)
    # when a check is asked of it, then it fails as infrastructure (retried, exit 3), naming the address
    with pytest.raises(ComputeUnavailable, match=f"Dask scheduler at {address} did not answer"):
        check_files(reference, reference, ["id"], DriftSection(engine="dask"))


def test_no_scheduler_address_is_bad_config_naming_both_places(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_DASK_SCHEDULER", raising=False)
    reference = write_split(table(500, seed=1, drift=0.0), tmp_path, "reference", "csv", 1)
    with pytest.raises(ConfigError, match=r"drift\.dask_scheduler .* DRIFTLOOP_DASK_SCHEDULER"):
        check_files(reference, reference, ["id"], DriftSection(engine="dask"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_text_in_a_numeric_column_is_bad_input_naming_the_file_and_column(
    dask_scheduler: str, tmp_path: Path, fmt: str
) -> None:
    # given a batch of two files, the second with text in a numeric column
    reference = write_split(table(3000, seed=1, drift=0.0), tmp_path / "reference", "reference", fmt, 1)
    current = table(2000, seed=2, drift=0.0)
    write_split(current.iloc[:1000], tmp_path / "current", "batch_00", fmt, 1)
    text = current.iloc[1000:].astype({"normal": str})  # parquet: a string column; csv: numbers as text
    text.loc[1500, "normal"] = "unknown"
    batch = write_split(text, tmp_path / "current", "batch_01", fmt, 1).replace("batch_01_*", "batch_*")
    # when checked on the cluster, then the file and the column are named, with what was expected
    with pytest.raises(ContractViolation) as refused:
        on_dask(dask_scheduler, reference, batch)
    assert refused.value.source == str(tmp_path / "current" / f"batch_01_00.{fmt}")
    expected = "column 'normal' has dtype object: expected numeric values (found e.g. ['unknown'])"
    assert refused.value.problems == [expected]


def test_a_missing_column_and_an_unknown_one_are_named(dask_scheduler: str, tmp_path: Path) -> None:
    reference = write_split(table(3000, seed=1, drift=0.0), tmp_path / "reference", "reference", "parquet", 1)
    batch = write_split(
        table(1000, seed=2, drift=0.0).rename(columns={"city": "town"}), tmp_path / "current", "batch", "parquet", 1
    )
    with pytest.raises(ContractViolation) as refused:
        on_dask(dask_scheduler, reference, batch)
    assert refused.value.problems == [
        "column 'city' is missing",
        (
            "column 'town' is not in the contract: expected only "
            "['city', 'few_values', 'flag', 'id', 'integer', 'many', 'normal', 'with_nans']"
        ),
    ]


def test_a_stattest_the_engine_does_not_compute_is_bad_config(tmp_path: Path) -> None:
    reference = write_split(table(500, seed=1, drift=0.0), tmp_path, "reference", "csv", 1)
    settings = DriftSection(engine="dask", dask_scheduler="tcp://127.0.0.1:1", stattest="anderson")
    with pytest.raises(ConfigError, match=r"'anderson' is not computed by drift\.engine dask"):
        check_files(reference, reference, ["id"], settings)


@pytest.mark.parametrize("block_bytes", [29, 64, "two lines", 10_000])
def test_csv_blocks_hold_every_line_once_wherever_their_boundaries_fall(tmp_path: Path, block_bytes: object) -> None:
    from service.drift import dask_parts
    from service.drift.dask_engine import merge

    # given a csv file cut into blocks, their boundaries anywhere in a line, on its first character or its end
    frame = table(120, seed=9, drift=0.0)
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    if block_bytes == "two lines":  # the first boundary falls on the first character of a line
        block_bytes = sum(len(line) for line in path.read_bytes().splitlines(keepends=True)[:2])
    assert isinstance(block_bytes, int)
    parts = dask_parts.plan([str(path)], block_bytes)
    assert len(parts) == -(-path.stat().st_size // block_bytes)
    # when each block is summarized, as a worker does
    summaries = [dask_parts.summarize(part, {"normal": "numeric", "city": "categorical"}) for part in parts]
    # then the blocks hold every row once: merged, they are the whole file's column sides
    assert sum(meta.rows for meta, _ in summaries) == len(frame)
    numbers = merge([pieces["normal"] for _, pieces in summaries if "normal" in pieces], numeric=True)
    assert np.array_equal(numbers.sorted_values, np.sort(pd.read_csv(path, float_precision="round_trip")["normal"]))
    cities = merge([pieces["city"] for _, pieces in summaries if "city" in pieces], numeric=False)
    assert cities.counts.sort_index().to_dict() == frame["city"].value_counts().sort_index().to_dict()
