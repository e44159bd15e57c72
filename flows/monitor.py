"""The monitor flow: one pass over the current batches, retraining on debounced drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run

from flows import tasks
from flows.heartbeat import without_heartbeat
from flows.notify import publish
from flows.retrain import RetrainSummary, retrain
from flows.slots import model_slot
from service import notify
from service.config_file import load_config
from service.monitor import BatchVerdict, NewBatch, config_changes
from service.records import MonitorRecords
from service.reference import Reference
from service.registry import Registry
from service.retrain import training_window
from service.settings import Config
from service.verdicts import artifact_key, verdict_log_line, verdict_markdown


@dataclass
class MonitorSummary:
    model: str = ""
    bootstrap: RetrainSummary | None = None
    verdicts: list[BatchVerdict] = field(default_factory=list)
    retrains: list[RetrainSummary] = field(default_factory=list)
    config_changes: list[str] = field(default_factory=list)
    retrain_requested: str | None = None  # a drift check whose retrain was handed to the retrain deployment
    skipped: bool = False  # another pass of this model was running

    @property
    def quarantined(self) -> list[BatchVerdict]:
        """Batches refused as bad input in this pass (not those refused by an earlier one)."""
        return [verdict for verdict in self.verdicts if verdict.quarantined and not verdict.already_checked]


@flow(name="monitor")
def monitor(
    config_path: str,
    batches: list[str] | None = None,
    retrain_via: Literal["subflow", "event"] = "subflow",
    draw_reports: bool = True,
) -> MonitorSummary:
    """Check each new batch (``batches``, default the config's ``data.current``) against the champion.

    On debounced drift, retrain as a subflow (one process, the embedded default) or emit
    ``driftloop.retrain.requested`` for the retrain deployment's trigger (the cluster's way: the retrain
    runs as its own Job). Either way the batches after a retrain decision wait for the new champion, so
    a backlog ends on the same champion on both paths; a retrain asked for and not finished is asked for
    again by the next pass. Bad batches are quarantined and the pass goes on.

    Drift reports are drawn after every verdict and decision of the pass (``draw_reports``), or left
    pending for the sweep, which draws a whole fleet's in one process."""
    registry = Registry(load_config(config_path))  # in the flow, not a task: see flows.tasks
    config = registry.config
    # Two passes of one model at once could both record the same new batch: one at a time per model.
    with model_slot("monitor", config.model.name, config_path) as ours:
        if not ours:
            get_run_logger().info("pass skipped: a pass of %s is running", config.model.name)
            return MonitorSummary(model=config.model.name, skipped=True)
        summary, history = _pass(config_path, config, registry, batches, retrain_via)
        if draw_reports:
            tasks.draw_reports(registry, history)
        return summary


def _pass(
    config_path: str, config: Config, registry: Registry, batches: list[str] | None, retrain_via: str
) -> tuple[MonitorSummary, MonitorRecords]:
    summary = MonitorSummary(model=config.model.name)
    stream = batches or tasks.list_batches(config)
    reference = tasks.current_reference(registry)
    if reference is None:
        summary.bootstrap = _retrain_subflow(config_path)
        reference = tasks.current_reference(registry)
    summary.config_changes = config_changes(config, reference.contract)
    history, pending, known = tasks.read_state(registry, reference, stream)
    if pending is not None and retrain_via == "event":
        publish([notify.retrain_requested(config.model.name, config_path, pending.run_id)])
        summary.retrain_requested = pending.run_id
        return summary, history
    if pending is not None:
        summary.retrains += _retrained(_retrain_subflow(config_path, drift_run_id=pending.run_id))
        reference = tasks.current_reference(registry)
    for uri in stream:
        verdict = known.get(uri) or tasks.examine(registry, reference, uri, history, flow_run.get_id())
        if isinstance(verdict, NewBatch):
            verdict = _check(config, registry, reference, verdict, history)
        publish([notify.batch_rejected(config.model.name, verdict)])
        if not verdict.already_checked:  # a long history would repeat itself on every pass
            get_run_logger().info(verdict_log_line(verdict))
        summary.verdicts.append(verdict)
        if verdict.retrain and retrain_via == "event":
            publish([notify.retrain_requested(config.model.name, config_path, verdict.check_run_id)])
            summary.retrain_requested = verdict.check_run_id
            break  # the rest waits for the champion that retrain makes
        if verdict.retrain:
            window = training_window(stream, uri, config.training.window)
            summary.retrains += _retrained(
                _retrain_subflow(config_path, window=window, drift_run_id=verdict.check_run_id)
            )
            reference = tasks.current_reference(registry)
    return summary, history


def _check(
    config: Config, registry: Registry, reference: Reference, batch: NewBatch, history: MonitorRecords
) -> BatchVerdict:
    result = batch.result  # computed by examine, in the read that validated and hashed the batch
    verdict = tasks.record_check(registry, reference, result, batch, history, flow_run.get_id())
    key = artifact_key(config.model.name)
    # The UI's cards cut long descriptions at the end: the batch's file name first, then where it is.
    name = batch.uri.rstrip("/").rsplit("/", 1)[-1]
    create_markdown_artifact(verdict_markdown(verdict, result), key=key, description=f"{name} ({batch.uri})")
    create_link_artifact(verdict.report_uri, link_text=f"Drift report for {name}", key=f"{key}-report")
    publish([notify.drift_detected(config.model.name, verdict)])
    return verdict


def _retrain_subflow(
    config_path: str, window: list[str] | None = None, drift_run_id: str | None = None
) -> RetrainSummary | None:
    """The retrain flow as a subflow, without a heartbeat of its own: the pass's says the process is alive."""
    with without_heartbeat():
        return retrain(config_path, window=window, drift_run_id=drift_run_id)


def _retrained(outcome: RetrainSummary | None) -> list[RetrainSummary]:
    return [outcome] if outcome else []
