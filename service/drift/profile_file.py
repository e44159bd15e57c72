"""A reference profile as one parquet file, and back: what a champion keeps so a check never re-reads its data.

One row group per column, in the profile's order: a numeric column's sorted finite values (``value``),
or a categorical column's distinct values and their counts (``category``, ``count``); the other fields of
a row group are null, which costs nothing on disk and is never read. Columns differ in length once NaN
and ±inf are dropped, so a wide table would need padding. Reading a column reads its row group alone,
and its values are used where pyarrow decoded them (no copy), so reading peaks near the profile's size.
The file's metadata lists the columns with their sizes. Sorted floats compress well with zstd after a
byte-stream split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from service.drift.stats import ColumnSide

FORMAT = 2
_KEY = b"driftloop.profile"
_SCHEMA = pa.schema([("value", pa.float64()), ("category", pa.string()), ("count", pa.int64())])


def write_profile(profile: dict[str, ColumnSide], rows: int, path: Path) -> None:
    """Write ``profile`` (of a reference of ``rows`` rows) to ``path``."""
    entries = _entries(profile)
    layout = {
        "format": FORMAT,
        "rows": rows,
        "columns": [
            {"name": name, "numeric": side.numeric, "size": side.size, "n_distinct": side.n_distinct, "entries": n}
            for name, side, n in entries
        ],
    }
    schema = _SCHEMA.with_metadata({_KEY: json.dumps(layout).encode()})
    options = {"compression": "zstd", "use_byte_stream_split": ["value"], "use_dictionary": ["category"]}
    with pq.ParquetWriter(path, schema, **options) as writer:  # a dictionary would shadow the split
        for _name, side, n in entries:
            if n:  # a column with no value has no row group
                writer.write_table(pa.Table.from_arrays(_fields(side, n), schema=schema), row_group_size=n)


def _fields(side: ColumnSide, n: int) -> list[pa.Array]:
    if side.numeric:
        return [pa.array(side.sorted_values, pa.float64()), pa.nulls(n, pa.string()), pa.nulls(n, pa.int64())]
    counts = side.counts
    keys = pa.array([str(key) for key in counts.index], pa.string())
    return [pa.nulls(n, pa.float64()), keys, pa.array(counts.to_numpy("int64"), pa.int64())]


def _entries(profile: dict[str, ColumnSide]) -> list[tuple[str, ColumnSide, int]]:
    return [(name, side, side.size if side.numeric else len(side.counts)) for name, side in profile.items()]


def read_profile(path: Path) -> tuple[dict[str, ColumnSide], int]:
    """The profile in ``path`` and its reference's row count, in the column order it was written in.

    Raises ``ValueError`` saying what is wrong when the file is not a profile this code wrote."""
    try:
        file = pq.ParquetFile(path)
        layout = json.loads((file.schema_arrow.metadata or {})[_KEY])
        if layout.get("format") != FORMAT:
            raise ValueError(f"profile format {layout.get('format')!r}: expected {FORMAT}")
        columns = [column for column in layout["columns"] if column["entries"]]
        groups = [file.metadata.row_group(index).num_rows for index in range(file.metadata.num_row_groups)]
        if groups != [column["entries"] for column in columns]:
            raise ValueError(f"row groups of {groups} entries where its layout lists others: the file is incomplete")
        profile = {column["name"]: _empty(column) for column in layout["columns"]}
        for index, column in enumerate(columns):
            profile[column["name"]] = _side(file, index, column)
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        raise ValueError(f"not a reference profile: {exc}") from None
    return profile, int(layout["rows"])


def _empty(column: dict) -> ColumnSide:
    if column["numeric"]:
        return ColumnSide(0, True, 0, np.array([], "float64"))
    return ColumnSide(0, False, 0, category_counts=pd.Series([], index=pd.Index([], dtype=object), dtype="int64"))


def _side(file: pq.ParquetFile, index: int, column: dict) -> ColumnSide:
    if column["numeric"]:
        values = file.read_row_group(index, columns=["value"]).column(0).chunk(0).to_numpy()
        return ColumnSide(column["size"], True, column["n_distinct"], values)
    table = file.read_row_group(index, columns=["category", "count"])
    keys = pd.Index(table.column(0).to_pylist(), dtype=object)
    counts = pd.Series(table.column(1).to_numpy(), index=keys)
    return ColumnSide(column["size"], False, column["n_distinct"], category_counts=counts)
