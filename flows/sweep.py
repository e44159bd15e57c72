"""The sweep flow: one monitor flow run per model file, each its own run (a Kubernetes Job on the
cluster), so one model's crash, OOM or bad data never touches another's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from flows import tasks
from service.fleet import ModelEntry, is_due, one_line
from service.monitor import REPORT_PENDING
from service.registry import Registry

MONITOR_DEPLOYMENT = "monitor/monitor"


@dataclass(frozen=True)
class Started:
    model: str
    config_path: str
    flow_run_id: str | None
    error: str | None = None


@flow(name="sweep")
def sweep(
    models_dir: str = "/etc/driftloop/models", retrain_via: str = "event", reports_wait_seconds: int = 900
) -> list[Started]:
    """Read the models directory afresh (a new file is picked up with nothing restarted) and start a
    monitor run per model, tagged and named by model so the Prefect UI can filter them.

    The monitor runs leave their drift reports to the sweep, which draws every model's in this one
    process, so a fleet imports Evidently once instead of once per model. It draws a model's as soon as
    its pass has ended, while the others run; a pass still going after ``reports_wait_seconds`` leaves
    its reports to the next sweep."""
    started, now = [], datetime.now(UTC)
    entries = tasks.load_fleet(models_dir)
    for entry in entries:
        if entry.error is not None:
            get_run_logger().error("%s: %s", entry.path, entry.error)
            started.append(Started(entry.name, str(entry.path), None, entry.error))
    due = [entry for entry in entries if entry.config is not None and _due(entry, now)]
    reports_only, to_check = [], []
    for entry, reason in tasks.models_with_work(due):
        if reason is None:  # nothing new: no run, no Job, no process started for this model
            continue
        if reason == REPORT_PENDING:  # a report alone needs no pass: the sweep draws it itself
            reports_only.append(entry)
            continue
        get_run_logger().info("%s: %s", entry.name, reason)
        to_check.append(entry)
    return started + _passes_then_reports(to_check, reports_only, retrain_via, reports_wait_seconds)


def _passes_then_reports(
    to_check: list[ModelEntry], reports_only: list[ModelEntry], retrain_via: str, seconds: float
) -> list[Started]:
    """Start the passes no faster than the monitor deployment's concurrency limit lets them run, and draw
    each model's reports once its pass has ended, between starts.

    A run started beyond the limit is refused a slot and retried only after the server's slot wait (30 s by
    default), so a fleet started at once would spend most of its sweep waiting. Reports drawn while the
    other passes run use the time a sweep would otherwise spend waiting for them, and a fleet's last pass
    is not followed by every model's reports in a row. A pass still going after ``seconds`` stops holding
    back the others (the deployment's limit still caps them) and its reports wait for the next sweep."""
    cap, queue, to_draw = _monitor_cap() if to_check else 0, list(to_check), list(reports_only)
    started: list[Started] = []
    running: dict[str, tuple[ModelEntry, float]] = {}
    while queue or running or to_draw:
        while queue and len(running) < cap:
            entry = queue.pop(0)
            run = _start_pass(entry, retrain_via)
            started.append(run)
            running[str(run.flow_run_id)] = (entry, time.monotonic())
        if to_draw:
            _draw_reports(to_draw.pop(0))
        elif running:
            time.sleep(1)
        if running:
            ended, outlived = _ended(running, seconds)
            to_draw += [running.pop(run_id)[0] for run_id in ended]
            for run_id in outlived:
                running.pop(run_id)
    return started


def _monitor_cap() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        limit = client.read_deployment_by_name(MONITOR_DEPLOYMENT).global_concurrency_limit
    return limit.limit if limit is not None and limit.limit > 0 else 1_000_000


def _ended(running: dict[str, tuple[ModelEntry, float]], seconds: float) -> tuple[list[str], list[str]]:
    """Which of the running passes have ended, and which have outlived ``seconds`` without ending."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids, ended = list(running), []
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 200):  # the API reads at most 200 runs per call
            chunk = FlowRunFilter(id=FlowRunFilterId(any_=ids[start : start + 200]))
            runs = client.read_flow_runs(flow_run_filter=chunk, limit=200)
            ended += [str(run.id) for run in runs if run.state and run.state.is_final()]
    outlived = [
        run_id for run_id, (_, began) in running.items() if run_id not in ended and time.monotonic() - began > seconds
    ]
    return ended, outlived


def _start_pass(entry: ModelEntry, retrain_via: str) -> Started:
    run = run_deployment(
        MONITOR_DEPLOYMENT,
        parameters={"config_path": str(entry.path), "retrain_via": retrain_via, "draw_reports": False},
        flow_run_name=f"monitor-{entry.name}",
        tags=[f"model:{entry.name}"],
        timeout=0,  # start, do not wait: each model's pass runs on its own
        as_subflow=False,
        idempotency_key=f"{flow_run.get_id()}:{entry.name}",  # a retried sweep starts no second pass
    )
    return Started(entry.name, str(entry.path), str(run.id))


def _draw_reports(entry: ModelEntry) -> None:
    try:
        drawn = tasks.draw_reports(Registry(entry.config))
    except Exception as exc:  # isolation: they stay pending, and the next sweep draws them
        get_run_logger().error("%s: drift reports left for the next sweep: %s", entry.name, one_line(exc))
        return
    if drawn:
        get_run_logger().info("%s: %d drift report(s) drawn", entry.name, drawn)


def _due(entry: ModelEntry, now: datetime) -> bool:
    every = entry.config.data.check_every if entry.config else None
    if every is None or is_due(last_pass_started(entry.name), every, now):
        return True
    get_run_logger().info("%s: not due (data.check_every: %s s)", entry.name, every)
    return False


def last_pass_started(model: str) -> datetime | None:
    """When the newest monitor run of ``model`` was started (or is due to start), from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"model:{model}"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    return (runs[0].start_time or runs[0].expected_start_time) if runs else None
