"""``drift.engine: dask``: the fast engine's tests on an existing Dask cluster, for batches that outgrow a pod.

The client (the flow run, or ``driftloop drift``) lists the files' partitions and submits the work; the
workers read the partitions from the URIs and summarize each column (``dask_parts``); the client judges
the contract from the small summaries (``dask_checks``); then one task per column merges that column's
pieces exactly into the ``ColumnSide``s the fast engine builds and decides its test with
``stats.column_test`` — so verdicts and scores are the fast engine's — returning only a ``ColumnDrift``.
The client holds a handful of small objects whatever the batch's size.

Unattended, as DESIGN.md asks: a worker lost mid-check has its tasks run again by the scheduler (up to
its ``allowed-failures``), and the check returns one result, so one verdict is recorded; a scheduler that
does not answer, or a check lost beyond those retries, is a ``ComputeUnavailable`` naming the address
(retried by the orchestrator, exit 3), never a verdict; bad data is a ``ContractViolation`` naming the
file and column (exit 2). dask is imported only when this engine runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from service.contracts import ColumnKind, DataContract
from service.drift import dask_checks, dask_parts
from service.drift import stats as drift_stats
from service.drift.result import ColumnDrift, DriftResult, check_stattest_fits
from service.errors import ComputeUnavailable, ConfigError
from service.settings import DriftSection, Settings

if TYPE_CHECKING:
    from distributed import Client, Future

CSV_BLOCK_BYTES = 64 << 20  # a csv is read in blocks of its lines of about this many bytes


def scheduler_address(settings: DriftSection) -> str:
    """The model's ``drift.dask_scheduler``, else ``$DRIFTLOOP_DASK_SCHEDULER``; neither is bad config."""
    address = settings.dask_scheduler or Settings().dask_scheduler
    if not address:
        raise ConfigError(
            "drift.engine dask needs the Dask scheduler's address: set drift.dask_scheduler in the model file "
            "or DRIFTLOOP_DASK_SCHEDULER (e.g. tcp://dask-scheduler:8786)"
        )
    return address


def check_on_dask(
    references: list[str],
    currents: list[str],
    settings: DriftSection,
    *,
    kinds: dict[str, ColumnKind] | None = None,
    ignore: list[str] | None = None,
    sources: tuple[str, str] = ("reference", "current"),
    csv_block_bytes: int = CSV_BLOCK_BYTES,
) -> DriftResult:
    """Check the files ``currents`` against ``references`` on the cluster ``settings`` names.

    ``kinds``: the columns to check and their kinds (a model's contract); None takes every column but
    ``ignore`` with the kind the reference's values read as (an ad-hoc check). ``sources`` name the sides
    in errors about a side as a whole (a glob, a window)."""
    if not drift_stats.supports(settings.stattest):
        supported = sorted(drift_stats.STATISTICS)
        raise ConfigError(
            f"drift.stattest {settings.stattest!r} is not computed by drift.engine dask: expected one of "
            f"{supported}, or drift.engine fast or evidently"
        )
    address = scheduler_address(settings)
    reference_parts = dask_parts.plan(references, csv_block_bytes)
    current_parts = dask_parts.plan(currents, csv_block_bytes)
    with _on_cluster(address) as client:
        check = _Check(client, uuid.uuid4().hex[:12])
        reference = check.summaries("reference", reference_parts, kinds, tuple(ignore or ()))
        if kinds is None:  # the reference's kinds are the contract the current side is read by
            reference_metas = check.metas(reference)
            kinds = dask_checks.reference_kinds(reference_metas, ignore or [], sources[0])
            current = check.summaries("current", current_parts, kinds)
        else:  # both sides at once
            current = check.summaries("current", current_parts, kinds)
            reference_metas = check.metas(reference)
            dask_checks.check_side(reference_metas, kinds, None, sources[0])
        current_metas = check.metas(current)
        allowed = None if ignore is None else set(kinds) | set(ignore)
        dask_checks.check_side(current_metas, kinds, allowed, sources[1])
        numerical = [name for name, kind in kinds.items() if kind == "numeric"]
        categorical = [name for name, kind in kinds.items() if kind == "categorical"]
        check_stattest_fits(settings.stattest, numerical, categorical)
        columns = check.decide([*numerical, *categorical], set(numerical), reference, current, settings)
    rows = (sum(meta.rows for meta in reference_metas), sum(meta.rows for meta in current_metas))
    return DriftResult.of_columns(tuple(columns), settings.drift_share, *rows)


def check_window(
    window: tuple[str, ...], batch_uri: str | None, contract: DataContract, columns: list[str], settings: DriftSection
) -> DriftResult:
    """A model's check: ``batch_uri`` against its champion's training ``window``, on ``columns`` of the
    champion's contract (its kinds, not ones re-drawn from data that may have changed since)."""
    if batch_uri is None:
        raise ValueError("drift.engine dask checks files: the batch's URI is needed")
    kinds = {spec.name: spec.kind for spec in contract.features if spec.name in columns}
    sources = (", ".join(window), batch_uri)
    return check_on_dask(list(window), [batch_uri], settings, kinds=kinds, sources=sources)


class _Check:
    """The tasks of one check; their keys start with ``driftloop-<step>-<check id>``."""

    def __init__(self, client: Client, check_id: str) -> None:
        self.client = client
        self.check_id = check_id

    def _key(self, step: str, *parts: object) -> str:
        return "-".join(["driftloop", step, self.check_id, *map(str, parts)])

    def summaries(
        self,
        side: str,
        parts: list[dask_parts.Partition],
        kinds: dict[str, ColumnKind] | None,
        skip: tuple[str, ...] = (),
    ) -> list[Future]:
        return [
            self.client.submit(dask_parts.summarize, part, kinds, skip, key=self._key("read", side, index))
            for index, part in enumerate(parts)
        ]

    def metas(self, summaries: list[Future]) -> list[dask_parts.PartMeta]:
        metas = [self.client.submit(_meta_of, summary, key=f"{summary.key}-meta") for summary in summaries]
        return self.client.gather(metas)

    def decide(
        self,
        names: list[str],
        numeric: set[str],
        reference: list[Future],
        current: list[Future],
        settings: DriftSection,
    ) -> list[ColumnDrift]:
        def pieces(summaries: list[Future], name: str) -> list[Future]:
            # One small task per partition and column: the column's task fetches its own pieces only.
            return [self.client.submit(_piece_of, s, name, key=f"{s.key}-column-{name}") for s in summaries]

        decided = [
            self.client.submit(
                decide_column,
                name,
                name in numeric,
                pieces(reference, name),
                pieces(current, name),
                settings.stattest,
                settings.stattest_threshold,
                key=self._key("decide", name),
            )
            for name in names
        ]
        return self.client.gather(decided)


def _meta_of(summary: tuple) -> dask_parts.PartMeta:
    return summary[0]


def _piece_of(summary: tuple, name: str) -> dask_parts.Piece:
    return summary[1][name]


def merge(pieces: list[dask_parts.Piece], numeric: bool) -> drift_stats.ColumnSide:
    """One side of a column from its partitions' pieces, as ``stats.prepare`` builds it from the whole
    column: sorted runs merged (a stable sort of their concatenation finds the runs), counts added up."""
    if numeric:
        values = np.concatenate(pieces) if pieces else np.empty(0)
        values.sort(kind="stable")
        n_distinct = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0
        return drift_stats.ColumnSide(int(values.size), True, n_distinct, values)
    nonempty = [piece for piece in pieces if len(piece)]
    # In order of first appearance, as value_counts of the whole column lists them.
    counts = pd.concat(nonempty).groupby(level=0, sort=False).sum() if nonempty else pd.Series([], dtype="int64")
    return drift_stats.ColumnSide(int(counts.sum()), False, len(counts), category_counts=counts)


def decide_column(
    name: str,
    numeric: bool,
    reference: list[dask_parts.Piece],
    current: list[dask_parts.Piece],
    stattest: str | None,
    threshold: float | None,
) -> ColumnDrift:
    """Runs on a worker: the column's two sides merged, and its test decided as the fast engine decides it."""
    try:
        test, score, limit, drifted = drift_stats.column_test(
            merge(reference, numeric), merge(current, numeric), stattest, threshold
        )
    except ValueError as exc:
        raise ValueError(f"column {name!r}: {exc}") from None
    return ColumnDrift(name, test.display_name, score, limit, drifted)


@contextmanager
def _on_cluster(address: str) -> Iterator[Any]:
    """A client of the scheduler at ``address``; the cluster's own failures become ``ComputeUnavailable``."""
    try:
        from distributed import Client, KilledWorker
        from distributed.client import FutureCancelledError
    except ImportError:
        raise ConfigError("drift.engine dask needs dask's distributed: pip install 'driftloop[dask]'") from None

    timeout = Settings().dask_connect_timeout
    try:
        # Results come back through the scheduler: the client needs to reach its port alone.
        client = Client(address, timeout=timeout, set_as_default=False, direct_to_workers=False)
    except ValueError as exc:  # not an address at all
        raise ConfigError(f"Dask scheduler address {address!r} is not valid: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise ComputeUnavailable(
            f"the Dask scheduler at {address} did not answer within {timeout:g} s ({exc}): is the cluster up, "
            "and drift.dask_scheduler or DRIFTLOOP_DASK_SCHEDULER right?"
        ) from None
    try:
        yield client
    except ModuleNotFoundError as exc:  # raised by a worker that cannot unpickle our tasks
        raise ConfigError(
            f"the Dask workers at {address} cannot run driftloop's tasks ({exc}): run them with driftloop "
            "installed, in the flow runs' version (on Kubernetes, driftloop's image)"
        ) from None
    except KilledWorker as exc:
        raise ComputeUnavailable(
            f"the Dask cluster at {address} lost the workers of a drift task too often: {exc}"
        ) from None
    except (OSError, TimeoutError, FutureCancelledError) as exc:  # CommClosedError is an OSError
        raise ComputeUnavailable(f"the Dask scheduler at {address} failed during the check: {exc}") from None
    finally:
        client.close()
