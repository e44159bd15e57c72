"""The driftloop HTTP API (``driftloop serve``): models, versions and aliases per environment, read
from the MLflow registry. Liveness and readiness probes for Kubernetes.

Steering endpoints (start a check or a retrain, promote, approve, rollback) answer 501 until they are
built; their paths are reserved here so clients and the chart can rely on them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query

from service.catalog import list_models
from service.errors import DriftloopError
from service.settings import Config, Settings, load_config

VersionsQuery = Annotated[int, Query(ge=0, le=1000, description="Newest versions listed per environment.")]


def _configs(models_dir: Path) -> dict[str, Config]:
    configs = {}
    for path in sorted(models_dir.glob("*.y*ml")) if models_dir.is_dir() else []:
        config = load_config(path)
        configs[config.model.name] = config
    return configs


def _tracking_uri(settings: Settings, configs: dict[str, Config]) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if settings.tracking_uri:
        return settings.tracking_uri
    for config in configs.values():
        return config.tracking_uri()
    raise DriftloopError("no MLflow tracking URI: set MLFLOW_TRACKING_URI or DRIFTLOOP_TRACKING_URI")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configs = _configs(settings.models_dir)
    tracking_uri = _tracking_uri(settings, configs)
    app = FastAPI(title="driftloop", version="0.1.0", description=__doc__)

    @app.get("/healthz", tags=["probes"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], summary="Readiness: the MLflow registry answers.")
    def readyz() -> dict[str, str]:
        from mlflow import MlflowClient

        try:
            MlflowClient(tracking_uri, registry_uri=tracking_uri).search_registered_models(max_results=1)
        except Exception as exc:  # any failure to reach the registry means "not ready"
            raise HTTPException(503, f"MLflow registry at {tracking_uri} unreachable: {exc}") from None
        return {"status": "ready"}

    @app.get("/models", tags=["registry"], summary="Every driftloop model with its environments.")
    def models(versions: VersionsQuery = 20) -> dict[str, Any]:
        return {"models": [view.to_dict() for view in list_models(tracking_uri, versions_limit=versions)]}

    @app.get("/models/{name}", tags=["registry"], summary="One model: versions and aliases per environment.")
    def model(name: str, versions: VersionsQuery = 20) -> dict[str, Any]:
        envs = configs[name].environments if name in configs else None
        views = list_models(tracking_uri, name, envs, versions_limit=versions)
        if not views:
            raise HTTPException(404, f"no model named {name!r} in the registry")
        return views[0].to_dict()

    def not_yet(name: str) -> None:
        raise HTTPException(501, "not implemented yet")

    for path in ("check", "retrain", "promote", "approve", "rollback"):
        app.post(f"/models/{{name}}/{path}", tags=["steering"], status_code=202, summary=f"{path} (501 for now)")(
            not_yet
        )
    return app
