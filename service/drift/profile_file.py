"""A reference profile as one parquet file, and back: what a champion keeps so a check never re-reads its data.

Long layout, one row per numeric value or per category: columns differ in length once NaN and ±inf are
dropped, so a wide table would need padding. Numeric columns' sorted values come first, in column order
(``value``); then the categorical columns' counts (``category``, ``count``). The file's metadata says
which column owns which rows, so reading slices one array and never regroups rows. Sorted floats
compress well with zstd after a byte-stream split; repeated names cost a dictionary entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from service.drift.stats import ColumnSide

FORMAT = 1
_KEY = b"driftloop.profile"


def write_profile(profile: dict[str, ColumnSide], rows: int, path: Path) -> None:
    """Write ``profile`` (of a reference of ``rows`` rows) to ``path``."""
    numerical = {name: side for name, side in profile.items() if side.numeric}
    categorical = {name: side for name, side in profile.items() if not side.numeric}
    counts = [side.counts for side in categorical.values()]
    n_values, n_counts = sum(side.size for side in numerical.values()), sum(len(series) for series in counts)
    entries = _entries({**numerical, **categorical})
    # Which column each entry belongs to, as indices into the names (no Python string per entry).
    owners = np.repeat(np.arange(len(entries), dtype="int32"), [n for _, _, n in entries])
    names = pa.array([name for name, _, _ in entries], pa.string())
    values = np.concatenate([*(side.sorted_values for side in numerical.values()), np.full(n_counts, np.nan)])
    keys = pa.array([str(key) for series in counts for key in series.index], pa.string())
    table = pa.table(
        {
            "column": pa.DictionaryArray.from_arrays(owners, names),
            "value": pa.array(values, pa.float64()),
            "category": pa.concat_arrays([pa.nulls(n_values, pa.string()), keys]),
            "count": pa.array(np.concatenate([np.zeros(n_values, "int64"), *(s.to_numpy("int64") for s in counts)])),
        }
    )
    layout = {
        "format": FORMAT,
        "rows": rows,
        "columns": [
            {"name": name, "numeric": side.numeric, "size": side.size, "n_distinct": side.n_distinct, "entries": n}
            for name, side, n in _entries(profile)
        ],
    }
    table = table.replace_schema_metadata({_KEY: json.dumps(layout).encode()})
    pq.write_table(table, path, compression="zstd", use_byte_stream_split=["value"], use_dictionary=["column"])


def _entries(profile: dict[str, ColumnSide]) -> list[tuple[str, ColumnSide, int]]:
    return [(name, side, side.size if side.numeric else len(side.counts)) for name, side in profile.items()]


def read_profile(path: Path) -> tuple[dict[str, ColumnSide], int]:
    """The profile in ``path`` and its reference's row count, in the column order it was written in.

    Raises ``ValueError`` saying what is wrong when the file is not a profile this code wrote."""
    try:
        table = pq.read_table(path, columns=["value", "category", "count"])
        layout = json.loads((table.schema.metadata or {})[_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ValueError(f"not a reference profile: {exc}") from None
    if layout.get("format") != FORMAT:
        raise ValueError(f"profile format {layout.get('format')!r}: expected {FORMAT}")
    columns = layout["columns"]
    numeric = [column for column in columns if column["numeric"]]
    n_values = sum(column["entries"] for column in numeric)
    if n_values + sum(column["entries"] for column in columns if not column["numeric"]) != table.num_rows:
        raise ValueError(f"{table.num_rows} entries where its layout counts others: the file is incomplete")
    values = table.column("value").slice(0, n_values).to_numpy()
    categories = table.column("category").slice(n_values).to_pylist()
    counts = table.column("count").slice(n_values).to_numpy()
    profile, offsets = {}, {"value": 0, "count": 0}
    for column in columns:
        kind = "value" if column["numeric"] else "count"
        start, stop = offsets[kind], offsets[kind] + column["entries"]
        offsets[kind] = stop
        if column["numeric"]:
            side = ColumnSide(column["size"], True, column["n_distinct"], values[start:stop])
        else:
            series = pd.Series(counts[start:stop], index=pd.Index(categories[start:stop], dtype=object))
            side = ColumnSide(column["size"], False, column["n_distinct"], category_counts=series)
        profile[column["name"]] = side
    return profile, int(layout["rows"])
