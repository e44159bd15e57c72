"""The loop's steps as an orchestrator other than Prefect calls them (Airflow, cron): check one model's
new batches, retrain it, promote its new version along the environments whose policy is ``auto``.

Each step is the sequence of the same ``service`` functions the Prefect flows call as tasks
(``flows/monitor.py``, ``flows/retrain.py``), run in this process without Prefect; the orchestrator
retries a step that failed for want of a server (the CLI's exit 3), never one that failed on bad input.
Every step is idempotent, as the rules for running unattended ask: a check is recorded once per batch
content, a training run once per request and data, a version once per training run.

A retrain decision is answered in two steps when the orchestrator promotes in a step of its own
(``retrain_model(promote_now=False)`` then ``promote_auto``): the new version is not marked settled until
its promotion is done, so a promotion that failed for good makes the next check ask again for that drift
check's retrain, whose rerun finds the version and finishes its promotion — as a failed retrain flow is
run again by the next pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from service import monitor, notify, orchestrator, promote, registration, retrain
from service import reference as references
from service.data import list_batches
from service.records import MonitorRecords, read_records
from service.registry import CHAMPION, TAG, Registry, VersionRef
from service.reports import draw_pending
from service.settings import Config, Settings

NO_CHAMPION = "no champion yet: a first one is to be trained on data.reference"


@dataclass(frozen=True)
class CheckReport:
    """What ``check_model`` did, and whether a retrain is asked for (``drift_run``: the check asking;
    None with no champion yet, when the retrain trains the first one)."""

    model: str
    retrain_requested: bool
    drift_run: str | None
    reason: str
    verdicts: list[monitor.BatchVerdict] = field(default_factory=list)
    config_changes: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> list[monitor.BatchVerdict]:
        """Batches this check refused as bad input (not those an earlier one refused)."""
        return [verdict for verdict in self.verdicts if verdict.quarantined and not verdict.already_checked]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "quarantined": [verdict.batch_uri for verdict in self.quarantined]}


@dataclass(frozen=True)
class RetrainReport:
    """What ``retrain_model`` did: the version it registered and where it went, or why it trained nothing."""

    model: str
    version: str | None = None
    gate: str = ""
    outcomes: list[promote.Outcome] = field(default_factory=list)
    skipped: str | None = None
    settled: bool = True  # False: registered and waiting for ``promote_auto`` to answer the drift check

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_model(config: Config) -> CheckReport:
    """Check the new batches against the champion and record each verdict; never trains. Stops at the
    first batch whose check asks for a retrain: the batches after it wait for the champion it makes."""
    registry = Registry(config)
    reference = references.current_reference(registry)
    if reference is None:
        return CheckReport(config.model.name, True, None, NO_CHAMPION)
    changes = monitor.config_changes(config, reference.contract)
    waiting = awaiting_promotion(registry)
    if waiting is not None and waiting.tags.get(f"{TAG}drift_run_id"):  # a first champion answers no check
        drift_run = waiting.tags[f"{TAG}drift_run_id"]
        reason = f"v{waiting.version} answered drift check {drift_run} and its promotion is not done"
        return CheckReport(config.model.name, True, drift_run, reason, [], changes)
    records = read_records(registry)
    pending = monitor.pending_retrain(registry, reference.run_id, records)
    if pending is not None:  # asked for earlier and not answered yet: ask again, check nothing new
        reason = f"drift check {pending.run_id} asked for a retrain that no version has answered yet"
        return CheckReport(config.model.name, True, pending.run_id, reason, [], changes)
    verdicts = _check_new_batches(config, registry, reference, records)
    draw_pending(registry, records)  # as the monitor flow does at the end of its pass
    asking = next((verdict for verdict in verdicts if verdict.retrain), None)
    if asking is None:
        return CheckReport(config.model.name, False, None, _quiet_reason(verdicts), verdicts, changes)
    return CheckReport(config.model.name, True, asking.check_run_id, asking.reason, verdicts, changes)


def _check_new_batches(
    config: Config, registry: Registry, reference: references.Reference, records: MonitorRecords
) -> list[monitor.BatchVerdict]:
    verdicts = []
    for uri in list_batches(config.resolve(config.data.current)):
        verdict = monitor.examine(registry, reference, uri, records, None)
        if isinstance(verdict, monitor.NewBatch):
            verdict = monitor.record_and_decide(registry, reference, verdict.result, verdict, records, flow_run_id=None)
        # No retrain_requested event: the orchestrator that called this step runs the retrain; the event
        # would also start the Prefect retrain deployment where the chart runs one.
        name = config.model.name
        _announce([notify.drift_detected(name, verdict), notify.batch_rejected(name, verdict)])
        verdicts.append(verdict)
        if verdict.retrain:
            break
    return verdicts


def _quiet_reason(verdicts: list[monitor.BatchVerdict]) -> str:
    fresh = [verdict for verdict in verdicts if not verdict.already_checked]
    return fresh[-1].reason if fresh else "no new batch"


def retrain_model(
    config: Config, drift_run_id: str | None = None, window: list[str] | None = None, *, promote_now: bool = True
) -> RetrainReport:
    """Train on the window ``retrain.plan_retrain`` chooses, evaluate against the champion on the same
    holdout, register, settle by the gate in the first environment and — unless ``promote_now`` is
    False, for an orchestrator that promotes in a step of its own — promote by the policy."""
    registry = Registry(config)
    waiting = awaiting_promotion(registry, drift_run_id) if drift_run_id else None
    if waiting is not None:  # trained and registered by an earlier attempt: only its promotion is left
        outcomes = promote_auto(config, drift_run_id) if promote_now else []
        return RetrainReport(config.model.name, waiting.version, "", outcomes, settled=promote_now)
    plan = retrain.plan_retrain(registry, window, drift_run_id)
    if plan.skip_reason:
        return RetrainReport(config.model.name, skipped=plan.skip_reason)
    uris = list(plan.uris)
    frame, contract, dropped = retrain.load_window(uris, config)
    challenger = retrain.fit_challenger(config, contract, frame, uris, dropped)
    decision = retrain.evaluate_challenger(registry, challenger, contract)
    candidate = registration.register_challenger(
        registry, challenger, contract, decision, drift_run_id=drift_run_id, flow_run_id=None
    )
    outcomes = [promote.accept_candidate(registry, candidate, decision)]
    first, name = outcomes[0], config.model.name
    finished = notify.retrain_finished(name, first.env, candidate.version, decision.reason, decision.passed)
    _announce([finished, notify.for_outcome(name, first)])
    if first.action != "rejected" and not promote_now:
        return RetrainReport(config.model.name, candidate.version, decision.reason, outcomes, settled=False)
    if first.action != "rejected":
        outcomes += _promote_through(registry)
    retrain.mark_settled(registry, candidate)  # last: until here, the drift check still waits for an answer
    return RetrainReport(config.model.name, candidate.version, decision.reason, outcomes)


def awaiting_promotion(registry: Registry, drift_run_id: str | None = None) -> VersionRef | None:
    """The first environment's champion when a retrain made it and its promotion is not finished (it is
    not marked settled yet); with ``drift_run_id``, only the one answering that drift check."""
    champion = registry.at_alias(registry.config.environments[0], CHAMPION)
    if champion is None or champion.tags.get(f"{TAG}settled") == "true":
        return None
    if drift_run_id is not None and champion.tags.get(f"{TAG}drift_run_id", "") != drift_run_id:
        return None
    return champion


def promote_auto(config: Config, drift_run_id: str | None = None) -> list[promote.Outcome]:
    """Promote the version a retrain left awaiting promotion along the environments by their policy,
    then mark it settled (its drift check answered). Nothing moves when no version awaits promotion: the
    retrain's version was rejected by the gate (settled at once), or its promotion is done; so a rerun
    of this step never moves an alias an operator moved since (a rollback)."""
    registry = Registry(config)
    waiting = awaiting_promotion(registry, drift_run_id)
    if waiting is None:
        return []
    outcomes = _promote_through(registry)
    retrain.mark_settled(registry, waiting)
    return outcomes


def _promote_through(registry: Registry) -> list[promote.Outcome]:
    outcomes = promote.promote_through(registry)
    _announce([notify.for_outcome(registry.config.model.name, outcome) for outcome in outcomes])
    return outcomes


def _announce(notifications: list[notify.Notification | None]) -> None:
    """Send each notification as steering does (a Prefect event when PREFECT_API_URL is set, the
    webhook when configured); a delivery that fails is logged by ``notify.publish``, never fatal."""
    settings = Settings()
    for notification in filter(None, notifications):
        notify.publish(notification, settings, orchestrator.configured_api())
