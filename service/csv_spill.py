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
A file of at most ``IN_MEMORY_BYTES`` is not spilled: its strings are held in memory (``StringTable``).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# pandas' default missing-value markers (read_csv's ``na_values`` documentation lists the same strings).
from pandas._libs.parsers import STR_NA_VALUES

# Rows are parsed this many bytes of csv at a time. The streaming reader's resident memory grows with it
# (measured: ~70 MB at 1 MB, ~190 MB at 4 MB, ~290 MB at 8 MB); pyarrow's default of 1 MB is kept.
_BLOCK_BYTES = 1 << 20
_SAMPLE = 1000  # values looked at to tell which casts to try
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

    read_options = pacsv.ReadOptions(block_size=_BLOCK_BYTES, use_threads=False)
    reader = pacsv.open_csv(handle, read_options=read_options, convert_options=_strings(names))
    descriptor, path = tempfile.mkstemp(suffix=".parquet", dir=directory)
    os.close(descriptor)
    # No dictionary pages: most columns are numbers with as many distinct values as rows.
    with pq.ParquetWriter(path, reader.schema, use_dictionary=False) as writer:
        for block in reader:
            writer.write_batch(block)
    return path


class StringTable:
    """A small csv file's strings held in memory, read a column at a time as its spill would be (the one
    call of ``pyarrow.parquet.ParquetFile`` that a column read makes): below ``IN_MEMORY_BYTES``, writing
    and reading a spill costs more than the few megabytes it would save."""

    def __init__(self, handle: Any, names: list[str]) -> None:
        import pyarrow.csv as pacsv

        self.table = pacsv.read_csv(handle, convert_options=_strings(names))

    def read(self, columns: list[str], use_pandas_metadata: bool = False) -> pa.Table:
        return self.table.select(columns)


IN_MEMORY_BYTES = 16 << 20  # about 250k rows of 10 columns


def _strings(names: list[str]) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=sorted(STR_NA_VALUES),
        strings_can_be_null=True,
    )


def spill_directory() -> str:
    return tempfile.mkdtemp(prefix="driftloop-csv-")


def typed(strings: pa.ChunkedArray) -> pd.Series:
    """A spilled column as pandas' ``read_csv`` would type it: int64 (float64 with gaps), float64, bool,
    else strings (as a Categorical: one Python string per distinct value)."""
    if strings.null_count == len(strings):  # no value: pandas reads an empty column as floats, a header alone
        return pd.Series(np.full(len(strings), np.nan)) if len(strings) else pd.Series([], dtype=object)
    # A failed cast costs as much as a whole one: the kinds worth trying are told by the first values.
    sample = pc.drop_null(strings.slice(0, 64 * _SAMPLE)).slice(0, _SAMPLE)
    if len(sample) == 0:  # the first rows are all gaps
        sample = pc.drop_null(strings).slice(0, _SAMPLE)
    kinds = [kind for kind in (pa.int64(), pa.float64()) if _as_number(sample, (kind,)) is not None]
    if pa.int64() in kinds or (kinds and _as_number(_trimmed(sample), (pa.int64(),)) is None):
        # Numbers written plainly, the most common column: cast as they are, with no copy of the strings.
        number = _as_number(strings, kinds)
        if number is not None:
            return number
    # Text, or numbers with spaces or a "+" (which pandas reads as numbers): worked out on the distinct values.
    column = pc.dictionary_encode(strings.combine_chunks())
    distinct, indices = column.dictionary, column.indices
    number = _as_number(_trimmed(distinct), (pa.int64(), pa.float64()), indices)
    if number is not None:
        return number
    if set(distinct.to_pylist()) <= _TRUE | _FALSE:
        flags = pa.array([value in _TRUE for value in distinct.to_pylist()]).take(indices).to_pandas()
        return flags.astype(bool) if indices.null_count == 0 else flags.astype(object).where(flags.notna(), np.nan)
    codes = indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(distinct.to_pylist(), dtype=object)))


def _trimmed(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    # pandas reads " 12" and "+5" as the numbers 12 and 5; pyarrow's cast wants neither space nor sign.
    return pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"^\+", "")


def _numbers_only_to_pyarrow(values: pa.Array | pa.ChunkedArray) -> bool:
    # pyarrow casts hexadecimal integers ("0x1f") and "NaN" in any case ("NAN"; pandas' own spellings
    # are gaps already); pandas reads neither as a number.
    return bool(pc.any(pc.match_substring_regex(values, r"^\s*[+-]?(0[xX]|[nN][aA][nN]\s*$)")).as_py())


def _as_number(
    values: pa.Array | pa.ChunkedArray, kinds: Sequence[pa.DataType], indices: pa.Array | None = None
) -> pd.Series | None:
    """The values cast to the first of ``kinds`` that takes them all (taken by ``indices`` when they are a
    dictionary's), as pandas gives them: an integer column with gaps as floats. None if none does."""
    for kind in kinds:
        try:
            numbers = pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if _numbers_only_to_pyarrow(values):
            return None  # pandas keeps the column as text, and so must we
        column = numbers if indices is None else numbers.take(indices)
        if kind == pa.int64() and column.null_count:
            # Past 2**53 an integer has no exact float: rounded to the nearest, as pandas' parser rounds it.
            column = column.cast(pa.float64(), safe=False)
        return column.to_pandas()
    return None
