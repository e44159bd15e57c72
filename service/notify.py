"""Notifications: drift detected, retrain finished, version promoted, rejected or rolled back, approval
needed. Each is a Prefect event and, when a webhook is configured, a signed JSON POST — MLflow has no
registry webhooks, so driftloop sends them. ``publish`` sends both over plain HTTP (steering: the API,
the CLI, the promote flow) and reports what did not arrive; the other flows emit with Prefect's client.

The signature is ``X-Driftloop-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the
timestamp in ``X-Driftloop-Timestamp``: a receiver recomputes it with the shared secret and rejects
old timestamps, so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from service import orchestrator
from service.errors import DriftloopError
from service.promote import Outcome
from service.settings import Settings

if TYPE_CHECKING:  # the monitor pulls in the drift engine: steering needs none of it
    from service.monitor import BatchVerdict

OUTCOME_KINDS = {
    "champion": "version.promoted",
    "awaiting_approval": "approval.needed",
    "rejected": "version.rejected",
    "rolled_back": "version.rolled_back",
}


log = logging.getLogger(__name__)


class NotificationError(DriftloopError):
    """A webhook could not be delivered."""


@dataclass(frozen=True)
class Notification:
    kind: str
    model: str
    env: str | None = None
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def event(self) -> str:
        return f"driftloop.{self.kind}"

    @property
    def resource(self) -> dict[str, str]:
        resource = {"prefect.resource.id": f"driftloop.model.{self.model}", "driftloop.model": self.model}
        if self.env:
            resource["driftloop.env"] = self.env
        if self.version:
            resource["driftloop.version"] = self.version
        return resource

    def body(self) -> dict[str, Any]:
        return {"event": self.event, **asdict(self)}


def for_outcome(model: str, outcome: Outcome, config_path: str | None = None) -> Notification | None:
    """What a promotion step is worth telling; an unchanged alias is not news. ``config_path`` (the model's
    file) goes with it, so a deployment trigger can pass it on: the approval deployment's does."""
    kind = OUTCOME_KINDS.get(outcome.action)
    if kind is None:
        return None
    details = {"message": outcome.message, **({"config_path": config_path} if config_path else {})}
    return Notification(kind, model, outcome.env, outcome.version, details)


def sign(body: bytes, secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_webhook(notification: Notification, url: str, secret: str | None, timeout: float = 10.0) -> None:
    body = json.dumps(notification.body(), default=str, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Driftloop-Event": notification.event,
        "X-Driftloop-Timestamp": timestamp,
    }
    if secret:
        headers["X-Driftloop-Signature"] = sign(body, secret, timestamp)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status >= 300:
                raise NotificationError(f"webhook {url} answered {response.status} to {notification.event}")
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"webhook {url} answered {exc.code} to {notification.event}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotificationError(f"webhook {url} unreachable for {notification.event}: {exc}") from None


# approval_run: a suspended approval flow run told that the decision was made elsewhere (service.approval)
Channel = Literal["prefect_event", "webhook", "approval_run"]


@dataclass(frozen=True)
class Delivery:
    """One attempt to tell someone: ``error`` says why it did not arrive (None: it did)."""

    channel: Channel
    target: str
    error: str | None = None


def attempt(channel: Channel, target: str, send: Callable[[], object]) -> Delivery:
    try:
        send()
    # Whatever went wrong (even a malformed URL), what it announces has happened: report, never raise.
    except Exception as exc:
        log.warning("%s to %s not delivered: %s", channel, target, exc)
        return Delivery(channel, target, str(exc))
    return Delivery(channel, target)


def publish(notification: Notification, settings: Settings, prefect_api: str | None) -> list[Delivery]:
    """Send ``notification`` as a Prefect event (when a Prefect API is given) and to the webhook (when set)."""
    deliveries = []
    if prefect_api:
        body = notification.body()
        event = partial(orchestrator.emit_event, notification.event, notification.resource, body, prefect_api)
        deliveries.append(attempt("prefect_event", f"{prefect_api}/events", event))
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        webhook = partial(send_webhook, notification, settings.webhook_url, secret)
        deliveries.append(attempt("webhook", settings.webhook_url, webhook))
    return deliveries


def batch_rejected(model: str, verdict: BatchVerdict) -> Notification | None:
    """A batch quarantined as bad input in this pass (not one refused by an earlier pass)."""
    if not verdict.quarantined or verdict.already_checked:
        return None
    return Notification("batch.rejected", model, details={"batch": verdict.batch_uri, "cause": verdict.reason})


def drift_detected(model: str, verdict: BatchVerdict) -> Notification | None:
    if not verdict.dataset_drift or verdict.already_checked:
        return None
    details = {
        "batch": verdict.batch_uri,
        "drifted_share": verdict.drifted_share,
        "drifted_columns": list(verdict.drifted_columns),
        "report": verdict.report_uri,
        "retrain": verdict.retrain,
        "reason": verdict.reason,
    }
    return Notification("drift.detected", model, details=details)


def retrain_finished(model: str, env: str, version: str, gate: str, passed: bool) -> Notification:
    return Notification("retrain.finished", model, env, version, {"gate": gate, "gate_passed": passed})


def retrain_requested(model: str, config_path: str, drift_run_id: str) -> Notification:
    """The retrain deployment's trigger listens for this event; its payload becomes the parameters."""
    return Notification("retrain.requested", model, details={"config_path": config_path, "drift_run_id": drift_run_id})
