"""How a pass shows its verdicts in Prefect: a log line per batch and a markdown artifact card."""

from __future__ import annotations

import re

from service.drift.result import DriftResult
from service.monitor import BatchVerdict


def artifact_key(model: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "drift-" + re.sub(r"[^a-z0-9-]", "-", model.lower())


def _mark(drifted: bool) -> str:
    return "**drift**" if drifted else "ok"


def verdict_log_line(verdict: BatchVerdict) -> str:
    """One log line per batch a pass decided on, the full name first: what it decided and why."""
    if verdict.quarantined:
        return f"{verdict.batch_uri}: quarantined, not checked: {verdict.reason}"
    headline = "drift" if verdict.dataset_drift else "no drift"
    columns = f"{len(verdict.drifted_columns)} drifted column(s), {verdict.drifted_share:.0%} of those checked"
    decision = "retrain" if verdict.retrain else "no retrain"
    return f"{verdict.batch_uri}: {headline} ({columns}); decision: {decision} ({verdict.reason})"


def verdict_markdown(verdict: BatchVerdict, result: DriftResult) -> str:
    """The drift verdict as the Prefect UI shows it: headline, decision, report link, per-column table."""
    rows = "\n".join(
        f"| {c.column} | {c.stattest} | {c.score:.4g} | {c.threshold:.4g} | {_mark(c.drifted)} |"
        for c in result.columns
    )
    headline = "Drift detected" if verdict.dataset_drift else "No drift"
    decision = "retrain" if verdict.retrain else "no retrain"
    return (
        f"## {headline} in `{verdict.batch_uri}`\n\n"
        f"Drifted columns: {len(verdict.drifted_columns)} of {len(result.columns)} "
        f"({verdict.drifted_share:.0%}); decision: {decision} ({verdict.reason}).\n\n"
        f"Report: {verdict.report_uri}\n\n"
        "| column | test | score | threshold | verdict |\n|---|---|---|---|---|\n" + rows
    )
