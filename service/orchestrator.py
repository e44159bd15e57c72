"""Talking to Prefect's REST API: starting flow runs of driftloop's deployments, recording events, ending
suspended approval runs.

Plain HTTP rather than the Prefect client keeps ``service/`` free of Prefect, as DESIGN.md asks: the
API only needs "start this deployment with these parameters", "record this event" and "cancel these
suspended runs". Being plain HTTP, it sends the Prefect auth string itself (the Prefect client would do
it from the same setting).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from service.errors import DriftloopError


class OrchestratorError(DriftloopError):
    """The Prefect API is unreachable or refused to start a run."""


def _auth_headers() -> dict[str, str]:
    """Basic auth from PREFECT_API_AUTH_STRING, as the Prefect client sends it: a server started with
    PREFECT_SERVER_API_AUTH_STRING (the chart's default) answers 401 to anything else."""
    auth_string = os.environ.get("PREFECT_API_AUTH_STRING")
    if not auth_string:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}


def _call(method: str, url: str, payload: dict[str, Any] | list[Any] | None = None) -> Any:
    data = json.dumps(payload, default=str).encode() if payload is not None else None
    headers = {"Content-Type": "application/json", **_auth_headers()}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        hint = " (check PREFECT_API_AUTH_STRING: it must match the server's auth string)" if exc.code == 401 else ""
        raise OrchestratorError(f"Prefect API {url} answered {exc.code}{hint}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OrchestratorError(f"Prefect API {url} unreachable: {exc}") from None


def configured_api(api_url: str | None = None) -> str | None:
    """``api_url``, else PREFECT_API_URL; None when neither names a Prefect API."""
    return (api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/") or None


def start_deployment(flow: str, deployment: str, parameters: dict[str, Any], api_url: str | None = None) -> str:
    """Create a flow run of ``flow/deployment``; return its id."""
    api = configured_api(api_url)
    if not api:
        raise OrchestratorError("PREFECT_API_URL is unset: expected the URL of the Prefect API")
    found = _call("GET", f"{api}/deployments/name/{urllib.parse.quote(flow)}/{urllib.parse.quote(deployment)}")
    run = _call("POST", f"{api}/deployments/{found['id']}/create_flow_run", {"parameters": parameters})
    return str(run["id"])


def emit_event(event: str, resource: dict[str, str], payload: dict[str, Any], api_url: str) -> str:
    """Record one event with ``POST /events`` (Prefect 3's "Create Events"); return its id.

    The same event name, resource and payload as ``prefect.events.emit_event`` sends, so deployment
    triggers and automations match it alike.
    """
    event_id = str(uuid.uuid4())
    occurred = datetime.now(UTC).isoformat()
    record = {"id": event_id, "occurred": occurred, "event": event, "resource": resource, "payload": payload}
    _call("POST", f"{api_url.rstrip('/')}/events", [record])
    return event_id


def suspended_flow_runs(flow: str, api_url: str) -> list[dict[str, Any]]:
    """Flow runs of ``flow`` that are paused or suspended (state type PAUSED), as the API returns them."""
    query = {"flows": {"name": {"any_": [flow]}}, "flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}}
    return list(_call("POST", f"{api_url.rstrip('/')}/flow_runs/filter", {**query, "limit": 200}))


def cancel_flow_run(flow_run_id: str, message: str, api_url: str) -> None:
    """Move a suspended flow run to Cancelled with ``message``: it has no infrastructure to stop (its Job
    ended when it suspended), so nothing starts. A refusal (it was resumed meanwhile) is an error."""
    state = {"type": "CANCELLED", "name": "Cancelled", "message": message}
    result = _call("POST", f"{api_url.rstrip('/')}/flow_runs/{flow_run_id}/set_state", {"state": state})
    if result.get("status") != "ACCEPT":
        reason = (result.get("details") or {}).get("reason") or result.get("status")
        raise OrchestratorError(f"Prefect API {api_url} did not cancel flow run {flow_run_id}: {reason}")
