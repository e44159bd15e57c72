"""The driftloop HTTP API (``driftloop serve``).

Reads: models with versions and aliases per environment, one version's metrics, lineage and drift
report, the drift history — all read from MLflow, the system of record. Changes: start a check or a
retrain (a Prefect flow run), promote, approve, roll back (announced by a Prefect event and the
webhook, as the CLI's are) — each behind a bearer token; a missing or wrong token gets 401 and changes
nothing. Prometheus metrics at /metrics; probes at /healthz, /readyz.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.api.context import ApiContext
from service.api.routes_probes import probe_routes
from service.api.routes_registry import registry_routes
from service.api.routes_steering import steering_routes
from service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    ctx = ApiContext(settings or Settings())
    app = FastAPI(title="driftloop", version="0.1.0", description=__doc__)
    for router in (probe_routes(ctx), registry_routes(ctx), steering_routes(ctx)):
        app.include_router(router)
    return app
