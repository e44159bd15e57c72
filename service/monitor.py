"""One monitoring step per batch: validate it, check it for drift against the champion's training
window, record the check in MLflow and decide, with debouncing, whether to retrain.

The reference is the training window of the first environment's champion (the newest model that
passed the gate): once a retrain is accepted, later batches are compared with the data it learned from,
so one shift triggers one retrain rather than one per batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from service.contracts import (
    DataContract,
    conform,
    contract_from_dict,
    contract_from_reference,
    validate_batch,
)
from service.data import frame_hash, read_frame, read_window
from service.drift import DriftResult, ReferenceProfile, check_drift, profile_reference
from service.registry import CHAMPION, CONTRACT_PATH, Registry
from service.settings import Config, DebounceSection
from service.tracking import DriftCheckRecord, find_check, log_drift_check, recent_checks


@dataclass(frozen=True)
class Reference:
    """The data the current champion learned from, and the contract drawn from it."""

    run_id: str
    version: str
    uris: tuple[str, ...]
    frame: pd.DataFrame
    contract: DataContract
    profile: ReferenceProfile = field(repr=False, compare=False)


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


@lru_cache(maxsize=4)
def _prepared_reference(uris: tuple[str, ...], contract: DataContract) -> tuple[pd.DataFrame, ReferenceProfile]:
    # A champion's window is read, checked and profiled once per process, not once per batch.
    frame = read_window(list(uris))
    validate_batch(frame, contract, ", ".join(uris), require_target=True)
    frame = conform(frame, contract)
    return frame, profile_reference(frame, contract.numerical, contract.categorical)


def bootstrap_contract(config: Config) -> tuple[pd.DataFrame, DataContract]:
    """The configured reference and its contract, for training the first champion."""
    uri = config.resolve(config.data.reference)
    frame = read_frame(uri)
    contract = contract_from_reference(frame, config, uri)
    return conform(frame, contract), contract


def current_reference(registry: Registry) -> Reference | None:
    """The first environment's champion and its training window, or None before the first training."""
    config = registry.config
    champion = registry.at_alias(config.environments[0], CHAMPION)
    if champion is None:
        return None
    uris = tuple(str(uri) for uri in registry.lineage(champion)["training_data"])  # type: ignore[union-attr]
    # The contract stored with the champion, not one re-drawn from data that may have changed since.
    contract = contract_from_dict(registry.run_dict(champion.run_id, CONTRACT_PATH))
    frame, profile = _prepared_reference(uris, contract)
    return Reference(champion.run_id, champion.version, uris, frame, contract, profile)


def read_batch(uri: str, contract: DataContract) -> tuple[pd.DataFrame, str]:
    """Read and validate a batch (labels included); return it conformed to the contract, and its hash."""
    frame = read_frame(uri)
    validate_batch(frame, contract, uri, require_target=True)
    return conform(frame, contract), frame_hash(frame)


def run_drift_check(reference: Reference, batch: pd.DataFrame, config: Config) -> DriftResult:
    columns = config.drift.columns or reference.contract.feature_names
    return check_drift(
        reference.frame,
        batch,
        numerical=[name for name in reference.contract.numerical if name in columns],
        categorical=[name for name in reference.contract.categorical if name in columns],
        settings=config.drift,
        profile=reference.profile,
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
    *,
    batch_uri: str,
    batch_hash: str,
    flow_run_id: str | None,
) -> BatchVerdict:
    record = log_drift_check(
        registry,
        result,
        batch_uri=batch_uri,
        batch_hash=batch_hash,
        reference_run_id=reference.run_id,
        flow_run_id=flow_run_id,
    )
    debounce = registry.config.drift.debounce
    history = [check.dataset_drift for check in recent_checks(registry, reference.run_id, debounce.window)]
    retrain, reason = should_retrain(history, debounce)
    return _verdict(record, result, already_checked=False, retrain=retrain, reason=reason)


def previous_verdict(registry: Registry, batch_hash: str) -> BatchVerdict | None:
    """A batch already checked is not checked, nor acted on, again."""
    record = find_check(registry, batch_hash)
    if record is None:
        return None
    return _verdict(record, None, already_checked=True, retrain=False, reason="already checked")


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


def artifact_key(model: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "drift-" + re.sub(r"[^a-z0-9-]", "-", model.lower())


def _mark(drifted: bool) -> str:
    return "**drift**" if drifted else "ok"


def verdict_markdown(verdict: BatchVerdict, result: DriftResult) -> str:
    """The drift verdict as the Prefect UI shows it: headline, decision, report link, per-column table."""
    rows = "\n".join(
        f"| {c.column} | {c.stattest} | {c.score:.4g} | {c.threshold:.4g} | {_mark(c.drifted)} |"
        for c in result.columns
    )
    headline = "Drift detected" if verdict.dataset_drift else "No drift"
    decision = "retrain" if verdict.retrain else "no retrain"
    return (
        f"## {headline} in `{verdict.batch_uri}`\n\n"
        f"Drifted columns: {len(verdict.drifted_columns)} of {len(result.columns)} "
        f"({verdict.drifted_share:.0%}); decision: {decision} ({verdict.reason}).\n\n"
        f"Report: {verdict.report_uri}\n\n"
        "| column | test | score | threshold | verdict |\n|---|---|---|---|---|\n" + rows
    )
