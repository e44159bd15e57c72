"""Notifications: drift detected, retrain finished, version promoted, rejected or rolled back, approval
needed. Each is a Prefect event (emitted by the flows) and, when a webhook is configured, a signed JSON
POST — MLflow has no registry webhooks, so driftloop sends them.

The signature is ``X-Driftloop-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the
timestamp in ``X-Driftloop-Timestamp``: a receiver recomputes it with the shared secret and rejects
old timestamps, so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from service.errors import DriftloopError
from service.monitor import BatchVerdict
from service.promote import Outcome

OUTCOME_KINDS = {
    "champion": "version.promoted",
    "awaiting_approval": "approval.needed",
    "rejected": "version.rejected",
    "rolled_back": "version.rolled_back",
}


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


def for_outcome(model: str, outcome: Outcome) -> Notification | None:
    """What a promotion step is worth telling; an unchanged alias is not news."""
    kind = OUTCOME_KINDS.get(outcome.action)
    if kind is None:
        return None
    return Notification(kind, model, outcome.env, outcome.version, {"message": outcome.message})


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
