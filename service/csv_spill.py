"""A csv file made readable a column at a time: streamed once into a temporary parquet file of strings,
whose columns are then typed one by one as pandas' ``read_csv`` types them.

A csv file holds rows, so a column cannot be read without reading every row. Reading it once, a block of
rows at a time (``pyarrow.csv.open_csv``), and writing each block to a local parquet file turns it into
columns: memory holds a block, never the table, and the rest of the check reads the spill like any parquet
file. Every column is spilled as strings, because a type guessed from the first block (what pyarrow's
streaming reader does) would fail on a later block that disagrees, or differ from pandas' choice over the
whole column; the type is decided per column afterwards, over all its values, as pandas decides it, so a
batch reads, validates and hashes the same as when pandas read it whole.

The spill goes to the temporary directory (``TMPDIR``): on Kubernetes, an emptyDir on disk, not in memory.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# pandas' default missing-value markers (read_csv's ``na_values`` documentation lists the same strings).
from pandas._libs.parsers import STR_NA_VALUES

_BLOCK_BYTES = 8 << 20  # rows are parsed this many bytes of csv at a time
_TRUE, _FALSE = {"True", "TRUE", "true"}, {"False", "FALSE", "false"}


def header(handle: Any) -> list[str]:
    """The column names of a csv file (its first row, quotes understood); the handle is read from its start."""
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    try:
        return next(csv.reader(text))
    except StopIteration:
        raise ValueError("file is empty: expected a header row and data rows") from None
    finally:
        text.detach()


def spill(handle: Any, names: list[str], directory: str) -> str:
    """Stream the csv file behind ``handle`` into a parquet file of strings in ``directory``; its path."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=sorted(STR_NA_VALUES),
            strings_can_be_null=True,
        ),
    )
    descriptor, path = tempfile.mkstemp(suffix=".parquet", dir=directory)
    os.close(descriptor)
    with pq.ParquetWriter(path, reader.schema) as writer:
        for block in reader:
            writer.write_batch(block)
    return path


def spill_directory() -> str:
    return tempfile.mkdtemp(prefix="driftloop-csv-")


def typed(strings: pa.ChunkedArray) -> pd.Series:
    """A spilled column as pandas' ``read_csv`` would type it: int64 (float64 with gaps), float64, bool,
    else strings (as a Categorical: one Python string per distinct value). Types are tried on the distinct
    values only (the column is read as a dictionary), then spread to the rows."""
    column = _as_dictionary(strings)
    values, indices = column.dictionary, column.indices
    present = pc.unique(indices.filter(pc.is_valid(indices)))
    values = values.take(present) if len(present) < len(values) else values
    indices = _renumber(indices, present, len(column.dictionary)) if len(present) < len(column.dictionary) else indices
    if len(values) == 0:  # no value at all: pandas reads an empty column as floats, a header alone as objects
        return pd.Series(np.full(len(indices), np.nan)) if len(indices) else pd.Series([], dtype=object)
    number = _as_number(values, indices)
    if number is not None:
        return number
    if set(values.to_pylist()) <= _TRUE | _FALSE:
        flags = pa.array([value in _TRUE for value in values.to_pylist()]).take(indices).to_pandas()
        return flags.astype(bool) if indices.null_count == 0 else flags.astype(object).where(flags.notna(), np.nan)
    return pd.Series(pd.Categorical.from_codes(_codes(indices), categories=pd.Index(values.to_pylist(), dtype=object)))


def _as_dictionary(strings: pa.ChunkedArray) -> pa.DictionaryArray:
    if pa.types.is_dictionary(strings.type):
        chunks = strings.unify_dictionaries().chunks
        if not chunks:
            return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
        indices = pa.concat_arrays([chunk.indices for chunk in chunks])
        return pa.DictionaryArray.from_arrays(indices, chunks[0].dictionary)
    return pc.dictionary_encode(strings.combine_chunks())


def _renumber(indices: pa.Array, present: pa.Array, size: int) -> pa.Array:
    """Indices into the values that occur (a dictionary kept from other row groups may hold unused ones)."""
    mapping = np.full(size, -1, dtype=np.int32)
    mapping[present.to_numpy()] = np.arange(len(present), dtype=np.int32)
    return pa.array(mapping).take(indices)


def _codes(indices: pa.Array) -> np.ndarray:
    return indices.to_numpy(zero_copy_only=False) if indices.null_count == 0 else indices.fill_null(-1).to_numpy()


def _as_number(values: pa.Array, indices: pa.Array) -> pd.Series | None:
    # pandas reads " 12" and "+5" as the numbers 12 and 5; pyarrow's cast wants neither space nor sign.
    trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"^\+", "")
    for kind in (pa.int64(), pa.float64()):
        try:
            numbers = pc.cast(trimmed, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        column = numbers.take(indices)
        if kind == pa.int64() and column.null_count:
            column = column.cast(pa.float64())  # an integer column with gaps: floats, as pandas makes it
        return pd.Series(column.to_numpy(zero_copy_only=False))
    return None
