"""The retrain flow: window → challenger → evaluation on the same holdout → registration → promotion."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import tasks
from flows.notify import publish
from flows.slots import model_slot
from service import notify
from service.config_file import load_config
from service.promote import Outcome
from service.registry import Registry
from service.settings import Config


@dataclass(frozen=True)
class RetrainSummary:
    version: str
    model: str
    gate: str
    outcomes: list[Outcome]


@flow(name="retrain")
def retrain(
    config_path: str, window: list[str] | None = None, drift_run_id: str | None = None
) -> RetrainSummary | None:
    """Train on ``window`` (batch URIs), on the batches up to a drift check's, or — with no champion
    yet — on the configured reference. A request made stale by a newer champion trains nothing."""
    registry = Registry(load_config(config_path))  # in the flow, not a task: see flows.tasks
    config = registry.config
    with model_slot("retrain", config.model.name, config_path) as ours:  # planned inside the slot, never beside another
        if not ours:
            get_run_logger().info("retrain skipped: a retrain of %s is running", config.model.name)
            return None
        return _retrain(config, registry, window, drift_run_id)


def _retrain(
    config: Config, registry: Registry, window: list[str] | None, drift_run_id: str | None
) -> RetrainSummary | None:
    plan, loaded = tasks.prepare(registry, window, drift_run_id)
    if plan.skip_reason or loaded is None:
        get_run_logger().info("retrain skipped: %s", plan.skip_reason)
        return None
    uris, (frame, contract, dropped) = list(plan.uris), loaded
    # The champion is read and loaded in a thread of the task runner while the challenger fits here; its
    # result, not the future, goes on, so a failed load fails the run with its own error.
    champion = tasks.load_champion.submit(registry)
    challenger = tasks.fit_challenger(config, contract, frame, uris, dropped)
    decision = tasks.evaluate(registry, challenger, contract, champion.result())
    candidate, outcomes = tasks.register_and_promote(
        registry, challenger, contract, decision, drift_run_id, flow_run.get_id()
    )
    finished = notify.retrain_finished(
        config.model.name, outcomes[0].env, candidate.version, decision.reason, decision.passed
    )
    source = str(config.source) if config.source else None
    publish([finished, *(notify.for_outcome(config.model.name, outcome, source) for outcome in outcomes)])
    return RetrainSummary(candidate.version, candidate.name, decision.reason, outcomes)
