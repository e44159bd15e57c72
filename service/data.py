"""Reading batches and reference windows from any fsspec URI, writing outputs, and hashing data."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa

from service.csv_frames import read_csv
from service.errors import DataSourceError, DataSourceUnavailable

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_GLOB_CHARS = set("*?[")


def file_format(uri: str) -> str:
    """ "csv" or "parquet", from the name; any other name is bad input."""
    suffixes = PurePosixPath(uri.split("://")[-1]).suffixes
    # `batch.csv.gz` is csv; pandas infers the compression from the name.
    for suffix in reversed(suffixes):
        if suffix.lower() in READERS:
            return READERS[suffix.lower()]
    raise DataSourceError(f"{uri}: unsupported file type: expected a .csv or .parquet file")


# What the data itself or its address is to blame for: reading again gives the same answer.
PERMANENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, ValueError, ImportError)


def storage_error(uri: str, action: str, exc: Exception) -> Exception:
    """Bad input (never retried) when the address or content is wrong; otherwise the storage failed
    (a timeout, a reset connection, a 5xx or 429 from S3): an infrastructure error, retried."""
    if isinstance(exc, FileNotFoundError):
        return DataSourceError(f"{uri}: file not found")
    if isinstance(exc, PERMANENT):  # pandas' ParserError is a ValueError
        return DataSourceError(f"{uri}: cannot {action}: {exc}")
    return DataSourceUnavailable(f"{uri}: storage did not answer ({action}): {exc}")


def list_batches(pattern: str) -> list[str]:
    """Return the files a path or glob names, in name order; a glob that matches nothing is an error."""
    try:
        fs, _, paths = fsspec.get_fs_token_paths(pattern)
        return _existing_files(pattern, fs, paths)
    except (DataSourceError, DataSourceUnavailable):
        raise
    except Exception as exc:  # classified: a wrong location is bad input, a failing store is not
        raise storage_error(pattern, "open this location", exc) from exc


def fingerprint(uri: str) -> str:
    """Size and modification stamp (ETag on object stores) from the listing, without reading the data:
    a batch already seen under the same fingerprint is not read again."""
    try:
        fs, _, (path,) = fsspec.get_fs_token_paths(uri)
        info = fs.info(path)
    except Exception as exc:
        raise storage_error(uri, "read its size and date", exc) from exc
    stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created") or ""
    return f"{info.get('size', '')}:{str(stamp).strip(chr(34))}"


def _existing_files(pattern: str, fs: fsspec.AbstractFileSystem, paths: list[str]) -> list[str]:
    if not any(char in pattern for char in _GLOB_CHARS):
        if not fs.exists(paths[0]):
            raise DataSourceError(f"{pattern}: file not found")
        return [pattern]
    files = sorted(path for path in paths if fs.isfile(path))
    if not files:
        raise DataSourceError(f"{pattern}: no file matches this pattern")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [path if protocol == "file" else f"{protocol}://{path}" for path in files]


def _read_parquet(handle: Any, categories: bool, columns: list[str] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    if not categories:
        return pd.read_parquet(handle, columns=columns)
    metadata = pq.ParquetFile(handle).metadata
    schema = metadata.schema.to_arrow_schema()
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    # Strings read as dictionaries become pandas Categoricals: one Python string per distinct value
    # instead of one per row (a million-row column of object strings costs tens of MB and seconds).
    # ParquetFile.read rather than read_table: it reads the file without loading pyarrow's dataset layer.
    file = pq.ParquetFile(handle, metadata=metadata, read_dictionary=strings or None)
    table = file.read(columns=columns, use_pandas_metadata=columns is None)
    # self_destruct frees each Arrow column once converted, so the table and the frame never coexist whole.
    return table.to_pandas(split_blocks=True, self_destruct=True)


def read_frame(uri: str, *, categories: bool = False, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one csv or parquet file; a missing or unreadable file names itself in the error.

    ``categories``: parquet string columns come as pandas Categoricals (for the drift check, which
    needs only their counts); csv is read by pandas with object strings either way. ``columns``: only
    these (from parquet, only their data is read)."""
    kind = file_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            if kind == "parquet":
                return _read_parquet(handle, categories, columns)
            # Floats read back exactly as written (round-trip), so csv and parquet copies hash alike.
            return read_csv(handle, columns)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{uri}: file is empty: expected a header row and data rows") from None
    except Exception as exc:  # classified: bad content is bad input, a failing store is retried
        raise storage_error(uri, f"read as {kind}", exc) from exc


def read_window(uris: list[str], *, categories: bool = False, columns: list[str] | None = None) -> pd.DataFrame:
    """Read several batches as one frame, in the order given (``categories``, ``columns`` as for
    :func:`read_frame`)."""
    if not uris:
        raise DataSourceError("no batches given: expected at least one file")
    frames = [read_frame(uri, categories=categories, columns=columns) for uri in uris]
    if len(frames) == 1:
        return frames[0]
    if categories:
        _unite_categories(frames)
    return pd.concat(frames, ignore_index=True)


def _unite_categories(frames: list[pd.DataFrame]) -> None:
    """Give a column the same categories in every frame: pandas concatenates Categoricals with different
    categories to object strings, the copy reading them as categories avoids."""
    for name in frames[0].columns:
        columns = [frame[name] for frame in frames if name in frame.columns]
        if len(columns) < 2 or not all(isinstance(column.dtype, pd.CategoricalDtype) for column in columns):
            continue
        categories = columns[0].cat.categories
        for column in columns[1:]:
            categories = categories.union(column.cat.categories)
        for frame in frames:
            if name in frame.columns:
                frame[name] = frame[name].cat.set_categories(categories)


def write_frame(frame: pd.DataFrame, uri: str) -> None:
    kind = file_format(uri)
    try:
        fs, _, (path,) = fsspec.get_fs_token_paths(uri)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fsspec.open(uri, "wb") as handle:
            if kind == "parquet":
                frame.to_parquet(handle, index=False)
            else:
                frame.to_csv(handle, index=False)
    except Exception as exc:
        raise storage_error(uri, "write", exc) from exc


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash that ignores the file format: the same rows and columns hash the same.

    ``service.column_check.StreamedHash`` computes this same hash a column at a time, as a batch is read;
    the monitor's records and the training lineage (train_hash, holdout_hash) hold it: change both
    together, and batches recorded under the old hash would be read and checked once more."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
