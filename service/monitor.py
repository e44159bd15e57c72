"""One monitoring step per batch: validate it, check it for drift against the champion's training
window, record the check in MLflow and decide, with debouncing, whether to retrain.

The reference is the training window of the first environment's champion (the newest model that
passed the gate): once a retrain is accepted, later batches are compared with the data it learned from,
so one shift triggers one retrain rather than one per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from service import column_check
from service.checks import log_drift_check, log_quarantine
from service.contracts import DataContract, conform, validate_batch
from service.data import fingerprint, frame_hash, list_batches, read_frame
from service.drift.check import check_drift, checks_by_column
from service.drift.result import DriftResult
from service.errors import ContractViolation, DataSourceError
from service.progress import step
from service.records import DriftCheckRecord, MonitorRecords, SeenBatch, read_records
from service.reference import Reference, file_names
from service.registry import CHAMPION, Registry
from service.settings import Config, DebounceSection

REPORT_PENDING = "a drift report is to be drawn"  # work for the sweep itself: no pass needed
# Bad input that quarantines a batch; anything else (a server down) fails the pass and is retried.
BAD_BATCH = (ContractViolation, DataSourceError)


@dataclass(frozen=True)
class BatchVerdict:
    batch_uri: str
    dataset_drift: bool
    drifted_columns: tuple[str, ...]
    drifted_share: float
    check_run_id: str
    report_uri: str
    already_checked: bool
    retrain: bool
    reason: str
    quarantined: bool = False  # refused as bad input: ``reason`` holds the cause


@dataclass(frozen=True)
class NewBatch:
    """A batch seen for the first time (or with new content): read once, valid, checked, to be recorded."""

    uri: str
    result: DriftResult = field(repr=False)
    batch_hash: str
    fingerprint: str


def config_changes(config: Config, contract: DataContract) -> list[str]:
    """What the config says now that the champion's contract does not: checks keep to the champion's
    contract, and the change takes effect when the next retrain draws a new one."""
    changes = []
    if config.model.target != contract.target:
        changes.append(f"model.target {contract.target!r} → {config.model.target!r}")
    if config.model.features is not None and list(config.model.features) != contract.feature_names:
        changes.append(f"model.features {contract.feature_names} → {config.model.features}")
    if config.model.features is None and sorted(config.model.ignore) != sorted(contract.ignore):
        changes.append(f"model.ignore {sorted(contract.ignore)} → {sorted(config.model.ignore)}")
    for key, value in config.contract.model_dump().items():
        stored = getattr(contract, key, value)
        if stored != value:
            changes.append(f"contract.{key} {stored} → {value}")
    return changes


def read_batch(uri: str, contract: DataContract) -> tuple[pd.DataFrame, str]:
    """Read and validate a whole batch (labels included), for Evidently's engine; return it conformed to the
    contract, and its hash (of its strings read as categories: the same as of object strings)."""
    frame = read_frame(uri, categories=True)
    validate_batch(frame, contract, uri, require_target=True)
    return conform(frame, contract), frame_hash(frame)


def check_batch(reference: Reference, uri: str, config: Config) -> tuple[DriftResult, str]:
    """Read the batch once, a column at a time: validated, hashed and checked against the reference's
    prepared sides (``service.column_check``), so memory holds a few columns, not the batch. Evidently's
    engine takes whole frames: the batch is then read whole. On ``drift.engine: dask`` the cluster's
    workers read and test the files; here the batch is only validated and hashed. The verdict alone: its
    report is drawn once the verdict is recorded (service.reports)."""
    columns = config.drift.columns or reference.contract.feature_names
    numerical = [name for name in reference.contract.numerical if name in columns]
    categorical = [name for name in reference.contract.categorical if name in columns]
    if config.drift.engine == "dask":
        from service.drift.dask_engine import check_window

        batch_hash = column_check.validate_and_hash(uri, reference.contract)
        return check_window(reference.uris, uri, reference.contract, columns, config.drift), batch_hash
    if checks_by_column(config.drift):
        n_reference = reference.rows  # from the stored profile: the window is not read
        tested = (numerical, categorical)
        return column_check.check_batch(uri, reference.contract, reference.profile, tested, config.drift, n_reference)
    frame, batch_hash = read_batch(uri, reference.contract)
    result = check_drift(
        reference.frame,
        frame,
        numerical=numerical,
        categorical=categorical,
        settings=config.drift,
        profile=reference.profile,
    )
    return result, batch_hash


def should_retrain(history: list[bool], debounce: DebounceSection) -> tuple[bool, str]:
    """``history`` is newest first. Act when the latest drifted and N of the last M did."""
    if not history or not history[0]:
        return False, "no drift in the latest batch"
    drifted = sum(history[: debounce.window])
    if drifted >= debounce.min_drifted:
        return True, f"drift in {drifted} of the last {debounce.window} checks"
    return (
        False,
        f"drift in {drifted} of the last {debounce.window} checks; waiting for {debounce.min_drifted}",
    )


def record_and_decide(
    registry: Registry,
    reference: Reference,
    result: DriftResult,
    batch: NewBatch,
    records: MonitorRecords,
    *,
    flow_run_id: str | None,
) -> BatchVerdict:
    """Decide with the finished checks before this one, then record check and decision as one record."""
    debounce = registry.config.drift.debounce
    earlier = [check.dataset_drift for check in records.recent_checks(reference.run_id, debounce.window)]
    decision = should_retrain([result.dataset_drift, *earlier], debounce)
    record = log_drift_check(
        registry,
        records,
        result,
        batch_uri=batch.uri,
        batch_hash=batch.batch_hash,
        fingerprint=batch.fingerprint,
        reference_run_id=reference.run_id,
        flow_run_id=flow_run_id,
        decision=decision,
    )
    return _verdict(record, result, already_checked=False, retrain=record.retrain_requested, reason=record.reason)


def examine(
    registry: Registry, reference: Reference, uri: str, records: MonitorRecords, flow_run_id: str | None
) -> BatchVerdict | NewBatch:
    """What a pass does with one batch URI: known by its fingerprint, it is not read again; bad input is
    quarantined with its cause (and skipped until its content changes); otherwise it is read to be checked."""
    stamp = fingerprint(uri)
    known = records.seen().get(uri)
    if known is not None and known.fingerprint == stamp:
        return _known_verdict(known)
    step("checking %s against the champion's training data", file_names([uri]))
    # The reference is read first, outside the batch's blame: a reference that cannot be read is no
    # reason to quarantine the batch.
    if registry.config.drift.engine != "dask":  # on dask the cluster's workers read the reference
        reference.profile  # noqa: B018
    try:
        result, batch_hash = check_batch(reference, uri, registry.config)
    except BAD_BATCH as exc:
        cause = str(exc)
        run_id = log_quarantine(
            registry, records, batch_uri=uri, fingerprint=stamp, cause=cause, flow_run_id=flow_run_id
        )
        return _quarantine_verdict(uri, run_id, cause, already=False)
    previous = records.check_of(batch_hash)
    if previous is not None:  # the same content under another name or stamp
        return _verdict(previous, None, already_checked=True, retrain=False, reason="already checked")
    return NewBatch(uri, result, batch_hash, stamp)


def known_verdicts(records: MonitorRecords, uris: list[str]) -> dict[str, BatchVerdict]:
    """The batches of ``uris`` already recorded under their current size and date, with their verdicts:
    a pass answers them all at once and reads, or even examines, only the others."""
    seen = records.seen()
    return {uri: _known_verdict(seen[uri]) for uri in uris if not _is_new(uri, seen)}


def _known_verdict(known: SeenBatch) -> BatchVerdict:
    if known.kind == "quarantine":
        return _quarantine_verdict(known.uri, known.run_id, known.cause, already=True)
    return BatchVerdict(
        known.uri, known.dataset_drift, (), float("nan"), known.run_id, "", True, False, "already checked"
    )


def _quarantine_verdict(uri: str, run_id: str, cause: str, *, already: bool) -> BatchVerdict:
    return BatchVerdict(uri, False, (), float("nan"), run_id, "", already, False, cause, quarantined=True)


def pending_retrain(registry: Registry, reference_run_id: str, records: MonitorRecords) -> DriftCheckRecord | None:
    """The newest check against this champion that asked for a retrain no version has answered yet
    (registered or rejected): a failed retrain is not lost, the next pass runs it again."""
    from service.retrain import answering_versions  # retrain builds on monitor: imported when asked

    for check in records.recent_checks(reference_run_id, 100):
        if check.retrain_requested:
            return None if answering_versions(registry, check.run_id) else check
    return None


def work_to_do(registry: Registry) -> str | None:
    """Why a pass of this model is needed, or None: no champion yet, a retrain pending, or a batch not
    seen under its current size and date (``REPORT_PENDING``: no pass, only a report left to draw).
    Asked before a pass starts, it reads no data, so a sweep with nothing new costs a listing and a few
    registry queries per model."""
    config = registry.config
    champion = registry.at_alias(config.environments[0], CHAMPION)
    if champion is None:
        return "no champion yet"
    records = read_records(registry)
    if pending_retrain(registry, champion.run_id, records) is not None:
        return "a retrain is pending"
    seen = records.seen()
    new = [uri for uri in list_batches(config.resolve(config.data.current)) if _is_new(uri, seen)]
    if new:
        return f"{len(new)} new batch(es)"
    return REPORT_PENDING if any(batch.report_pending for batch in seen.values()) else None


def _is_new(uri: str, seen: dict[str, SeenBatch]) -> bool:
    known = seen.get(uri)
    return known is None or known.fingerprint != fingerprint(uri)


def _verdict(
    record: DriftCheckRecord, result: DriftResult | None, *, already_checked: bool, retrain: bool, reason: str
) -> BatchVerdict:
    return BatchVerdict(
        batch_uri=record.batch_uri,
        dataset_drift=record.dataset_drift,
        drifted_columns=tuple(result.drifted_columns()) if result else (),
        drifted_share=result.drifted_share if result else float("nan"),
        check_run_id=record.run_id,
        report_uri=record.report_uri,
        already_checked=already_checked,
        retrain=retrain,
        reason=reason,
    )
