"""A csv file read whole into the frame pandas makes of it, by pyarrow.

pandas' reader, with the round-trip float parser driftloop needs (csv and parquet copies of a batch must
hash alike), took 156-166 ms for 100k rows of the demo data. pyarrow reads every column as strings, and
each is then typed as pandas types it, by the rules the column-at-a-time reader already follows
(``service.csv_spill.typed``): 53-67 ms, with the same values, so the same hashes. Text comes back as object
strings, as from pandas. What pyarrow cannot read, or pandas reads in a way of its own (a header with
blank or repeated names), is read by pandas, which also names what is wrong with a bad file.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
from pandas._libs.parsers import STR_NA_VALUES

from service.csv_spill import header, typed


def read_csv(handle: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """The frame ``pd.read_csv(handle, float_precision="round_trip", usecols=columns)`` makes, in a fifth
    of the time. ``handle`` must be seekable (it is read from its start)."""
    frame = _by_pyarrow(handle, columns)
    if frame is None:
        handle.seek(0)
        frame = pd.read_csv(handle, float_precision="round_trip", usecols=columns)
    return frame


def _by_pyarrow(handle: Any, columns: list[str] | None) -> pd.DataFrame | None:
    import pyarrow.csv as pacsv

    try:
        names = header(handle)
    except ValueError:  # no header, or not utf-8: pandas says what
        return None
    wanted = names if columns is None else [name for name in names if name in columns]
    # pandas renames repeated and blank names, strips a byte-order mark, and names missing columns itself.
    unusual = len(set(names)) != len(names) or "" in names or names[0].startswith("\ufeff")
    if unusual or (columns is not None and len(wanted) != len(set(columns))):
        return None
    handle.seek(0)
    options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        include_columns=wanted,
        null_values=sorted(STR_NA_VALUES),
        strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(handle, convert_options=options)
    except ValueError:  # ragged rows, a line break inside quotes...: pandas says what (storage errors rise)
        return None
    if table.num_columns == 1 and _blank_values(table.column(0)):
        return None  # pandas skips a line of spaces as blank; in a file of one column, pyarrow reads a value
    if _quote_left_open(handle, table):
        return None
    return pd.DataFrame({name: _as_objects(typed(table.column(name))) for name in wanted})


def _quote_left_open(handle: Any, table: pa.Table) -> bool:
    """Whether the file may end inside quotes: pandas refuses it, pyarrow ends the value at the end of the
    file (taking the lines after the quote into it). Told by the last row's values, and by the quotes on
    the file's last line (an odd number also comes from a stray quote in a value: pandas reads those)."""
    import pyarrow.compute as pc

    last = table.slice(table.num_rows - 1) if table.num_rows else table
    for column in last.columns:
        if pa.types.is_string(column.type) and pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            return True
    try:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - 65536))
        line = handle.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    except (OSError, ValueError):  # a stream that cannot seek from its end: pandas reads it
        return True
    return line.count(b'"') % 2 == 1


def _blank_values(column: pa.ChunkedArray) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.match_substring_regex(column, r"^\s+$")).as_py())


def _as_objects(column: pd.Series) -> pd.Series:
    # typed() gives text as a Categorical (the drift check's way); pandas' read_csv gives object strings.
    return column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column
