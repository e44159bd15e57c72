"""service.data on s3:// URIs, through s3fs against an S3 server on 127.0.0.1 (moto's; see conftest).

Credentials and the endpoint come from the environment, as the chart's data Secret gives them to
flow-run pods: nothing in the model config names them.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from service.data import frame_hash, list_batches, read_frame, write_frame
from service.errors import DataSourceError


@pytest.fixture
def bucket(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; this test's process reads S3 settings from the environment like a pod."""
    import boto3

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    name = f"driftloop-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"temperature": [12.5, 0.1, -3.0], "region": ["north", "coast", None], "visits": [3, 0, 12]})


def test_s3_batches_are_listed_in_name_order_and_read_back_unchanged(bucket: str, frame: pd.DataFrame) -> None:
    # given batches written out of name order, in both formats
    for name in ["batch_10.csv", "batch_02.parquet", "batch_01.csv"]:
        write_frame(frame, f"s3://{bucket}/incoming/{name}")
    # when
    listed = list_batches(f"s3://{bucket}/incoming/batch_*")
    # then
    assert listed == [f"s3://{bucket}/incoming/batch_{n}" for n in ("01.csv", "02.parquet", "10.csv")]
    for uri in listed:
        assert frame_hash(read_frame(uri)) == frame_hash(frame), uri


def test_a_single_s3_object_is_listed_as_given(bucket: str, frame: pd.DataFrame) -> None:
    write_frame(frame, f"s3://{bucket}/reference.csv")
    assert list_batches(f"s3://{bucket}/reference.csv") == [f"s3://{bucket}/reference.csv"]


def test_missing_s3_object_and_empty_s3_glob_are_errors_naming_them(bucket: str) -> None:
    for action, uri, expected in [
        (read_frame, f"s3://{bucket}/nothing/here.csv", "file not found"),
        (list_batches, f"s3://{bucket}/nothing/here.csv", "file not found"),
        (list_batches, f"s3://{bucket}/nothing/*.csv", "no file matches this pattern"),
    ]:
        with pytest.raises(DataSourceError) as caught:
            action(uri)
        assert str(caught.value) == f"{uri}: {expected}"


def test_reading_from_a_bucket_that_does_not_exist_is_an_error_naming_the_uri(bucket: str) -> None:
    uri = f"s3://{bucket}-missing/batch.csv"
    with pytest.raises(DataSourceError) as caught:
        read_frame(uri)
    assert str(caught.value).startswith(f"{uri}: ")


def test_s3_batches_are_read_a_column_at_a_time_as_pandas_reads_them(bucket: str, frame: pd.DataFrame) -> None:
    # given the same batch on S3 as csv and as parquet
    from service.columns import ColumnTable

    for name in ["batch.csv", "batch.parquet"]:
        write_frame(frame, f"s3://{bucket}/incoming/{name}")
    # when read a column at a time (the csv streamed once into a local spill)
    for name in ["batch.csv", "batch.parquet"]:
        with ColumnTable([f"s3://{bucket}/incoming/{name}"]) as table:
            columns = pd.DataFrame({column: table.column(column) for column in table.names})
        # then the columns are those of the whole file, and hash alike
        assert table.names == list(frame.columns) and table.num_rows == 3
        assert frame_hash(columns) == frame_hash(frame), name
