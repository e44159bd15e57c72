"""The monitor's records in MLflow: drift checks and quarantined batches, as runs of the experiment
``driftloop/<model>/monitoring``.

A record is written first and marked FINISHED last: only finished runs count, and a run left
unfinished by a failure is found again by its key and completed, so retries never count a batch twice.
A check is keyed by (batch content hash, reference run); a quarantine by (batch URI, fingerprint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from service.drift.result import DriftResult
from service.registry import TAG, Registry, tag_filter

MONITORING = "monitoring"
REPORT_PATH = "drift/drift_report.html"
# A check's report is drawn after its verdict is recorded (service.reports): the tag says where it is.
REPORT_PENDING, REPORT_DRAWN, REPORT_UNAVAILABLE = "pending", "drawn", "unavailable"


@dataclass(frozen=True)
class DriftCheckRecord:
    run_id: str
    batch_uri: str
    dataset_drift: bool
    report_uri: str
    retrain_requested: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SeenBatch:
    """A batch the monitor has a finished record of: checked, or quarantined with its cause."""

    uri: str
    fingerprint: str
    kind: str  # "drift_check" or "quarantine"
    run_id: str
    cause: str = ""
    dataset_drift: bool = False
    report_pending: bool = False


def _record(run: object) -> DriftCheckRecord:
    return _record_of(run.info.run_id, run.info.artifact_uri, run.data.tags)  # type: ignore[attr-defined]


def _record_of(run_id: str, artifact_uri: str, tags: dict[str, str]) -> DriftCheckRecord:
    return DriftCheckRecord(
        run_id=run_id,
        batch_uri=tags.get(f"{TAG}batch_uri", ""),
        dataset_drift=tags.get(f"{TAG}dataset_drift") == "true",
        report_uri=f"{artifact_uri}/{REPORT_PATH}",
        retrain_requested=tags.get(f"{TAG}retrain") == "true",
        reason=tags.get(f"{TAG}reason", ""),
    )


def _search(registry: Registry, stage: str, filters: list[str], limit: int, *, finished: bool = True) -> list[object]:
    """Runs of a stage, newest first. Only finished runs count as records: a run is written first and
    marked FINISHED last, so one left half-written by a failure is never mistaken for a record."""
    clauses = [*filters, "attributes.status = 'FINISHED'"] if finished else filters
    experiment = registry.experiment_id(stage)
    return list(
        registry.ask(
            f"search {stage} runs",
            lambda: registry.client.search_runs(
                [experiment],
                filter_string=" and ".join(clauses),
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            ),
        )
    )


def find_check(registry: Registry, batch_hash: str) -> DriftCheckRecord | None:
    """The finished check of this very batch content, if one was made: a batch is checked once, whatever
    the champion since, so a new champion never re-reads old batches as fresh drift."""
    found = _search(registry, MONITORING, [tag_filter("kind", "drift_check"), tag_filter("batch_hash", batch_hash)], 1)
    return _record(found[0]) if found else None


def recent_checks(registry: Registry, reference_run_id: str, limit: int) -> list[DriftCheckRecord]:
    """The latest finished checks against this reference, newest first; a new champion starts a new history."""
    runs = _search(registry, MONITORING, [tag_filter("reference_run", reference_run_id)], limit)
    return [_record(run) for run in runs]


def seen_batches(registry: Registry) -> dict[str, SeenBatch]:
    """Every batch URI with a finished record (the newest wins), read once per pass: a sweep with nothing
    new reads no data at all."""
    seen: dict[str, SeenBatch] = {}
    for run in _search(registry, MONITORING, [], 50_000):
        tags = run.data.tags  # type: ignore[attr-defined]
        uri, stamp = tags.get(f"{TAG}batch_uri"), tags.get(f"{TAG}fingerprint")
        if uri and stamp and uri not in seen:
            seen[uri] = SeenBatch(
                uri,
                stamp,
                tags.get(f"{TAG}kind", ""),
                run.info.run_id,  # type: ignore[attr-defined]
                tags.get(f"{TAG}cause", ""),
                tags.get(f"{TAG}dataset_drift") == "true",
                tags.get(f"{TAG}report") == REPORT_PENDING,
            )
    return seen


def _open_run(
    registry: Registry, key_filters: list[str], tags: dict[str, str], run_name: str
) -> tuple[object | None, str, str]:
    """The run recording this key, as (the finished record, if there is one; run id; artifact URI).
    A finished run is the record already made; an unfinished one left by a failed attempt is reused and
    completed, so a retry never makes a second record of the same thing. One search answers both."""
    found = _search(registry, MONITORING, key_filters, 10, finished=False)
    done = [run for run in found if run.info.status == "FINISHED"]  # type: ignore[attr-defined]
    if done:
        return done[0], done[0].info.run_id, done[0].info.artifact_uri  # type: ignore[attr-defined]
    client = registry.client
    if found:
        run_id, artifact_uri = found[0].info.run_id, found[0].info.artifact_uri  # type: ignore[attr-defined]
        from mlflow.entities import RunTag

        entries = [RunTag(f"{TAG}{key}", value) for key, value in tags.items()]
        registry.ask("tag a check run", lambda: client.log_batch(run_id, tags=entries))
        return None, run_id, artifact_uri
    run = registry.ask(
        "create a check run",
        lambda: client.create_run(
            registry.experiment_id(MONITORING),
            run_name=run_name,
            tags={f"{TAG}{key}": value for key, value in tags.items()},
        ),
    )
    return None, run.info.run_id, run.info.artifact_uri


def check_key(batch_hash: str, reference_run_id: str) -> list[str]:
    """What identifies a check: the batch's content and the reference it was compared with."""
    return [
        tag_filter("kind", "drift_check"),
        tag_filter("batch_hash", batch_hash),
        tag_filter("reference_run", reference_run_id),
    ]


def log_drift_check(
    registry: Registry,
    result: DriftResult,
    *,
    batch_uri: str,
    batch_hash: str,
    fingerprint: str,
    reference_run_id: str,
    flow_run_id: str | None,
    decision: tuple[bool, str],
) -> DriftCheckRecord:
    """Record a check with its retrain decision; idempotent, keyed by batch content and reference."""
    retrain, reason = decision
    tags = {
        "kind": "drift_check",
        "batch_uri": batch_uri,
        "batch_hash": batch_hash,
        "fingerprint": fingerprint,
        "reference_run": reference_run_id,
        "dataset_drift": str(result.dataset_drift).lower(),
        "retrain": str(retrain).lower(),
        "reason": reason,
        "flow_run_id": flow_run_id or "",
        "report": REPORT_DRAWN if result.html else REPORT_PENDING,
    }
    name = f"drift {Path(batch_uri).name}"
    existing, run_id, artifact_uri = _open_run(registry, check_key(batch_hash, reference_run_id), tags, name)
    if existing is not None:
        return _record(existing)
    metrics = {
        "drifted_share": result.drifted_share,
        "drifted_columns": float(len(result.drifted_columns())),
        "n_current": float(result.n_current),
        "n_reference": float(result.n_reference),
        **{f"drift_score.{column.column}": column.score for column in result.columns},
    }
    report = {REPORT_PATH: result.html} if result.html else {}
    _finish(registry, run_id, metrics, {"drift/result.json": result.to_dict()}, report)
    return _record_of(run_id, artifact_uri, {f"{TAG}{key}": value for key, value in tags.items()})


def pending_reports(registry: Registry, limit: int = 100) -> list[object]:
    """Finished checks whose report is still to be drawn, oldest first (the order they were checked)."""
    found = _search(
        registry, MONITORING, [tag_filter("kind", "drift_check"), tag_filter("report", REPORT_PENDING)], limit
    )
    return found[::-1]


def log_quarantine(registry: Registry, *, batch_uri: str, fingerprint: str, cause: str, flow_run_id: str | None) -> str:
    """Record a batch refused as bad input, with its cause; later passes skip it until its content changes."""
    key = [tag_filter("kind", "quarantine"), tag_filter("batch_uri", batch_uri), tag_filter("fingerprint", fingerprint)]
    tags = {
        "kind": "quarantine",
        "batch_uri": batch_uri,
        "fingerprint": fingerprint,
        "cause": cause[:4000],
        "flow_run_id": flow_run_id or "",
    }
    existing, run_id, _ = _open_run(registry, key, tags, f"quarantine {Path(batch_uri).name}")
    if existing is not None:
        return run_id
    _finish(registry, run_id, {}, {}, {"quarantine/cause.txt": cause})
    return run_id


def quarantined(registry: Registry, limit: int = 1000) -> list[SeenBatch]:
    """Batches refused as bad input, newest first."""
    runs = _search(registry, MONITORING, [tag_filter("kind", "quarantine")], limit)
    return [
        SeenBatch(
            run.data.tags.get(f"{TAG}batch_uri", ""),  # type: ignore[attr-defined]
            run.data.tags.get(f"{TAG}fingerprint", ""),  # type: ignore[attr-defined]
            "quarantine",
            run.info.run_id,  # type: ignore[attr-defined]
            run.data.tags.get(f"{TAG}cause", ""),  # type: ignore[attr-defined]
        )
        for run in runs
    ]


def _finish(
    registry: Registry,
    run_id: str,
    metrics: dict[str, float],
    dicts: dict[str, object],
    texts: dict[str, str],
) -> None:
    """Write a run's content, then mark it FINISHED: the mark is what makes it a record."""
    from mlflow.entities import Metric

    client = registry.client
    stamp = int(time.time() * 1000)
    entries = [Metric(key, float(value), stamp, 0) for key, value in metrics.items()]
    for start in range(0, len(entries), 1000):
        registry.ask("log metrics", lambda s=start: client.log_batch(run_id, metrics=entries[s : s + 1000]))
    for path, payload in dicts.items():
        registry.ask(f"upload {path}", lambda p=path, d=payload: client.log_dict(run_id, d, p))
    for path, text in texts.items():
        registry.ask(f"upload {path}", lambda p=path, t=text: client.log_text(run_id, t, p))
    registry.ask("finish the run", lambda: client.set_terminated(run_id))
