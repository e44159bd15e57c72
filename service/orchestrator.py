"""Starting flow runs of driftloop's deployments through Prefect's REST API.

Plain HTTP rather than the Prefect client keeps ``service/`` free of Prefect, as DESIGN.md asks: the
API only needs "start this deployment with these parameters".
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from service.errors import DriftloopError


class OrchestratorError(DriftloopError):
    """The Prefect API is unreachable or refused to start a run."""


def _call(method: str, url: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise OrchestratorError(f"Prefect API {url} answered {exc.code}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OrchestratorError(f"Prefect API {url} unreachable: {exc}") from None


def start_deployment(flow: str, deployment: str, parameters: dict[str, Any], api_url: str | None = None) -> str:
    """Create a flow run of ``flow/deployment``; return its id."""
    api = (api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/")
    if not api:
        raise OrchestratorError("PREFECT_API_URL is unset: expected the URL of the Prefect API")
    found = _call("GET", f"{api}/deployments/name/{urllib.parse.quote(flow)}/{urllib.parse.quote(deployment)}")
    run = _call("POST", f"{api}/deployments/{found['id']}/create_flow_run", {"parameters": parameters})
    return str(run["id"])
