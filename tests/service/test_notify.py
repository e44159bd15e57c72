"""Webhooks: a signed JSON POST per notification, received by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from service.notify import Notification, NotificationError, for_outcome, send_webhook, sign
from service.promote import Outcome


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    status = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.status = [], 204
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_body_is_signed_so_the_receiver_can_verify_it(receiver: str) -> None:
    # given an approval-needed notification
    notification = for_outcome("weather", Outcome("prod", "weather-prod", "2", "awaiting_approval", "waits"))
    assert notification is not None
    # when it is sent with a secret
    send_webhook(notification, receiver, "shared-secret")
    # then the receiver gets the JSON body and can recompute the signature over timestamp and body
    [(headers, body)] = Receiver.received
    payload = json.loads(body)
    assert payload["event"] == "driftloop.approval.needed" == headers["X-Driftloop-Event"]
    assert (payload["model"], payload["env"], payload["version"]) == ("weather", "prod", "2")
    expected = hmac.new(b"shared-secret", headers["X-Driftloop-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Driftloop-Signature"] == f"sha256={expected.hexdigest()}"
    assert sign(body, "other-secret", headers["X-Driftloop-Timestamp"]) != headers["X-Driftloop-Signature"]


def test_a_webhook_answering_an_error_or_not_answering_is_a_notification_error(receiver: str) -> None:
    Receiver.status = 500
    with pytest.raises(NotificationError, match="answered 500"):
        send_webhook(Notification("drift.detected", "weather"), receiver, None)
    with pytest.raises(NotificationError, match="unreachable"):
        send_webhook(Notification("drift.detected", "weather"), "http://127.0.0.1:9/hook", None, timeout=2)


def test_an_unchanged_alias_is_not_news() -> None:
    assert for_outcome("weather", Outcome("staging", "weather-staging", "1", "unchanged", "same")) is None
