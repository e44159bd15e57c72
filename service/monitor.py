"""One monitoring step per batch: validate it, check it for drift against the champion's training
window, record the check in MLflow and decide, with debouncing, whether to retrain.

The reference is the training window of the first environment's champion (the newest model that
passed the gate): once a retrain is accepted, later batches are compared with the data it learned from,
so one shift triggers one retrain rather than one per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from service.checks import log_drift_check, log_quarantine
from service.contracts import (
    DataContract,
    conform,
    contract_from_dict,
    validate_batch,
)
from service.data import fingerprint, frame_hash, list_batches, read_frame, read_window
from service.drift.check import ReferenceProfile, check_drift, profile_reference
from service.drift.result import DriftResult
from service.drift.stats import supports
from service.errors import ContractViolation, DataSourceError
from service.progress import step
from service.records import DriftCheckRecord, MonitorRecords, SeenBatch, read_records
from service.registry import CHAMPION, CONTRACT_PATH, LINEAGE_PATH, Registry
from service.settings import Config, DebounceSection, DriftSection
from service.stored_reference import StoredReference, stored_reference

REPORT_PENDING = "a drift report is to be drawn"  # work for the sweep itself: no pass needed
# Bad input that quarantines a batch; anything else (a server down) fails the pass and is retried.
BAD_BATCH = (ContractViolation, DataSourceError)


@dataclass(frozen=True)
class Reference:
    """The data the current champion learned from, and the contract drawn from it.

    A champion trained since profiles are stored has its profile and a report sample kept with it
    (``stored``): a check downloads the profile and never reads the window. Otherwise the window is read,
    only when a batch is to be checked: a pass with nothing new reads no data."""

    run_id: str
    version: str
    uris: tuple[str, ...]
    contract: DataContract
    stored: StoredReference | None = None

    @property
    def frame(self) -> pd.DataFrame:  # the whole window, read on demand (the evidently engine needs it)
        return _prepared_reference(self.uris, self.contract)[0]

    @property
    def profile(self) -> ReferenceProfile:
        return self.stored.profile() if self.stored else _prepared_reference(self.uris, self.contract)[1]

    @property
    def rows(self) -> int:
        return self.stored.rows if self.stored else len(self.frame)

    def report_sample(self) -> pd.DataFrame:  # the stored sample, or the window of a champion without one
        return self.stored.sample() if self.stored else self.frame

    def check_frame(self, settings: DriftSection) -> pd.DataFrame:
        """Beside the profile: the window when the engine reads rows, else only its length (no columns)."""
        if self.stored is None or settings.engine == "evidently" or not supports(settings.stattest):
            return self.frame
        return pd.DataFrame(index=pd.RangeIndex(self.stored.rows))


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
    """A batch seen for the first time (or with new content): read, valid, to be checked."""

    uri: str
    frame: pd.DataFrame = field(repr=False)
    batch_hash: str
    fingerprint: str


@lru_cache(maxsize=4)
def _prepared_reference(uris: tuple[str, ...], contract: DataContract) -> tuple[pd.DataFrame, ReferenceProfile]:
    # A champion's window is read, checked and profiled once per process, not once per batch.
    step("reading the champion's training data: %s", _names(uris))
    # Parquet strings as categories: the cached window holds a code per row, not a string per row.
    frame = read_window(list(uris), categories=True)
    validate_batch(frame, contract, ", ".join(uris), require_target=True)
    frame = conform(frame, contract)
    return frame, profile_reference(frame, contract.numerical, contract.categorical)


def _names(uris: tuple[str, ...] | list[str]) -> str:
    return ", ".join(uri.rstrip("/").rsplit("/", 1)[-1] for uri in uris)


def current_reference(registry: Registry) -> Reference | None:
    """The first environment's champion and its training window, or None before the first training."""
    champion = registry.at_alias(registry.config.environments[0], CHAMPION)
    return None if champion is None else reference_of(registry, champion.run_id, champion.version)


def reference_of(registry: Registry, run_id: str, version: str = "") -> Reference:
    """The reference a training run makes: its window, the contract stored with it (not one re-drawn
    from data that may have changed since) and, when it has one, its stored profile."""
    lineage, contract = registry.run_dict(run_id, LINEAGE_PATH), registry.run_dict(run_id, CONTRACT_PATH)
    uris = tuple(str(uri) for uri in lineage["training_data"])  # type: ignore[attr-defined]
    return Reference(run_id, version, uris, contract_from_dict(contract), stored_reference(registry, run_id, lineage))


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
    """Read and validate a batch (labels included); return it conformed to the contract, and its hash.

    Its strings are read as categories; the hash is the same as of object strings (pandas hashes a
    Categorical's values, not its codes), so a batch seen before is still recognised."""
    frame = read_frame(uri, categories=True)
    validate_batch(frame, contract, uri, require_target=True)
    return conform(frame, contract), frame_hash(frame)


def run_drift_check(reference: Reference, batch: pd.DataFrame, config: Config) -> DriftResult:
    """The verdict alone: its report is drawn once the verdict is recorded (service.reports)."""
    columns = config.drift.columns or reference.contract.feature_names
    return check_drift(
        reference.check_frame(config.drift),
        batch,
        numerical=[name for name in reference.contract.numerical if name in columns],
        categorical=[name for name in reference.contract.categorical if name in columns],
        settings=config.drift,
        profile=reference.profile,
        with_report=False,
    )


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
    step("checking %s against the champion's training data", _names([uri]))
    try:
        frame, batch_hash = read_batch(uri, reference.contract)
    except BAD_BATCH as exc:
        cause = str(exc)
        run_id = log_quarantine(
            registry, records, batch_uri=uri, fingerprint=stamp, cause=cause, flow_run_id=flow_run_id
        )
        return _quarantine_verdict(uri, run_id, cause, already=False)
    previous = records.check_of(batch_hash)
    if previous is not None:  # the same content under another name or stamp
        return _verdict(previous, None, already_checked=True, retrain=False, reason="already checked")
    return NewBatch(uri, frame, batch_hash, stamp)


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
