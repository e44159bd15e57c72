"""A training window read whole, or as a seeded sample of ``training.max_rows`` rows when it is larger.

The sample is drawn before anything else sees the data (the contract, the holdout split, the profile):
the memory a retrain needs is then bounded by ``max_rows`` whatever the window's size, and the holdout
keeps its configured share of what the model sees. Reading never holds more than the sample and one
chunk of a file: a parquet row group, or ``CSV_CHUNK_ROWS`` rows of a csv file (read twice: once to count).

Same files and same seed, same sample: the row counts per chunk are known before any row is drawn, the
sample's size per chunk is one multivariate hypergeometric draw (so the whole is a uniform sample of the
window's rows without replacement), and the rows of each chunk are drawn in file order from one
generator seeded by ``training.random_state``.
"""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import numpy as np
import pandas as pd

from service.data import file_format, read_window, storage_error
from service.errors import DataSourceError

CSV_CHUNK_ROWS = 250_000


def read_training_window(uris: list[str], max_rows: int | None, seed: int) -> tuple[pd.DataFrame, int]:
    """The window's rows, or a sample of ``max_rows`` of them; and how many rows the window has."""
    if max_rows is None:
        frame = read_window(uris)
        return frame, len(frame)
    sizes = [chunk_sizes(uri) for uri in uris]
    total = sum(sum(chunks) for chunks in sizes)
    if total <= max_rows:
        return read_window(uris), total
    rng = np.random.default_rng(seed)
    flat = [size for chunks in sizes for size in chunks]
    taken = iter(rng.multivariate_hypergeometric(flat, max_rows, method="marginals").tolist())
    frames = []
    for uri, chunks in zip(uris, sizes, strict=True):
        picks = [np.sort(rng.choice(size, next(taken), replace=False)) for size in chunks]
        frames.extend(chunk.iloc[rows] for chunk, rows in zip(_chunks(uri), picks, strict=True) if len(rows))
    return pd.concat(frames, ignore_index=True), total


def chunk_sizes(uri: str) -> list[int]:
    """The row count of each chunk of a file: a parquet file's from its footer, a csv file's by reading it."""
    if file_format(uri) == "parquet":
        import pyarrow.parquet as pq

        try:
            with fsspec.open(uri, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
        except Exception as exc:  # classified as reading it would be
            raise storage_error(uri, "read as parquet", exc) from exc
        return [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]
    return [len(chunk) for chunk in _chunks(uri)]


def _chunks(uri: str) -> Iterator[pd.DataFrame]:
    """A file's rows chunk by chunk, each as ``service.data.read_frame`` would read them."""
    try:
        parquet = file_format(uri) == "parquet"
        with fsspec.open(uri, "rb", compression=None if parquet else "infer") as handle:
            if parquet:
                import pyarrow.parquet as pq

                file = pq.ParquetFile(handle)
                for index in range(file.metadata.num_row_groups):
                    yield file.read_row_group(index, use_pandas_metadata=True).to_pandas()
                return
            yield from pd.read_csv(handle, float_precision="round_trip", chunksize=CSV_CHUNK_ROWS)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{uri}: file is empty: expected a header row and data rows") from None
    except DataSourceError:
        raise
    except Exception as exc:
        raise storage_error(uri, "read", exc) from exc
