"""The driftloop HTTP API (``driftloop serve``).

Reads: models with versions and aliases per environment, one version's metrics, lineage and drift
report, the drift history — all read from MLflow, the system of record. Changes: start a check or a
retrain (a Prefect flow run), promote, approve, roll back (announced by a Prefect event and the
webhook, as the CLI's are) — each behind a bearer token; a missing or wrong token gets 401 and changes
nothing. Prometheus metrics at /metrics; probes at /healthz, /readyz.
"""

from __future__ import annotations

import hmac
import os
import urllib.request
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from service import history, orchestrator
from service.catalog import describe_version, list_models
from service.errors import DriftloopError, PromotionError, RegistryError
from service.fleet import ModelsDirectory
from service.metrics import render_metrics
from service.settings import Config, Settings

VersionsQuery = Annotated[int, Query(ge=0, le=1000, description="Newest versions listed per environment.")]


class PromoteRequest(BaseModel):
    to: str


class EnvironmentRequest(BaseModel):
    env: str


class Started(BaseModel):
    flow_run_id: str
    deployment: str


def _tracking_uri(settings: Settings, configs: dict[str, Config]) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if settings.tracking_uri:
        return settings.tracking_uri
    for config in configs.values():
        return config.tracking_uri()
    raise DriftloopError("no MLflow tracking URI: set MLFLOW_TRACKING_URI or DRIFTLOOP_TRACKING_URI")


def _token_check(settings: Settings, required: bool) -> Any:
    bearer = HTTPBearer(auto_error=False, description="DRIFTLOOP_API_TOKEN")
    expected = settings.api_token.get_secret_value() if settings.api_token else None

    # A default, not Annotated[...]: with postponed annotations FastAPI cannot see the local `bearer`.
    def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not required:
            return
        given = credentials.credentials if credentials else ""
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return Depends(check)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    models_dir = ModelsDirectory(settings.models_dir)  # read again when a model file changes
    tracking_uri = _tracking_uri(settings, models_dir.configs())
    app = FastAPI(title="driftloop", version="0.1.0", description=__doc__)
    read = _token_check(settings, required=settings.api_protect_reads)
    write = _token_check(settings, required=True)

    def client() -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri, registry_uri=tracking_uri)

    def config_of(name: str) -> Config:
        configs = models_dir.configs()
        if name not in configs:
            raise HTTPException(404, f"no model named {name!r} is configured in {settings.models_dir}")
        return configs[name]

    def registry_of(name: str) -> Any:
        from service.registry import Registry

        return Registry(config_of(name))

    def own() -> dict[str, dict[str, Any]]:
        """Per model, the clients of its environments with a registry of their own: their aliases live there."""
        from service.registry import Registry

        configs = models_dir.configs()
        return {name: Registry(c).own_clients() for name, c in configs.items() if c.registry.environments}

    @app.get("/healthz", tags=["probes"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["probes"],
        summary="Readiness: the MLflow registry answers.",
        responses={503: {"description": "The registry is unreachable."}},
    )
    def readyz() -> dict[str, str]:
        try:
            if tracking_uri.startswith(("http://", "https://")):
                # A probe must answer in seconds: the MLflow client would retry for minutes.
                with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=3):
                    pass
            else:
                client().search_registered_models(max_results=1)
        except Exception as exc:  # any failure to reach the registry means "not ready"
            raise HTTPException(503, f"MLflow registry at {tracking_uri} unreachable: {exc}") from None
        return {"status": "ready"}

    @app.get(
        "/metrics",
        tags=["probes"],
        summary="Prometheus metrics per configured model.",
        response_class=Response,
        dependencies=[read],
    )
    def metrics() -> Response:
        return Response(render_metrics(client(), models_dir.configs()), media_type="text/plain; version=0.0.4")

    @app.get("/models", tags=["registry"], summary="Every driftloop model with its environments.", dependencies=[read])
    def models(versions: VersionsQuery = 20) -> dict[str, Any]:
        # The registry's models (a removed file's history included), what the folder configures now, and
        # the files that do not load, by path.
        return {
            "models": [view.to_dict() for view in list_models(tracking_uri, versions_limit=versions, own=own())],
            "configured": sorted(models_dir.configs()),
            "config_errors": models_dir.errors(),
        }

    @app.get(
        "/models/{name}",
        tags=["registry"],
        summary="One model: versions and aliases per environment.",
        dependencies=[read],
        responses={404: {"description": "No such model."}},
    )
    def model(name: str, versions: VersionsQuery = 20) -> dict[str, Any]:
        configs = models_dir.configs()
        envs = configs[name].environments if name in configs else None
        views = list_models(tracking_uri, name, envs, versions_limit=versions, own=own())
        if not views:
            raise HTTPException(404, f"no model named {name!r} in the registry")
        return views[0].to_dict()

    @app.get(
        "/models/{name}/environments/{env}/versions/{version}",
        tags=["registry"],
        dependencies=[read],
        summary="A version's metrics, lineage and drift report.",
        responses={404: {"description": "Unknown."}},
    )
    def version(name: str, env: str, version: str) -> dict[str, Any]:
        registry = registry_of(name)
        try:
            ref = registry.version(env, version)
            lineage = registry.lineage(ref)
        except (RegistryError, DriftloopError) as exc:
            raise HTTPException(404, str(exc)) from None
        run = registry.client_for(env).get_run(ref.run_id)  # a registry of its own holds the copy's run
        view = describe_version(registry.client_for(env), ref)
        return {
            "name": ref.name,
            "version": ref.version,
            "aliases": view["aliases"],
            "status": view["status"],
            "tags": ref.tags,
            "metrics": run.data.metrics,
            "lineage": lineage,
            "drift_report": f"{run.info.artifact_uri}/drift/drift_report.html" if lineage.get("drift_run_id") else None,
        }

    @app.get("/models/{name}/drift", tags=["registry"], summary="Drift checks, newest first.", dependencies=[read])
    def drift(name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return {"model": name, "checks": history.drift_history(client(), name, limit)}

    def move(name: str, env: str, action: Literal["promote", "approve", "rollback"]) -> dict[str, Any]:
        from service.steering import steer

        config = config_of(name)
        if env not in config.environments:
            raise HTTPException(422, f"unknown environment {env!r}: expected one of {config.environments}")
        try:
            steered = steer(registry_of(name), env, action, settings)
        except PromotionError as exc:
            raise HTTPException(409, str(exc)) from None
        return steered.to_dict()

    conflict = {401: {"description": "Missing or wrong token."}, 409: {"description": "Nothing to do that to."}}

    @app.post(
        "/models/{name}/promote",
        tags=["steering"],
        dependencies=[write],
        responses=conflict,
        summary="Promote the previous environment's champion into `to`, by its policy.",
    )
    def promote_model(name: str, request: PromoteRequest) -> dict[str, Any]:
        return move(name, request.to, "promote")

    @app.post(
        "/models/{name}/approve",
        tags=["steering"],
        dependencies=[write],
        responses=conflict,
        summary="Make the version awaiting approval in `env` its champion.",
    )
    def approve_model(name: str, request: EnvironmentRequest) -> dict[str, Any]:
        return move(name, request.env, "approve")

    @app.post(
        "/models/{name}/rollback",
        tags=["steering"],
        dependencies=[write],
        responses=conflict,
        summary="Move `env`'s champion back to its previous version.",
    )
    def rollback_model(name: str, request: EnvironmentRequest) -> dict[str, Any]:
        return move(name, request.env, "rollback")

    def start(name: str, flow: str) -> Started:
        config = config_of(name)
        try:
            run_id = orchestrator.start_deployment(flow, flow, {"config_path": str(config.source)})
        except orchestrator.OrchestratorError as exc:
            raise HTTPException(503, str(exc)) from None
        return Started(flow_run_id=run_id, deployment=f"{flow}/{flow}")

    unavailable = {401: {"description": "Missing or wrong token."}, 503: {"description": "Prefect unreachable."}}

    @app.post(
        "/models/{name}/check",
        tags=["steering"],
        status_code=202,
        dependencies=[write],
        responses=unavailable,
        summary="Start a monitoring pass (a flow run of monitor/monitor).",
    )
    def check(name: str) -> Started:
        return start(name, "monitor")

    @app.post(
        "/models/{name}/retrain",
        tags=["steering"],
        status_code=202,
        dependencies=[write],
        responses=unavailable,
        summary="Start a retrain (a flow run of retrain/retrain).",
    )
    def retrain(name: str) -> Started:
        return start(name, "retrain")

    return app
