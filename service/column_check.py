"""A batch checked a column at a time, in one read: each column is validated against the contract, hashed
and tested for drift against the reference's prepared side, then let go of.

Memory holds the columns being worked on (one per thread, ``service.columns.threads``), the per-row hash
being accumulated (8 bytes a row) and each column's small results, never the table. The contract's
problems are named as a check of the whole frame names them (``service.column_rules``); the batch's hash
is ``service.data.frame_hash`` of the frame ``read_frame`` would have read, so batches recorded before
are recognised, and csv and parquet copies hash alike.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pandas as pd

from service.column_rules import Findings, column_findings, ordered_problems
from service.columns import ColumnTable, threads
from service.contracts import DataContract, conform_column, schema_problems
from service.drift import stats as drift_stats
from service.drift.check import ReferenceProfile, column_verdict
from service.drift.result import ColumnDrift, DriftResult, check_stattest_fits
from service.errors import ContractViolation
from service.settings import DriftSection

Result = TypeVar("Result")


class StreamedHash:
    """``frame_hash`` fed a column at a time, in the frame's column order.

    pandas' ``hash_pandas_object`` of a frame hashes each column's values, then folds the columns into one
    hash per row, in order (``combine_hash_arrays``, CPython's tuple hash). The fold is repeated here as the
    columns arrive: threads that read columns out of order wait for their turn to fold theirs in."""

    _MULTIPLIER, _START, _END = np.uint64(1000003), np.uint64(0x345678), np.uint64(97531)

    def __init__(self, names: list[str]) -> None:
        self._digest = hashlib.sha256("\x1f".join(map(str, names)).encode())
        self._count, self._done = len(names), 0
        self._rows: np.ndarray | None = None
        self._multiplier = self._MULTIPLIER
        self._turn = threading.Condition()

    def add(self, index: int, column: pd.Series | None) -> None:
        """Fold column ``index`` in (``None``: it could not be read; the hash is then never asked for)."""
        hashed = None if column is None else pd.util.hash_pandas_object(column, index=False).to_numpy()
        with self._turn:
            self._turn.wait_for(lambda: self._done == index)
            if hashed is not None:
                if self._rows is None:
                    self._rows = np.zeros_like(hashed) + self._START
                inverse = self._count - index
                self._rows ^= hashed
                self._rows *= self._multiplier
                self._multiplier += np.uint64(82520 + inverse + inverse)
            self._done += 1
            self._turn.notify_all()

    def hexdigest(self) -> str:
        rows = np.array([], dtype=np.uint64) if self._rows is None else self._rows + self._END
        self._digest.update(rows.tobytes())
        return self._digest.hexdigest()


def each_column(names: list[str], visit: Callable[[int, str], Result]) -> list[Result]:
    """``visit(index, name)`` for every column, a thread per core: a column is read when a thread takes it
    up, so no more columns than threads are in memory at once. Results in the order of ``names``."""
    with ThreadPoolExecutor(max_workers=threads()) as pool:
        return list(pool.map(visit, range(len(names)), names))


def check_batch(
    uri: str,
    contract: DataContract,
    profile: ReferenceProfile,
    tested: tuple[list[str], list[str]],
    settings: DriftSection,
    n_reference: int,
) -> tuple[DriftResult, str]:
    """Validate (labels included), hash and check the batch at ``uri`` against the reference's prepared
    sides, reading it once, a column at a time. ``tested``: the numerical and categorical columns to test.
    Returns the verdicts and the batch's hash; raises ``ContractViolation`` naming the file and columns."""
    numerical, categorical = tested
    if not numerical + categorical:
        raise ValueError("need columns to check: none of the contract's features is among drift.columns")
    check_stattest_fits(settings.stattest, numerical, categorical)
    kinds = {name: "numeric" for name in numerical} | {name: "categorical" for name in categorical}

    def test(name: str, side: drift_stats.ColumnSide) -> ColumnDrift:
        return column_verdict(name, profile[name], side, settings)

    verdicts, rows, batch_hash = _scan(uri, contract, kinds, test)
    checked = tuple(verdicts[name] for name in [*numerical, *categorical])
    return DriftResult.of_columns(checked, settings.drift_share, n_reference, rows), batch_hash  # type: ignore[arg-type]


def validate_and_hash(uri: str, contract: DataContract) -> str:
    """Validate the batch at ``uri`` (labels included) and return its hash, a column at a time, testing
    nothing: for an engine that tests the files elsewhere (a Dask cluster)."""
    return _scan(uri, contract, {}, None)[2]


def _scan(
    uri: str,
    contract: DataContract,
    kinds: dict[str, str],
    test: Callable[[str, drift_stats.ColumnSide], ColumnDrift] | None,
) -> tuple[dict[str, ColumnDrift | None], int, str]:
    """Read the batch once, a column at a time: validate every column, fold it into the hash, and ``test``
    each column of ``kinds`` (name -> numeric or categorical). Returns the verdicts by column, the number
    of rows and the hash; raises ``ContractViolation`` naming the file and columns."""
    with ColumnTable([uri]) as table:
        problems, checked = schema_problems(table.names, table.num_rows, contract, require_target=True)
        if problems:  # from the schema: no data is read
            raise ContractViolation(uri, problems)
        hashed = StreamedHash(table.names)

        def visit(index: int, name: str) -> tuple[Findings | None, ColumnDrift | None]:
            try:
                column = table.column(name)
            except BaseException:
                hashed.add(index, None)  # the next columns must not wait for this one
                raise
            hashed.add(index, column)
            if name not in checked:
                return None, None
            findings = column_findings(column, name, contract, require_target=True)
            if test is None or name not in kinds or any(findings):
                return findings, None
            side = drift_stats.prepare(conform_column(column, kinds[name]), kinds[name] == "numeric", owned=True)
            del column  # the prepared side holds what the test needs (sorted values, or counts)
            return findings, test(name, side)

        outcomes = dict(zip(table.names, each_column(table.names, visit), strict=True))
        found = {name: findings for name, (findings, _) in outcomes.items() if findings is not None}
        if problems := ordered_problems(found, contract, require_target=True):
            raise ContractViolation(uri, problems)
        return {name: verdict for name, (_, verdict) in outcomes.items()}, table.num_rows, hashed.hexdigest()
