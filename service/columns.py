"""Batches and windows read a column at a time, so a check holds a column in memory, not the table.

Parquet is read with pyarrow, one column of every row group at a time, its strings as dictionaries (a
pandas Categorical: a code per row, one string per distinct value). A csv file is streamed once into a
temporary parquet file (``service.csv_spill``) and read the same way; a small one is held as strings.
Columns come as pandas reads them (the file's pandas metadata is applied), so what is validated and
hashed matches ``service.data``'s ``read_frame`` of the whole file.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa

from service import csv_spill
from service.data import file_format, storage_error
from service.errors import DataSourceError


@dataclass
class _File:
    uri: str
    kind: str  # "parquet" or "csv" (then ``parquet`` is its spill, every column strings)
    parquet: Any  # pyarrow.parquet.ParquetFile, or a small csv file's ``csv_spill.StringTable``
    names: list[str]
    num_rows: int
    handle: Any = field(default=None, repr=False)
    # A ParquetFile is not safe to read from two threads at once (pyarrow's read cache mixes their ranges
    # up): reads of a file take turns, what is done with the columns read runs side by side.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def column(self, name: str) -> pd.Series:
        try:
            if self.kind == "parquet" and (dtype := self._plain_number(name)) is not None:
                return pd.Series(self._numbers(name, dtype))
            with self.lock:
                table = self.parquet.read(columns=[name], use_pandas_metadata=False)
            if self.kind == "csv":
                return csv_spill.typed(table.column(0))
            # The pandas metadata gives a column the dtype pandas wrote (Int64, say), as read_parquet does.
            table = table.replace_schema_metadata(self.parquet.schema_arrow.metadata)
            return table.to_pandas(split_blocks=True, self_destruct=True)[name]
        except Exception as exc:  # classified as read_frame does: bad content is bad input
            raise storage_error(self.uri, f"read column {name!r} as {self.kind}", exc) from exc

    def _plain_number(self, name: str) -> np.dtype | None:
        """The numpy dtype of an integer or float column pandas reads as one (not as a nullable Int64)."""
        kind = self.parquet.schema_arrow.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            return None
        columns = (self.parquet.schema_arrow.pandas_metadata or {}).get("columns", [])
        written = next((column.get("numpy_type") for column in columns if column.get("name") == name), None)
        dtype = np.dtype(kind.to_pandas_dtype())
        return dtype if written in (None, str(dtype)) else None

    def _numbers(self, name: str, dtype: np.dtype) -> np.ndarray:
        """A number column read a row group at a time into one array: converting the whole Arrow column at
        once would hold it twice. With gaps, integers become floats, as pandas makes them."""
        values = np.empty(self.num_rows, dtype=dtype)
        start = 0
        for group in range(self.parquet.num_row_groups):
            with self.lock:
                chunks = self.parquet.read_row_group(group, columns=[name], use_pandas_metadata=False).column(0)
            for chunk in chunks.chunks:
                if chunk.null_count and values.dtype.kind in "iu":
                    values = values.astype(np.float64)
                values[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
        return values


class ColumnTable:
    """One file, or a window of files read as one table (their rows in the order given), a column at a time.

    Use it as a context manager: it keeps the files open and removes a csv file's spill when done."""

    def __init__(self, uris: list[str]) -> None:
        if not uris:
            raise DataSourceError("no batches given: expected at least one file")
        self._spills: list[str] = []
        self._files: list[_File] = []
        try:
            self._files = [self._open(uri) for uri in uris]
        except BaseException:
            self.close()
            raise
        # Every file's columns, in first-seen order (a window's files may differ, as pandas' concat allows).
        self.names: list[str] = list(dict.fromkeys(name for file in self._files for name in file.names))
        self.num_rows: int = sum(file.num_rows for file in self._files)
        self.source = ", ".join(uris)

    def column(self, name: str) -> pd.Series:
        """The column over every file, its index 0..n-1; a file without it gives missing values."""
        parts = [
            file.column(name) if name in file.names else pd.Series(float("nan"), index=range(file.num_rows))
            for file in self._files
        ]
        if len(parts) == 1:
            return parts[0].reset_index(drop=True)
        if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
            # Concatenating Categoricals with different categories would give object strings.
            return pd.Series(pd.api.types.union_categoricals([part.array for part in parts]))
        return pd.concat(parts, ignore_index=True)

    def _open(self, uri: str) -> _File:
        import pyarrow.parquet as pq

        kind = file_format(uri)
        try:
            handle = fsspec.open(uri, "rb", compression="infer").open()
            if kind == "csv":
                return self._spilled(uri, handle)
            schema = pq.read_schema(handle)
            strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            handle.seek(0)
            parquet = pq.ParquetFile(handle, read_dictionary=strings or None)
        except DataSourceError:
            raise
        except Exception as exc:  # classified: a wrong location or content is bad input, a failing store is not
            raise storage_error(uri, f"read as {kind}", exc) from exc
        # A frame's index stored by pandas is read back as the index, not as a column.
        metadata = schema.pandas_metadata or {}
        index = {name for name in metadata.get("index_columns", []) if isinstance(name, str)}
        names = [name for name in schema.names if name not in index]
        return _File(uri, kind, parquet, names, parquet.metadata.num_rows, handle)

    def _spilled(self, uri: str, handle: Any) -> _File:
        import pyarrow.parquet as pq

        try:
            names = csv_spill.header(handle)
        except ValueError as exc:
            handle.close()
            raise DataSourceError(f"{uri}: {exc}") from None
        handle.close()
        if _size(uri) <= csv_spill.IN_MEMORY_BYTES:
            with fsspec.open(uri, "rb") as again:  # from its start: the header read above
                strings = csv_spill.StringTable(again, names)
            return _File(uri, "csv", strings, names, strings.table.num_rows)
        directory = csv_spill.spill_directory()
        self._spills.append(directory)
        with fsspec.open(uri, "rb", compression="infer") as again:
            path = csv_spill.spill(again, names, directory)
        parquet = pq.ParquetFile(path)
        return _File(uri, "csv", parquet, names, parquet.metadata.num_rows)

    def close(self) -> None:
        for file in self._files:
            if file.handle is not None:
                file.handle.close()
        for directory in self._spills:
            shutil.rmtree(directory, ignore_errors=True)
        self._spills = []

    def __enter__(self) -> ColumnTable:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _size(uri: str) -> float:
    """The bytes of csv a file holds; unknown (infinite) when it is compressed."""
    if fsspec.utils.infer_compression(uri) is not None:
        return float("inf")
    filesystem, path = fsspec.core.url_to_fs(uri)
    return float(filesystem.size(path))


def threads() -> int:
    """How many columns are read and checked at once: one per core (numpy's sorts release the GIL)."""
    return os.cpu_count() or 1
