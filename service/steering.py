"""Steering a model by hand: promote, approve, reject or roll back one environment, then announce it.

The one path for the API, the CLI and the promote flow, so a move is announced the same way whoever
asks: the alias moves first (``service.promote``), then the notification follows — a Prefect event
through Prefect's REST API when one is configured (PREFECT_API_URL) and the signed webhook when
DRIFTLOOP_WEBHOOK_URL is set. With no Prefect API no event is sent: the tags ``promote`` writes on the
version in MLflow are the record. A delivery that fails never undoes or fails the move: it is logged
and listed in ``Steered.deliveries``. An approval decided here also ends the approval runs suspended in
Prefect for it (``service.approval``), the same way whoever decided: the CLI, the API or one of those runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from service import approval, notify, orchestrator, promote
from service.errors import PromotionError
from service.registry import Registry
from service.settings import Settings

Move = Literal["promote", "approve", "reject", "rollback"]
MOVES: dict[str, Callable[[Registry, str], promote.Outcome]] = {
    "promote": promote.promote,
    "rollback": promote.rollback,
}
DECISIONS = {"approve": promote.approve, "reject": promote.reject}


@dataclass(frozen=True)
class Decision:
    """What goes with an approval decision: the version it is about (None: whichever waits), a note, and
    how it was made (``cli``, ``api``, ``prefect flow run <id>``), all recorded on the version."""

    version: str | None = None
    note: str = ""
    via: str = ""


@dataclass(frozen=True)
class Steered:
    outcome: promote.Outcome
    deliveries: tuple[notify.Delivery, ...] = ()

    @property
    def failures(self) -> list[str]:
        """What was not delivered, one line each, for a person to act on."""
        return [f"{d.channel} to {d.target} not delivered: {d.error}" for d in self.deliveries if d.error]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self.outcome), "notifications": [asdict(d) for d in self.deliveries]}


def steer(
    registry: Registry,
    env: str,
    move: Move,
    settings: Settings | None = None,
    prefect_api: str | None = None,
    decision: Decision | None = None,
) -> Steered:
    """Make ``move`` in ``env`` and announce its outcome; ``prefect_api`` defaults to PREFECT_API_URL.
    ``decision`` goes with ``approve`` and ``reject``."""
    if env not in registry.config.environments:
        raise PromotionError(f"unknown environment {env!r}: expected one of {registry.config.environments}")
    decision = decision or Decision()
    if move in DECISIONS:
        outcome = DECISIONS[move](registry, env, decision.version, decision.note, decision.via)
    else:
        outcome = MOVES[move](registry, env)
    model, source = registry.config.model.name, registry.config.source
    notification = notify.for_outcome(model, outcome, str(source) if source else None)
    if notification is None:  # an unchanged alias is not news, and decides nothing
        return Steered(outcome)
    api = orchestrator.configured_api(prefect_api)
    deliveries = notify.publish(notification, settings or Settings(), api)
    if move in DECISIONS and api:
        message = f"{outcome.message} (decided via {decision.via or 'unknown'})"
        deliveries += approval.close_suspended(model, env, message, api)
    return Steered(outcome, tuple(deliveries))
