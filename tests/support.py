"""Helpers several test suites share: a webhook receiver on 127.0.0.1, and a bare dev champion."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class Hooks(HTTPServer):
    """A webhook receiver on 127.0.0.1: what it was sent, and the status it answers with."""

    status = 204
    received: list[tuple[dict[str, str], dict[str, object]]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: Hooks

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[Hooks]:
    server = Hooks(("127.0.0.1", 0), _Hook)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()


def enter_dev(registry: Any) -> str:
    """A new dev @champion registered from a bare MLflow run (moving aliases needs no trained model);
    the champion it replaces becomes @previous."""
    from service.registry import CHAMPION, PREVIOUS

    client, name = registry.client, registry.ensure_model("dev")
    run = client.create_run(registry.experiment_id("training"))
    created = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    current = registry.at_alias("dev", CHAMPION)
    if current is not None:
        registry.set_alias("dev", PREVIOUS, current.version)
    client.set_registered_model_alias(name, CHAMPION, str(created.version))
    return str(created.version)


def events_named(
    prefect_api: str, name: str, since: datetime, where: Callable[[dict[str, Any]], bool] = lambda _: True
) -> list[dict[str, Any]]:
    """Events the Prefect API has stored (those ``where`` accepts); the server persists them in batches,
    so ask until they show: an earlier event of the same name must not end the wait for a later one."""
    query = {"filter": {"event": {"name": [name]}, "occurred": {"since": since.isoformat()}}, "limit": 50}
    request = urllib.request.Request(
        f"{prefect_api}/events/filter", json.dumps(query).encode(), {"Content-Type": "application/json"}
    )
    for _ in range(120):
        with urllib.request.urlopen(request, timeout=10) as response:
            events = [event for event in json.loads(response.read())["events"] if where(event)]
        if events:
            return events
        time.sleep(0.5)
    return []
