"""The monitor flow: one pass over the current batches, retraining on debounced drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefect import flow
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run

from flows import tasks
from flows.notify import publish
from flows.retrain import RetrainSummary, retrain
from service import notify
from service.monitor import BatchVerdict, artifact_key, verdict_markdown
from service.retrain import training_window


@dataclass
class MonitorSummary:
    bootstrap: RetrainSummary | None = None
    verdicts: list[BatchVerdict] = field(default_factory=list)
    retrains: list[RetrainSummary] = field(default_factory=list)


@flow(name="monitor")
def monitor(
    config_path: str, batches: list[str] | None = None, retrain_via: Literal["subflow", "event"] = "subflow"
) -> MonitorSummary:
    """Check each batch (``batches``, default the config's ``data.current``) against the champion.

    On debounced drift, retrain as a subflow (one process, the embedded default) or emit
    ``driftloop.retrain.requested`` for the retrain deployment's trigger (the cluster's way: the retrain
    runs as its own Job, and its concurrency limit collapses a burst of requests)."""
    summary = MonitorSummary()
    config, registry = tasks.load(config_path)
    stream = batches or tasks.list_batches(config)
    reference = tasks.current_reference(registry)
    if reference is None:
        summary.bootstrap = retrain(config_path)
        reference = tasks.current_reference(registry)
    for uri in stream:
        batch, batch_hash = tasks.read_batch(uri, reference)
        verdict = tasks.previous_verdict(registry, batch_hash)
        if verdict is None:
            result = tasks.drift_check(reference, batch, batch_hash, config)
            verdict = tasks.record_check(registry, reference, result, uri, batch_hash, flow_run.get_id())
            key = artifact_key(config.model.name)
            create_markdown_artifact(verdict_markdown(verdict, result), key=key, description=uri)
            create_link_artifact(verdict.report_uri, link_text=f"Drift report for {uri}", key=f"{key}-report")
            publish([notify.drift_detected(config.model.name, verdict)])
        summary.verdicts.append(verdict)
        if verdict.retrain and retrain_via == "event":
            publish([notify.retrain_requested(config.model.name, config_path, verdict.check_run_id)])
        elif verdict.retrain:
            window = training_window(stream, uri, config.training.window)
            outcome = retrain(config_path, window=window, drift_run_id=verdict.check_run_id)
            summary.retrains.extend([outcome] if outcome else [])
            reference = tasks.current_reference(registry)
    return summary
