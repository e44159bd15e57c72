"""The partitions of a batch's files, and what a Dask worker keeps of each: the drift tests' material.

A partition is a parquet row group, or the lines of a csv file that start in one block of its bytes (a
compressed csv is one partition). The client lists partitions from file sizes and parquet footers only; a
worker reads its partition from the URI itself (fsspec: a path its pod sees, or s3://...), so no data
passes through the client. Of each column a worker keeps what :mod:`service.drift.stats` builds a
``ColumnSide`` from: the sorted finite values of a numeric column, the value counts of a categorical one
(as the fast engine counts them: values as strings). These pieces merge exactly across partitions: sorted
runs merge into the column's sorted values, counts add up.

A csv block is read with pandas' type inference on its own lines. A column that reads as numbers in one
block and as text in another (text that looks numeric, with a few exceptions) is reported as bad input
rather than guessed at.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal

import fsspec
import numpy as np
import pandas as pd

from service import categorical
from service.column_rules import kind_of
from service.contracts import ColumnKind
from service.data import file_format, storage_error
from service.errors import DataSourceError

Piece = np.ndarray | pd.Series  # sorted finite float64 values, or distinct string -> count
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")
EXAMPLES = 3


@dataclass(frozen=True)
class Partition:
    uri: str
    format: Literal["csv", "parquet"]
    row_group: int | None = None  # parquet: None reads the file (one without row groups)
    start: int = 0  # csv: the lines that start in [start, stop); stop None = to the end
    stop: int | None = None


@dataclass(frozen=True)
class PartMeta:
    """What the client needs of a partition to validate it: small whatever the partition's size."""

    uri: str
    rows: int
    columns: tuple[str, ...]  # every column of the file, read or not
    kinds: dict[str, ColumnKind]  # of the columns read, as the partition's values read (rows > 0 only)
    non_null: dict[str, int] = field(default_factory=dict)
    infinite: dict[str, int] = field(default_factory=dict)
    not_numeric: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # dtype, non-numeric examples


def plan(uris: list[str], csv_block_bytes: int) -> list[Partition]:
    """Every partition of the files, in file and row order, from sizes and footers (no data read)."""
    return [part for uri in uris for part in _partitions_of(uri, csv_block_bytes)]


def _partitions_of(uri: str, csv_block_bytes: int) -> list[Partition]:
    kind = file_format(uri)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with fsspec.open(uri, "rb") as handle:
                groups = pq.ParquetFile(handle).metadata.num_row_groups
            return [Partition(uri, "parquet", group) for group in range(groups)] or [Partition(uri, "parquet")]
        if uri.lower().endswith(COMPRESSED):
            return [Partition(uri, "csv")]
        fs, _, (path,) = fsspec.get_fs_token_paths(uri)
        size = fs.size(path)
    except Exception as exc:  # classified as data.read_frame does: bad content is bad input
        raise storage_error(uri, f"read as {kind}", exc) from exc
    starts = range(0, max(size, 1), csv_block_bytes)
    return [Partition(uri, "csv", start=start, stop=start + csv_block_bytes) for start in starts]


def summarize(part: Partition, kinds: dict[str, ColumnKind] | None, skip: tuple[str, ...] = ()) -> tuple:
    """Runs on a worker: read ``part`` and return ``(meta, pieces)``. ``kinds`` names the columns to read
    and how to take each; None reads every column but ``skip`` and takes each as its values read."""
    try:
        names, frame = _read(part, None if kinds is None else list(kinds))
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{part.uri}: file is empty: expected a header row and data rows") from None
    except Exception as exc:
        raise storage_error(part.uri, f"read as {part.format}", exc) from exc
    wanted = kinds or {name: kind_of(frame[name]) for name in names if name not in skip}
    meta = PartMeta(part.uri, len(frame), tuple(names), {})
    pieces: dict[str, Piece] = {}
    for name, kind in wanted.items():
        if name in frame.columns:
            pieces[name] = _piece(frame.pop(name), name, kind, meta)
    return meta, pieces


def _piece(series: pd.Series, name: str, kind: ColumnKind, meta: PartMeta) -> Piece:
    meta.non_null[name] = int(series.notna().sum())
    if meta.rows:
        meta.kinds[name] = kind_of(series)
    if kind == "categorical":
        return categorical.value_counts(categorical.as_strings(series))
    if meta.rows and meta.kinds[name] != "numeric":
        distinct = pd.Series(sorted(categorical.distinct_strings(series)))
        bad = distinct[pd.to_numeric(distinct, errors="coerce").isna()].tolist()[:EXAMPLES]
        meta.not_numeric[name] = (str(categorical.value_dtype(series)), bad)
        return np.empty(0)
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[np.isfinite(values)]
    meta.infinite[name] = int(np.isinf(values).sum())
    finite.sort()
    return finite


def _read(part: Partition, columns: list[str] | None) -> tuple[list[str], pd.DataFrame]:
    """The file's column names, and the partition's rows of ``columns`` (of those the file has)."""
    if part.format == "parquet":
        return _read_row_group(part, columns)
    with fsspec.open(part.uri, "rb", compression="infer") as handle:
        if part.stop is None:  # a compressed file: the whole of it
            frame = pd.read_csv(handle, float_precision="round_trip")
            names = list(frame.columns)
            return names, frame[[name for name in columns if name in names]] if columns is not None else frame
        header = handle.readline()
        lines = _block_lines(handle, part, len(header))
    names = list(pd.read_csv(io.BytesIO(header), nrows=0).columns)
    usecols = None if columns is None else [name for name in columns if name in names]
    # round_trip: floats read back exactly as written, as data.read_frame reads them.
    return names, pd.read_csv(io.BytesIO(header + lines), float_precision="round_trip", usecols=usecols)


def _block_lines(handle: io.BufferedIOBase, part: Partition, header_size: int) -> bytes:
    # The lines that start in [start, stop): a line begun before ``start`` belongs to the block before,
    # one begun before ``stop`` is read to its end.
    if part.start == 0:
        begin = header_size
    else:
        handle.seek(part.start - 1)
        handle.readline()
        begin = handle.tell()
    assert part.stop is not None
    if begin >= part.stop:
        return b""
    handle.seek(begin)
    lines = handle.read(part.stop - begin)
    if lines and not lines.endswith(b"\n"):
        lines += handle.readline()
    return lines


def _read_row_group(part: Partition, columns: list[str] | None) -> tuple[list[str], pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fsspec.open(part.uri, "rb") as handle:
        file = pq.ParquetFile(handle)
        schema = file.schema_arrow
        index = {name for name in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(name, str)}
        names = [name for name in schema.names if name not in index]
        read = names if columns is None else [name for name in columns if name in names]
        # Strings as dictionaries, as data.read_frame reads them for the drift check: counts, not a string per row.
        is_string = [pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema]
        strings = [f.name for f, text in zip(schema, is_string, strict=True) if text and f.name in read]
        file = pq.ParquetFile(handle, metadata=file.metadata, read_dictionary=strings or None)
        if part.row_group is None:
            table = file.read(columns=read)
        else:
            table = file.read_row_group(part.row_group, columns=read)
    return names, table.to_pandas(split_blocks=True, self_destruct=True)
