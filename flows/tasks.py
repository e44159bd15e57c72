"""Prefect tasks: each wraps a ``service`` step, or steps that read or write together, adding retries to I/O.

Coarse on purpose: every task run is a few round trips to the Prefect API and events its server records,
so steps that are retried alike (reads; the registry's side of a retrain) share one task.

A flow reads its config file itself, not in a task: a local file needs no retries, and the model's slot,
taken next, would meet the server still recording that task's run: a 503 and a retry, 30-250 ms a slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from service import data, fleet, monitor, promote, records, registration, reports, retrain
from service import reference as references
from service.errors import is_transient
from service.registry import Registry
from service.settings import Config


def _transient(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry what a dependency failed at (a server down, a timeout), never a bad input: a wrong column
    stays wrong however often it is read."""
    return is_transient(state.result(raise_on_failure=False))


IO: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 4, 10],
    "retry_condition_fn": _transient,
    "cache_policy": NO_CACHE,
}


@task(**IO)
def load_fleet(models_dir: str) -> list[fleet.ModelEntry]:
    return fleet.load_fleet(fleet.model_files(Path(models_dir)))


@task(**IO)
def list_batches(config: Config) -> list[str]:
    return data.list_batches(config.resolve(config.data.current))


@task(**IO)
def current_reference(registry: Registry) -> references.Reference | None:
    return references.current_reference(registry)


@task(**IO)
def read_state(
    registry: Registry, reference: references.Reference, uris: list[str]
) -> tuple[records.MonitorRecords, records.DriftCheckRecord | None, dict[str, monitor.BatchVerdict]]:
    """The model's monitoring records, the retrain a drift check asked for and nobody answered yet, and
    the batches of ``uris`` already checked (one task for the history, not one per old batch)."""
    history = records.read_records(registry)
    pending = monitor.pending_retrain(registry, reference.run_id, history)
    return history, pending, monitor.known_verdicts(history, uris)


@task(**IO)
def models_with_work(entries: list[fleet.ModelEntry]) -> list[tuple[fleet.ModelEntry, str | None]]:
    """Each model with why it needs a pass (None: nothing new), in one task: cheap, read-only lookups."""
    return fleet.ask_each(entries, lambda entry: monitor.work_to_do(Registry(entry.config)))


@task(**IO)
def examine(
    registry: Registry,
    reference: references.Reference,
    uri: str,
    history: records.MonitorRecords,
    flow_run_id: str | None,
) -> monitor.BatchVerdict | monitor.NewBatch:
    return monitor.examine(registry, reference, uri, history, flow_run_id)


@task(**IO)
def record_check(
    registry: Registry,
    reference: references.Reference,
    result: Any,
    batch: monitor.NewBatch,
    history: records.MonitorRecords,
    flow_run_id: str | None,
) -> monitor.BatchVerdict:
    return monitor.record_and_decide(registry, reference, result, batch, history, flow_run_id=flow_run_id)


@task(**IO)
def draw_reports(registry: Registry, history: records.MonitorRecords | None = None) -> int:
    return reports.draw_pending(registry, history)


@task(**IO)
def prepare(
    registry: Registry, window: list[str] | None, drift_run_id: str | None
) -> tuple[retrain.RetrainPlan, tuple[Any, Any, retrain.WindowRows] | None]:
    """The retrain's plan and, unless it trains nothing, its training window read: both only read."""
    plan = retrain.plan_retrain(registry, window, drift_run_id)
    if plan.skip_reason:
        return plan, None
    return plan, retrain.load_window(list(plan.uris), registry.config)


@task(cache_policy=NO_CACHE)
def fit_challenger(
    config: Config, contract: Any, frame: Any, uris: list[str], dropped: retrain.WindowRows
) -> retrain.Challenger:
    return retrain.fit_challenger(config, contract, frame, uris, dropped)


@task(**IO)
def load_champion(registry: Registry) -> retrain.Champion | None:
    return retrain.load_champion(registry)


@task(cache_policy=NO_CACHE)
def evaluate(
    registry: Registry, challenger: retrain.Challenger, contract: Any, champion: retrain.Champion | None
) -> Any:
    return retrain.evaluate_against(registry, challenger, contract, champion)


@task(**IO)
def register_and_promote(
    registry: Registry,
    challenger: retrain.Challenger,
    contract: Any,
    decision: Any,
    drift_run_id: str | None,
    flow_run_id: str | None,
) -> tuple[Any, list[promote.Outcome]]:
    """One task for the registry's side: each step finds what an earlier attempt did, so a retry of the
    whole is safe; the gate's decision, its input, is made once by ``evaluate``."""
    return registration.register_and_promote(
        registry, challenger, contract, decision, drift_run_id=drift_run_id, flow_run_id=flow_run_id
    )


@task(**IO)
def promote_to(registry: Registry, env: str) -> promote.Outcome:
    return promote.promote(registry, env)


@task(**IO)
def approve(registry: Registry, env: str) -> promote.Outcome:
    return promote.approve(registry, env)


@task(**IO)
def rollback(registry: Registry, env: str) -> promote.Outcome:
    return promote.rollback(registry, env)
