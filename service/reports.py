"""Drift reports, drawn after the verdicts they illustrate.

Evidently's HTML report costs more than the check itself (importing evidently alone takes seconds), and
no decision waits for it. So a check records its verdict and its retrain decision first, tagged
``report: pending``, and its report is drawn afterwards: at the end of the pass, or by the sweep for every
model of a fleet in one process, where one import of evidently serves them all. The tag is on a finished
record, so a report is never lost: whoever draws next finds it.

A retrain's training run keeps a copy of the report of the check that asked for it. The retrain does not
wait for it either: registered before the report is drawn, its run is tagged ``report: pending`` too, and
the next drawing copies the report into it (``copy_to_trainings``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from service.checks import pending_reports
from service.drift.report import sampled_report
from service.errors import DriftloopError, InfrastructureError, RegistryError
from service.mlflow_store import Store
from service.monitor import read_batch
from service.progress import step
from service.records import REPORT_DRAWN, REPORT_PATH, REPORT_PENDING, REPORT_UNAVAILABLE, MonitorRecords, RecordRun
from service.reference import reference_of
from service.registry import TAG, Registry, tag_filter
from service.tracking import TRAINING

_log = logging.getLogger(__name__)


def draw_pending(registry: Registry, records: MonitorRecords | None = None, limit: int = 100) -> int:
    """Draw the pending reports of this model's checks, oldest first; return how many were handled.
    A pass hands over the records it read and kept current; the sweep, drawing for a fleet, searches.
    Then the training runs that answered a check before its report was drawn get their copy of it."""
    if records is None:
        runs = [RecordRun.of(run) for run in pending_reports(registry, limit)]
    else:
        runs = records.finished({"kind": "drift_check", "report": REPORT_PENDING})[:limit][::-1]
    if runs:
        step("drawing %d drift report(s) with Evidently", len(runs))
    for run in runs:
        if records is None:
            draw(registry, run)  # just searched: its state is current
        else:
            _draw_if_pending(registry, run.run_id)
    copy_to_trainings(registry)
    return len(runs)


def check_report(registry: Registry, check_run_id: str) -> tuple[str, str | None]:
    """A check's report state, with its HTML once drawn: what a training run answering the check keeps."""
    _, state = _check_state(registry, check_run_id)
    return state, registry.run_text(check_run_id, REPORT_PATH) if state == REPORT_DRAWN else None


def _check_state(registry: Registry, check_run_id: str) -> tuple[Any, str]:
    """A check's run and the state of its report, read now."""
    run = registry.ask(f"read check run {check_run_id}", lambda: registry.client.get_run(check_run_id))
    return run, run.data.tags.get(f"{TAG}report", REPORT_DRAWN)  # older checks drew theirs with the verdict


def copy_to_trainings(registry: Registry) -> int:
    """Give the training runs registered before their check's report was drawn (tagged ``report: pending``)
    a copy of it, in every registry that holds one of them (a promotion copies a run across registries
    with its tags); return how many got theirs. A run whose check's report cannot be drawn is marked so.
    Another environment's registry that does not answer (or refuses) is logged and left for the next
    drawing: it must not fail the passes of the first environment, which need nothing from it."""
    checks: dict[str, tuple[str, str | None]] = {}
    done = _copy_into(registry, registry.store(), checks)  # the default registry's failure fails the drawing
    for env in registry.config.registry.environments:  # those with a registry of their own
        store = registry.store(env)
        try:
            done += _copy_into(registry, store, checks)
        except (InfrastructureError, RegistryError) as exc:  # down, or refusing this process's credentials
            _log.warning("drift reports left for the next drawing in %s: %s", store.tracking_uri, exc)
    return done


def _copy_into(registry: Registry, store: Store, checks: dict[str, tuple[str, str | None]]) -> int:
    done = 0
    for run in _waiting_trainings(registry, store):
        check = run.data.tags[f"{TAG}drift_run_id"]
        if check not in checks:
            checks[check] = check_report(registry, check)
        state, html = checks[check]
        if state != REPORT_PENDING:
            _give_copy(store, run.info.run_id, state, html)
            done += 1
    return done


def _waiting_trainings(registry: Registry, store: Store) -> list[Any]:
    name = registry.config.experiment_name(TRAINING)
    experiment = store.ask(f"read experiment {name}", lambda: store.client.get_experiment_by_name(name))
    if experiment is None:
        return []
    waiting = tag_filter("report", REPORT_PENDING)
    return store.ask(  # type: ignore[no-any-return]
        "search training runs waiting for a drift report",
        lambda: store.client.search_runs([experiment.experiment_id], filter_string=waiting, max_results=100),
    )


def _give_copy(store: Store, run_id: str, state: str, html: str | None) -> None:
    if html is not None:
        store.ask("copy the drift report", lambda: store.client.log_text(run_id, html, REPORT_PATH))
    store.ask("tag the drift report", lambda: store.client.set_tag(run_id, f"{TAG}report", state))


def copy_if_drawn(registry: Registry, training_run_id: str, check_run_id: str) -> None:
    """Copy a check's report into a training run just logged without it, if it has been drawn since."""
    state, html = check_report(registry, check_run_id)
    if state != REPORT_PENDING:
        _give_copy(registry.store(), training_run_id, state, html)


def _draw_if_pending(registry: Registry, check_run_id: str) -> str:
    """Draw a check's report unless someone drew it since the pass's records were read (another process
    drawing pending reports: the sweep, or an Airflow check step)."""
    run, state = _check_state(registry, check_run_id)
    return draw(registry, RecordRun.of(run)) if state == REPORT_PENDING else state


def draw(registry: Registry, run: RecordRun) -> str:
    """Draw one check's report and mark it drawn, or mark it unavailable with the reason when it can no
    longer be drawn faithfully (the batch changed or is gone). A server down raises: it stays pending."""
    run_id, tags = run.run_id, run.tags
    try:
        html = _report_html(registry, run_id, tags)
    except InfrastructureError:
        raise
    except Exception as exc:
        # The verdict stands without its picture: a report that cannot be drawn (the batch is gone or
        # changed, Evidently refuses the data) must not fail every later pass of the model.
        _mark(registry, run_id, REPORT_UNAVAILABLE, f"{type(exc).__name__}: {exc}"[:4000])
        return REPORT_UNAVAILABLE
    registry.ask("upload the drift report", lambda: registry.client.log_text(run_id, html, REPORT_PATH))
    _mark(registry, run_id, REPORT_DRAWN, "")
    return REPORT_DRAWN


def _report_html(registry: Registry, run_id: str, tags: dict[str, str]) -> str:
    reference = reference_of(registry, tags["reference_run"])
    uri = tags["batch_uri"]
    frame, batch_hash = read_batch(uri, reference.contract)
    if batch_hash != tags["batch_hash"]:
        raise DriftloopError(f"{uri} changed since it was checked: its report would show other data")
    checked = json.loads(registry.run_text(run_id, "drift/result.json"))
    names = {column["column"] for column in checked["columns"]}
    drifted = sum(column["drifted"] for column in checked["columns"])
    verdict = f"{'drift' if checked['dataset_drift'] else 'no drift'} ({drifted} of {len(names)} columns)"
    return sampled_report(
        reference.report_sample(),
        frame,
        [name for name in reference.contract.numerical if name in names],
        [name for name in reference.contract.categorical if name in names],
        registry.config.drift,
        verdict,
        reference_rows=reference.rows,
    )


def _mark(registry: Registry, run_id: str, state: str, reason: str) -> None:
    from mlflow.entities import RunTag

    tags = [RunTag(f"{TAG}report", state), RunTag(f"{TAG}report_reason", reason)]
    registry.ask("tag the drift report", lambda: registry.client.log_batch(run_id, tags=tags))
