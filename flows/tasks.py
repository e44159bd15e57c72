"""Prefect tasks: each wraps one ``service`` step, adding retries to I/O and caching to pure steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from service import data, fleet, monitor, promote, records, reports, retrain
from service import reference as references
from service.config_file import load_config
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
def load(config_path: str) -> tuple[Config, Registry]:
    config = load_config(config_path)
    return config, Registry(config)


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
def read_records(registry: Registry) -> records.MonitorRecords:
    return records.read_records(registry)


@task(**IO)
def pending_retrain(
    registry: Registry, reference: references.Reference, history: records.MonitorRecords
) -> records.DriftCheckRecord | None:
    return monitor.pending_retrain(registry, reference.run_id, history)


@task(**IO)
def models_with_work(entries: list[fleet.ModelEntry]) -> list[tuple[fleet.ModelEntry, str | None]]:
    """Each model with why it needs a pass (None: nothing new), in one task: cheap, read-only lookups."""
    return fleet.ask_each(entries, lambda entry: monitor.work_to_do(Registry(entry.config)))


@task(**IO)
def known_verdicts(history: records.MonitorRecords, uris: list[str]) -> dict[str, monitor.BatchVerdict]:
    return monitor.known_verdicts(history, uris)


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
def plan_retrain(registry: Registry, window: list[str] | None, drift_run_id: str | None) -> retrain.RetrainPlan:
    return retrain.plan_retrain(registry, window, drift_run_id)


@task(**IO)
def load_window(uris: list[str], config: Config) -> tuple[Any, Any, retrain.WindowRows]:
    return retrain.load_window(uris, config)


@task(cache_policy=NO_CACHE)
def fit_challenger(
    config: Config, contract: Any, frame: Any, uris: list[str], dropped: retrain.WindowRows
) -> retrain.Challenger:
    return retrain.fit_challenger(config, contract, frame, uris, dropped)


@task(**IO)
def evaluate(registry: Registry, challenger: retrain.Challenger, contract: Any) -> Any:
    return retrain.evaluate_challenger(registry, challenger, contract)


@task(**IO)
def register(
    registry: Registry,
    challenger: retrain.Challenger,
    contract: Any,
    decision: Any,
    drift_run_id: str | None,
    flow_run_id: str | None,
) -> Any:
    return retrain.register_challenger(
        registry, challenger, contract, decision, drift_run_id=drift_run_id, flow_run_id=flow_run_id
    )


@task(**IO)
def settle(registry: Registry, candidate: Any, decision: Any) -> promote.Outcome:
    return retrain.settle(registry, candidate, decision)


@task(**IO)
def mark_settled(registry: Registry, version: Any) -> None:
    retrain.mark_settled(registry, version)


@task(**IO)
def promote_through(registry: Registry) -> list[promote.Outcome]:
    return promote.promote_through(registry)


@task(**IO)
def promote_to(registry: Registry, env: str) -> promote.Outcome:
    return promote.promote(registry, env)


@task(**IO)
def approve(registry: Registry, env: str) -> promote.Outcome:
    return promote.approve(registry, env)


@task(**IO)
def rollback(registry: Registry, env: str) -> promote.Outcome:
    return promote.rollback(registry, env)
