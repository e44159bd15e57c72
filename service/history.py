"""What the registry and the tracking server remember, per model: drift history and counts of what
happened (checks, drifts, retrains, promotions, rejections) for the API and its /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.records import REPORT_DRAWN, REPORT_PATH
from service.registry import TAG

MONITORING, TRAINING = "monitoring", "training"
_MAX_RUNS = 50_000
# Finished drift checks only: quarantined batches share the experiment, and an unfinished run is no record.
CHECKS = f"tags.`{TAG}kind` = 'drift_check' and attributes.status = 'FINISHED'"


@dataclass(frozen=True)
class ModelCounts:
    checks: int
    drifts: int
    retrains: int
    rejections: int
    promotions: dict[str, int]  # env -> versions that became champion there
    last_drift_share: float | None


def _experiment_id(client: Any, model: str, stage: str) -> str | None:
    experiment = client.get_experiment_by_name(f"driftloop/{model}/{stage}")
    return experiment.experiment_id if experiment else None


def _runs(client: Any, model: str, stage: str, limit: int, filter_string: str = "") -> list[Any]:
    experiment_id = _experiment_id(client, model, stage)
    if experiment_id is None:
        return []
    return list(
        client.search_runs(
            [experiment_id], filter_string=filter_string, order_by=["attributes.start_time DESC"], max_results=limit
        )
    )


def drift_history(client: Any, model: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest drift checks of a model, newest first, each with its report once drawn (checks made
    before reports were drawn apart carry no state: theirs was drawn with the check)."""
    return [
        {
            **_report(run),
            "run_id": run.info.run_id,
            "batch": run.data.tags.get(f"{TAG}batch_uri"),
            "dataset_drift": run.data.tags.get(f"{TAG}dataset_drift") == "true",
            "drifted_share": run.data.metrics.get("drifted_share"),
            "reference_run": run.data.tags.get(f"{TAG}reference_run"),
            "checked_at_ms": run.info.start_time,
        }
        for run in _runs(client, model, MONITORING, limit, CHECKS)
    ]


def _report(run: Any) -> dict[str, Any]:
    state = run.data.tags.get(f"{TAG}report", REPORT_DRAWN)
    return {
        "report": f"{run.info.artifact_uri}/{REPORT_PATH}" if state == REPORT_DRAWN else None,
        "report_state": state,
        "report_reason": run.data.tags.get(f"{TAG}report_reason") or None,
    }


def model_counts(client: Any, model: str, environments: list[tuple[str, str]]) -> ModelCounts:
    """``environments``: (env, registered model name) pairs, first environment first."""
    checks = _runs(client, model, MONITORING, _MAX_RUNS, CHECKS)
    promotions, rejections = {}, 0
    for position, (env, name) in enumerate(environments):
        versions = client.search_model_versions(f"name = '{name}'")
        promotions[env] = sum(f"{TAG}promoted_at" in (v.tags or {}) for v in versions)
        if position == 0:
            rejections = sum((v.tags or {}).get(f"{TAG}status") == "rejected" for v in versions)
    return ModelCounts(
        checks=len(checks),
        drifts=sum(run.data.tags.get(f"{TAG}dataset_drift") == "true" for run in checks),
        retrains=len(_runs(client, model, TRAINING, _MAX_RUNS)),
        rejections=rejections,
        promotions=promotions,
        last_drift_share=checks[0].data.metrics.get("drifted_share") if checks else None,
    )
