"""The sweep flow: one monitor flow run per model file, each its own run (a Kubernetes Job on the
cluster), so one model's crash, OOM or bad data never touches another's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from flows import tasks
from service.fleet import ModelEntry, is_due

MONITOR_DEPLOYMENT = "monitor/monitor"


@dataclass(frozen=True)
class Started:
    model: str
    config_path: str
    flow_run_id: str | None
    error: str | None = None


@flow(name="sweep")
def sweep(models_dir: str = "/etc/driftloop/models", retrain_via: str = "event") -> list[Started]:
    """Read the models directory afresh (a new file is picked up with nothing restarted) and start a
    monitor run per model, tagged and named by model so the Prefect UI can filter them."""
    started, now = [], datetime.now(UTC)
    entries = tasks.load_fleet(models_dir)
    for entry in entries:
        if entry.error is not None:
            get_run_logger().error("%s: %s", entry.path, entry.error)
            started.append(Started(entry.name, str(entry.path), None, entry.error))
    due = [entry for entry in entries if entry.config is not None and _due(entry, now)]
    for entry, reason in tasks.models_with_work(due):
        if reason is None:  # nothing new: no run, no Job, no process started for this model
            continue
        get_run_logger().info("%s: %s", entry.name, reason)
        run = run_deployment(
            MONITOR_DEPLOYMENT,
            parameters={"config_path": str(entry.path), "retrain_via": retrain_via},
            flow_run_name=f"monitor-{entry.name}",
            tags=[f"model:{entry.name}"],
            timeout=0,  # start, do not wait: each model's pass runs on its own
            as_subflow=False,
            idempotency_key=f"{flow_run.get_id()}:{entry.name}",  # a retried sweep starts no second pass
        )
        started.append(Started(entry.name, str(entry.path), str(run.id)))
    return started


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
