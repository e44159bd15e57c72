"""Registration of a challenger: its training run logged with lineage, its version registered in the first
environment, settled there by the gate, promoted by the policy, and its drift check marked answered."""

from __future__ import annotations

import hashlib

from service.contracts import DataContract
from service.evaluate import GateDecision
from service.progress import step
from service.promote import Outcome, accept_candidate, gate_tags, promote_through
from service.records import REPORT_PENDING
from service.registry import Registry, VersionRef
from service.reports import check_report, copy_if_drawn
from service.retrain import Challenger, mark_settled
from service.settings import Config
from service.tracking import code_version, finished_training, git_sha, log_training_run


def training_key(challenger: Challenger, drift_run_id: str | None) -> str:
    """What makes two trainings the same one: the request and the exact data (a retry, or a rerun)."""
    parts = [drift_run_id or "-", *challenger.uris, challenger.train_hash, challenger.holdout_hash]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def register_challenger(
    registry: Registry,
    challenger: Challenger,
    contract: DataContract,
    decision: GateDecision,
    *,
    drift_run_id: str | None,
    flow_run_id: str | None,
) -> VersionRef:
    """Log the training run and register its model in the first environment, with lineage tags.

    Idempotent: a retry finds the training run a previous attempt finished, and ``register`` finds the
    version of that run, so neither a second run nor a second version is made."""
    config = registry.config
    key = training_key(challenger, drift_run_id)
    champion_version = decision.champion_version  # the one it was judged against, whatever moved since
    tags = _lineage_tags(config, challenger, decision, drift_run_id, flow_run_id, champion_version)
    run_id = finished_training(registry, key)
    if run_id is None:
        lineage = _lineage(challenger, contract, drift_run_id, flow_run_id, champion_version)
        run_tags = {**tags, "training_key": key}
        run_id = _log_training(registry, challenger, contract, decision, lineage, run_tags, drift_run_id)
    step("registering the model in %s", registry.name(config.environments[0]))
    return registry.register(run_id, config.environments[0], {**tags, "training_run_id": run_id})


def _log_training(
    registry: Registry,
    challenger: Challenger,
    contract: DataContract,
    decision: GateDecision,
    lineage: dict[str, object],
    tags: dict[str, str],
    drift_run_id: str | None,
) -> str:
    """The training run, with a copy of its drift check's report when that is drawn. When it is not, the
    run is tagged ``report: pending``, and whoever draws the report copies it (``reports``), not the retrain."""
    report, report_html = check_report(registry, drift_run_id) if drift_run_id else (None, None)
    step("logging the training run to MLflow: model, signature, datasets, lineage")
    run_id = log_training_run(
        registry,
        model=challenger.model,
        train=challenger.train,
        holdout=challenger.holdout,
        train_hash=challenger.train_hash,
        holdout_hash=challenger.holdout_hash,
        features=contract.feature_names,
        decision=decision,
        contract=contract,
        lineage=lineage,
        tags={**tags, **({"report": report} if report else {})},
        drift_report_html=report_html,
        reference=challenger.reference,
    ).run_id
    if drift_run_id and report == REPORT_PENDING:  # drawn since? a drawing that looked before this run missed it
        copy_if_drawn(registry, run_id, drift_run_id)
    return run_id


def _lineage(
    challenger: Challenger,
    contract: DataContract,
    drift_run_id: str | None,
    flow_run_id: str | None,
    champion_version: str | None,
) -> dict[str, object]:
    return {
        "training_data": list(challenger.uris),
        "train_hash": challenger.train_hash,
        "holdout_hash": challenger.holdout_hash,
        "dropped_unlabelled_rows": challenger.dropped_unlabelled,
        "window_rows": challenger.rows.window,
        "sampled_rows": challenger.rows.read if challenger.rows.sampled else None,
        "drift_run_id": drift_run_id,
        "champion_version": champion_version,
        "code_version": code_version(),
        "flow_run_id": flow_run_id,
        "features": contract.feature_names,
    }


def _lineage_tags(
    config: Config,
    challenger: Challenger,
    decision: GateDecision,
    drift_run_id: str | None,
    flow_run_id: str | None,
    champion_version: str | None,
) -> dict[str, str]:
    return {
        "model": config.model.name,
        "train_hash": challenger.train_hash,
        "holdout_hash": challenger.holdout_hash,
        "dropped_unlabelled_rows": str(challenger.dropped_unlabelled),
        "window_rows": str(challenger.rows.window),
        "sampled_rows": str(challenger.rows.read) if challenger.rows.sampled else "",
        "git_sha": git_sha(),
        "code_version": code_version(),
        "flow_run_id": flow_run_id or "",
        "drift_run_id": drift_run_id or "",
        "metric": decision.metric,
        "challenger_score": f"{decision.challenger_score:.6f}",
        "champion_score": "" if decision.champion_score is None else f"{decision.champion_score:.6f}",
        "champion_version": champion_version or "",
        **gate_tags(decision),
    }


def register_and_promote(
    registry: Registry,
    challenger: Challenger,
    contract: DataContract,
    decision: GateDecision,
    *,
    drift_run_id: str | None,
    flow_run_id: str | None,
) -> tuple[VersionRef, list[Outcome]]:
    """Register the challenger, settle it in the first environment by the gate, promote a kept one by the
    policy, and mark the drift check answered, last. Every step finds what an earlier attempt did, so the
    whole is safe to run again after a failure at any point."""
    candidate = register_challenger(
        registry, challenger, contract, decision, drift_run_id=drift_run_id, flow_run_id=flow_run_id
    )
    outcomes = [accept_candidate(registry, candidate, decision)]
    if outcomes[0].action != "rejected":
        outcomes += promote_through(registry)
    mark_settled(registry, candidate)  # last: until here, the drift check still waits for an answer
    return candidate, outcomes
