"""The sweep flow: one monitor flow run per model file, each its own run (a Kubernetes Job on the
cluster), so one model's crash, OOM or bad data never touches another's."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from flows import tasks

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
    started = []
    for entry in tasks.load_fleet(models_dir):
        if entry.error is not None:
            get_run_logger().error("%s: %s", entry.path, entry.error)
            started.append(Started(entry.name, str(entry.path), None, entry.error))
            continue
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
