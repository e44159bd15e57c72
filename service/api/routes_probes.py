"""Probes and Prometheus metrics."""

from __future__ import annotations

import urllib.request

from fastapi import APIRouter, HTTPException, Response

from service.api.context import ApiContext
from service.api.metrics import render_metrics


def probe_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz", summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the MLflow registry answers.",
        responses={503: {"description": "The registry is unreachable."}},
    )
    def readyz() -> dict[str, str]:
        try:
            if ctx.tracking_uri.startswith(("http://", "https://")):
                # A probe must answer in seconds: the MLflow client would retry for minutes.
                with urllib.request.urlopen(f"{ctx.tracking_uri.rstrip('/')}/health", timeout=3):
                    pass
            else:
                ctx.client().search_registered_models(max_results=1)
        except Exception as exc:  # any failure to reach the registry means "not ready"
            raise HTTPException(503, f"MLflow registry at {ctx.tracking_uri} unreachable: {exc}") from None
        return {"status": "ready"}

    @router.get(
        "/metrics",
        summary="Prometheus metrics per configured model.",
        response_class=Response,
        dependencies=[ctx.read],
    )
    def metrics() -> Response:
        body = render_metrics(ctx.client(), ctx.models_dir.configs())
        return Response(body, media_type="text/plain; version=0.0.4")

    return router
