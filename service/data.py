"""Reading batches and reference windows from any fsspec URI, writing outputs, and hashing data."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import fsspec
import pandas as pd

from service.errors import DataSourceError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_GLOB_CHARS = set("*?[")


def _format_of(uri: str) -> str:
    suffixes = PurePosixPath(uri.split("://")[-1]).suffixes
    # `batch.csv.gz` is csv; pandas infers the compression from the name.
    for suffix in reversed(suffixes):
        if suffix.lower() in READERS:
            return READERS[suffix.lower()]
    raise DataSourceError(f"{uri}: unsupported file type: expected a .csv or .parquet file")


def list_batches(pattern: str) -> list[str]:
    """Return the files a path or glob names, in name order; a glob that matches nothing is an error."""
    try:
        fs, _, paths = fsspec.get_fs_token_paths(pattern)
    except (OSError, ValueError, ImportError) as exc:
        raise DataSourceError(f"{pattern}: cannot open this location: {exc}") from None
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
    except FileNotFoundError:
        raise DataSourceError(f"{uri}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{uri}: file is empty: expected a header row and data rows") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{uri}: cannot read as {kind}: {exc}") from None


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
    except (OSError, ValueError, ImportError) as exc:
        raise DataSourceError(f"{uri}: cannot write: {exc}") from None


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash that ignores the file format: the same rows and columns hash the same."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
