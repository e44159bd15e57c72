"""Retraining: plan the window, read it, fit a challenger and evaluate it against the champion on the
same holdout. Logging, registering and settling it: ``service.registration``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import pandas as pd

from service.contracts import (
    DataContract,
    conform,
    contract_from_dict,
    contract_from_reference,
    drop_unlabelled,
    validate_batch,
)
from service.data import frame_hash, list_batches
from service.evaluate import GateDecision, evaluate_gate, split_holdout
from service.progress import step
from service.registry import CHAMPION, CONTRACT_PATH, TAG, Registry, VersionRef
from service.settings import Config
from service.stored_reference import ReferenceSnapshot, snapshot_of
from service.window_sample import read_training_window


@dataclass(frozen=True)
class WindowRows:
    """How many rows the training window has, how many were read (``training.max_rows``) and how many of
    those were dropped for having no label: what the lineage and the version's tags record."""

    window: int
    read: int
    dropped_unlabelled: int = 0

    @property
    def sampled(self) -> bool:
        return self.read < self.window


@dataclass(frozen=True)
class Challenger:
    model: object
    train: pd.DataFrame
    holdout: pd.DataFrame
    uris: tuple[str, ...]
    rows: WindowRows
    reference: ReferenceSnapshot | None = None  # the profile and report sample a champion keeps

    @property
    def dropped_unlabelled(self) -> int:
        return self.rows.dropped_unlabelled

    # Hashed once each: the training key, the lineage and the version's tags all name them.
    @cached_property
    def train_hash(self) -> str:
        return frame_hash(self.train)

    @cached_property
    def holdout_hash(self) -> str:
        return frame_hash(self.holdout)


@dataclass(frozen=True)
class RetrainPlan:
    """What a retrain will learn from, or why it should not run at all."""

    uris: tuple[str, ...] = ()
    skip_reason: str | None = None


def plan_retrain(registry: Registry, window: list[str] | None, drift_run_id: str | None) -> RetrainPlan:
    """Decide the training window. With no champion: the configured reference. For a drift check: the
    ``training.window`` batches ending with its batch — unless a newer champion has replaced the one
    that check compared against, which makes the request stale (a burst of requests trains once)."""
    config = registry.config
    champion = registry.at_alias(config.environments[0], CHAMPION)  # which one, not its reference: no downloads
    if champion is None:
        step("no champion yet: the first one learns from %s", config.data.reference)
        return RetrainPlan((config.resolve(config.data.reference),))
    if drift_run_id:
        run = registry.ask(f"read drift check {drift_run_id}", lambda: registry.client.get_run(drift_run_id))
        tags = run.data.tags
        answered = answering_versions(registry, drift_run_id)
        if answered:
            # Kept or rejected by the gate, this drift check has had its retrain: a repeat trains nothing.
            return RetrainPlan(skip_reason=f"drift check {drift_run_id} was already answered by v{answered[0].version}")
        if tags.get(f"{TAG}reference_run") != champion.run_id:
            return RetrainPlan(
                skip_reason=f"stale request: drift check {drift_run_id} compared against a champion "
                f"that v{champion.version} has since replaced"
            )
        if not window:
            stream = list_batches(config.resolve(config.data.current))
            window = training_window(stream, tags[f"{TAG}batch_uri"], config.training.window)
    if not window:
        window = list_batches(config.resolve(config.data.current))[-config.training.window :]
    return RetrainPlan(tuple(window))


def answering_versions(registry: Registry, drift_run_id: str) -> list[VersionRef]:
    """The versions that finished answering a drift check: registered, settled by the gate and promoted
    (``settled`` is written last). One registered but not settled is unfinished work: the retrain runs
    again, finds its training run and version, and finishes them."""
    found = registry.versions_with_tag(registry.config.environments[0], "drift_run_id", drift_run_id)
    return [version for version in found if version.tags.get(f"{TAG}settled") == "true"]


def mark_settled(registry: Registry, version: VersionRef) -> None:
    """The last step of a retrain, after the gate and the promotions: the request is answered."""
    registry.tag_version(version, {"settled": "true"})


def training_window(batch_uris: list[str], upto: str, window: int) -> list[str]:
    """The ``window`` batches ending with ``upto``, in stream order."""
    end = batch_uris.index(upto) + 1
    return batch_uris[max(0, end - window) : end]


def load_window(uris: list[str], config: Config) -> tuple[pd.DataFrame, DataContract, WindowRows]:
    """The training window (or its ``training.max_rows`` sample), its contract drawn afresh with the
    current config (so an edited config takes effect at the next retrain), without the rows that have no
    label; and the window's row counts."""
    source = ", ".join(uris)
    step("reading the training data: %s", ", ".join(uri.rstrip("/").rsplit("/", 1)[-1] for uri in uris))
    training = config.training
    raw, window_rows = read_training_window(uris, training.max_rows, training.random_state)
    if len(raw) < window_rows:
        step("training on a sample of %d of the window's %d rows (training.max_rows)", len(raw), window_rows)
    contract = contract_from_reference(raw, config, source)
    labelled, dropped = drop_unlabelled(raw, contract, source)
    validate_batch(labelled, contract, source, require_target=True)
    return conform(labelled, contract), contract, WindowRows(window_rows, len(raw), dropped)


def fit_challenger(
    config: Config, contract: DataContract, frame: pd.DataFrame, uris: list[str], rows: WindowRows | None = None
) -> Challenger:
    """Fit on the training share of ``frame``; keep the profile and report sample of the whole of it, the
    reference that later batches of this model are checked against."""
    train, holdout = split_holdout(frame, config)
    step("fitting %s on %d rows", config.model.estimator_path.rsplit(".", 1)[-1], len(train))
    from service.train import fit_pipeline  # scikit-learn is imported by what trains, not by a pass

    model = fit_pipeline(config, contract, train)
    reference = snapshot_of(frame, contract, config.drift.report_rows)
    return Challenger(model, train, holdout, tuple(uris), rows or WindowRows(len(frame), len(frame)), reference)


@dataclass(frozen=True)
class Champion:
    """The first environment's champion as a challenger is judged against it: the model and its contract."""

    ref: VersionRef
    model: object
    contract: DataContract


def load_champion(registry: Registry) -> Champion | None:
    """The first environment's champion, loaded; None before the first one. Only reads: a retrain runs it
    while the challenger fits."""
    ref = registry.at_alias(registry.config.environments[0], CHAMPION)
    if ref is None:
        return None
    contract = contract_from_dict(registry.run_dict(ref.run_id, CONTRACT_PATH))
    return Champion(ref, registry.load_version(ref), contract)


def evaluate_challenger(registry: Registry, challenger: Challenger, contract: DataContract) -> GateDecision:
    """Score the challenger and the first environment's champion on the same fresh holdout."""
    return evaluate_against(registry, challenger, contract, load_champion(registry))


def evaluate_against(
    registry: Registry, challenger: Challenger, contract: DataContract, champion: Champion | None
) -> GateDecision:
    """Score the challenger and ``champion`` (``load_champion``'s) on the same fresh holdout."""
    against = f" beside the champion v{champion.ref.version}" if champion else ""
    step("scoring the new model on the holdout (%d rows)%s", len(challenger.holdout), against)
    model = None
    if champion is not None:
        model = champion.model
        if champion.contract.feature_names != contract.feature_names:
            model = OwnColumns(champion.model, champion.contract, challenger.holdout)
    decision = evaluate_gate(challenger.model, model, challenger.holdout, contract, registry.config)
    return replace(decision, champion_version=champion.ref.version if champion else None)


class OwnColumns:
    """A champion trained on other columns than the challenger (the config's features changed): it scores
    the same holdout rows, read with its own contract. ``score`` hands models the challenger's columns
    only, so the rows are found again by their index in the full holdout."""

    def __init__(self, model: object, contract: DataContract, holdout: pd.DataFrame) -> None:
        self.model, self.contract, self.holdout = model, contract, holdout
        self.classes_ = getattr(model, "classes_", None)

    def _rows(self, features: pd.DataFrame) -> pd.DataFrame:
        return conform(self.holdout.loc[features.index], self.contract)[self.contract.feature_names]

    def predict(self, features: pd.DataFrame) -> object:
        return self.model.predict(self._rows(features))  # type: ignore[attr-defined]

    def predict_proba(self, features: pd.DataFrame) -> object:
        return self.model.predict_proba(self._rows(features))  # type: ignore[attr-defined]
