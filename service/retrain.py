"""Retraining: fit a challenger on the fresh window, evaluate it against the champion on the same
holdout, log and register it in the first environment with its lineage, and settle it by the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from service.contracts import DataContract, conform
from service.data import frame_hash, read_window
from service.evaluate import GateDecision, evaluate_gate, split_holdout
from service.promote import Outcome, accept_candidate
from service.registry import CHAMPION, TAG, Registry, VersionRef
from service.settings import Config
from service.tracking import code_version, git_sha, log_training_run, read_report
from service.train import fit_pipeline


@dataclass(frozen=True)
class Challenger:
    model: object
    train: pd.DataFrame
    holdout: pd.DataFrame
    uris: tuple[str, ...]


@dataclass(frozen=True)
class RetrainPlan:
    """What a retrain will learn from, or why it should not run at all."""

    uris: tuple[str, ...] = ()
    contract: DataContract | None = None
    skip_reason: str | None = None


def plan_retrain(registry: Registry, window: list[str] | None, drift_run_id: str | None) -> RetrainPlan:
    """Decide the training window. With no champion: the configured reference. For a drift check: the
    ``training.window`` batches ending with its batch — unless a newer champion has replaced the one
    that check compared against, which makes the request stale (a burst of requests trains once)."""
    from service.data import list_batches
    from service.monitor import bootstrap_contract, current_reference

    config = registry.config
    reference = current_reference(registry)
    if reference is None:
        return RetrainPlan((config.resolve(config.data.reference),), bootstrap_contract(config)[1])
    if drift_run_id:
        tags = registry.client.get_run(drift_run_id).data.tags
        answered = registry.versions_with_tag(config.environments[0], "drift_run_id", drift_run_id)
        if answered:
            # Kept or rejected by the gate, this drift check has had its retrain: a repeat trains nothing.
            return RetrainPlan(skip_reason=f"drift check {drift_run_id} was already answered by v{answered[0].version}")
        if tags.get(f"{TAG}reference_run") != reference.run_id:
            return RetrainPlan(
                skip_reason=f"stale request: drift check {drift_run_id} compared against a champion "
                f"that v{reference.version} has since replaced"
            )
        if not window:
            stream = list_batches(config.resolve(config.data.current))
            window = training_window(stream, tags[f"{TAG}batch_uri"], config.training.window)
    if not window:
        window = list_batches(config.resolve(config.data.current))[-config.training.window :]
    return RetrainPlan(tuple(window), reference.contract)


def training_window(batch_uris: list[str], upto: str, window: int) -> list[str]:
    """The ``window`` batches ending with ``upto``, in stream order."""
    end = batch_uris.index(upto) + 1
    return batch_uris[max(0, end - window) : end]


def load_window(uris: list[str], contract: DataContract) -> pd.DataFrame:
    return conform(read_window(uris), contract)


def fit_challenger(config: Config, contract: DataContract, frame: pd.DataFrame, uris: list[str]) -> Challenger:
    train, holdout = split_holdout(frame, config)
    model = fit_pipeline(config, contract, train)
    return Challenger(model, train, holdout, tuple(uris))


def evaluate_challenger(registry: Registry, challenger: Challenger, contract: DataContract) -> GateDecision:
    """Score the challenger and the first environment's champion on the same fresh holdout."""
    champion_ref = registry.at_alias(registry.config.environments[0], CHAMPION)
    champion = registry.load_version(champion_ref) if champion_ref else None
    return evaluate_gate(challenger.model, champion, challenger.holdout, contract, registry.config)


def register_challenger(
    registry: Registry,
    challenger: Challenger,
    contract: DataContract,
    decision: GateDecision,
    *,
    drift_run_id: str | None,
    flow_run_id: str | None,
) -> VersionRef:
    """Log the training run and register its model in the first environment, with lineage tags."""
    config = registry.config
    champion = registry.at_alias(config.environments[0], CHAMPION)
    lineage = {
        "training_data": list(challenger.uris),
        "train_hash": frame_hash(challenger.train),
        "holdout_hash": frame_hash(challenger.holdout),
        "drift_run_id": drift_run_id,
        "champion_version": champion.version if champion else None,
        "code_version": code_version(),
        "flow_run_id": flow_run_id,
        "features": contract.feature_names,
    }
    tags = {
        "model": config.model.name,
        "train_hash": str(lineage["train_hash"]),
        "holdout_hash": str(lineage["holdout_hash"]),
        "git_sha": git_sha(),
        "code_version": code_version(),
        "flow_run_id": flow_run_id or "",
        "drift_run_id": drift_run_id or "",
        "metric": decision.metric,
        "challenger_score": f"{decision.challenger_score:.6f}",
        "champion_score": "" if decision.champion_score is None else f"{decision.champion_score:.6f}",
        "champion_version": str(lineage["champion_version"] or ""),
    }
    report = read_report(registry, drift_run_id) if drift_run_id else None
    record = log_training_run(
        registry,
        model=challenger.model,
        train=challenger.train,
        holdout=challenger.holdout,
        features=contract.feature_names,
        decision=decision,
        contract=contract,
        lineage=lineage,
        tags=tags,
        drift_report_html=report,
    )
    tags["training_run_id"] = record.run_id
    return registry.register(record.run_id, record.model_uri, config.environments[0], tags)


def settle(registry: Registry, candidate: VersionRef, decision: GateDecision) -> Outcome:
    return accept_candidate(registry, candidate, decision)
