"""The monitor's records in MLflow: drift checks and quarantined batches, as runs of the experiment
``driftloop/<model>/monitoring``.

A record is written first and marked FINISHED last: only finished runs count, and a run left
unfinished by a failure is found again by its key and completed, so retries never count a batch twice.
A check is keyed by (batch content hash, reference run); a quarantine by (batch URI, fingerprint).
"""

from __future__ import annotations

import time
from pathlib import Path

from service.drift.result import DriftResult
from service.records import (
    MONITORING,
    REPORT_DRAWN,
    REPORT_PATH,
    REPORT_PENDING,
    DriftCheckRecord,
    MonitorRecords,
    RecordRun,
    SeenBatch,
)
from service.registry import TAG, Registry, tag_filter


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


def _open_run(
    registry: Registry, records: MonitorRecords, key: dict[str, str], tags: dict[str, str], run_name: str
) -> tuple[RecordRun | None, RecordRun]:
    """The run recording this key, as (the finished record, if there is one; the run to write). A
    finished run is the record already made; an unfinished one left by a failed attempt is reused and
    completed, so a retry never makes a second record of the same thing."""
    found = _matching(registry, records, key)
    done = [run for run in found if run.finished]
    if done:
        return done[0], done[0]
    client = registry.client
    if found:
        run_id, artifact_uri = found[0].run_id, found[0].artifact_uri
        from mlflow.entities import RunTag

        entries = [RunTag(f"{TAG}{key}", value) for key, value in tags.items()]
        registry.ask("tag a check run", lambda: client.log_batch(run_id, tags=entries))
        return None, _opened(records, RecordRun(run_id, artifact_uri, False, tags))
    try:
        run = registry.ask(
            "create a check run",
            lambda: client.create_run(
                registry.experiment_id(MONITORING),
                run_name=run_name,
                tags={f"{TAG}{key}": value for key, value in tags.items()},
            ),
        )
    except Exception:
        records.doubt(key)  # the run may exist behind a lost answer: the retry asks the server
        raise
    return None, _opened(records, RecordRun(run.info.run_id, run.info.artifact_uri, False, tags))


def _matching(registry: Registry, records: MonitorRecords, key: dict[str, str]) -> list[RecordRun]:
    """The runs of this key, from the records; from the server when a create for it failed without an
    answer, since the server may have made the run all the same."""
    if not records.doubted(key):
        return records.matching(key)
    found = _search(registry, MONITORING, [tag_filter(name, value) for name, value in key.items()], 10, finished=False)
    for run in reversed(found):
        records.add(RecordRun.of(run))
    records.settle(key)
    return records.matching(key)


def _opened(records: MonitorRecords, run: RecordRun) -> RecordRun:
    # Kept unfinished in the records at once: a retry of the write that fails next reuses this run.
    records.add(run)
    return run


def check_key(batch_hash: str, reference_run_id: str) -> dict[str, str]:
    """What identifies a check: the batch's content and the reference it was compared with."""
    return {"kind": "drift_check", "batch_hash": batch_hash, "reference_run": reference_run_id}


def log_drift_check(
    registry: Registry,
    records: MonitorRecords,
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
    existing, run = _open_run(registry, records, check_key(batch_hash, reference_run_id), tags, name)
    if existing is not None:
        return existing.check_record()
    metrics = {
        "drifted_share": result.drifted_share,
        "drifted_columns": float(len(result.drifted_columns())),
        "n_current": float(result.n_current),
        "n_reference": float(result.n_reference),
        **{f"drift_score.{column.column}": column.score for column in result.columns},
    }
    report = {REPORT_PATH: result.html} if result.html else {}
    _finish(registry, run.run_id, metrics, {"drift/result.json": result.to_dict()}, report)
    finished = RecordRun(run.run_id, run.artifact_uri, True, tags)
    records.add(finished)
    return finished.check_record()


def pending_reports(registry: Registry, limit: int = 100) -> list[object]:
    """Finished checks whose report is still to be drawn, oldest first (the order they were checked)."""
    found = _search(
        registry, MONITORING, [tag_filter("kind", "drift_check"), tag_filter("report", REPORT_PENDING)], limit
    )
    return found[::-1]


def log_quarantine(
    registry: Registry,
    records: MonitorRecords,
    *,
    batch_uri: str,
    fingerprint: str,
    cause: str,
    flow_run_id: str | None,
) -> str:
    """Record a batch refused as bad input, with its cause; later passes skip it until its content changes."""
    key = {"kind": "quarantine", "batch_uri": batch_uri, "fingerprint": fingerprint}
    tags = {
        "kind": "quarantine",
        "batch_uri": batch_uri,
        "fingerprint": fingerprint,
        "cause": cause[:4000],
        "flow_run_id": flow_run_id or "",
    }
    existing, run = _open_run(registry, records, key, tags, f"quarantine {Path(batch_uri).name}")
    if existing is not None:
        return run.run_id
    _finish(registry, run.run_id, {}, {}, {"quarantine/cause.txt": cause})
    records.add(RecordRun(run.run_id, run.artifact_uri, True, tags))
    return run.run_id


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
