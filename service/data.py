"""Reading batches and reference windows from any fsspec URI, writing outputs, and hashing data."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import fsspec
import pandas as pd

from service.errors import DataSourceError, DataSourceUnavailable

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_GLOB_CHARS = set("*?[")


def _format_of(uri: str) -> str:
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


def read_frame(uri: str) -> pd.DataFrame:
    """Read one csv or parquet file; a missing or unreadable file names itself in the error."""
    kind = _format_of(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            if kind == "parquet":
                return pd.read_parquet(handle)
            # round_trip: floats read back exactly as written, so csv and parquet copies hash alike.
            return pd.read_csv(handle, float_precision="round_trip")
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{uri}: file is empty: expected a header row and data rows") from None
    except Exception as exc:  # classified: bad content is bad input, a failing store is retried
        raise storage_error(uri, f"read as {kind}", exc) from exc


def read_window(uris: list[str]) -> pd.DataFrame:
    """Read several batches as one frame, in the order given."""
    if not uris:
        raise DataSourceError("no batches given: expected at least one file")
    return pd.concat([read_frame(uri) for uri in uris], ignore_index=True)


def write_frame(frame: pd.DataFrame, uri: str) -> None:
    kind = _format_of(uri)
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
    """A content hash that ignores the file format: the same rows and columns hash the same."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
