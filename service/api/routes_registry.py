"""Registry reads: the fleet, one model's environments, a version's lineage, the drift history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from service import history
from service.api.context import ApiContext
from service.catalog import describe_version, list_models
from service.errors import DriftloopError, RegistryError
from service.records import REPORT_DRAWN, REPORT_PATH
from service.registry import TAG

VersionsQuery = Annotated[int, Query(ge=0, le=1000, description="Newest versions listed per environment.")]


def registry_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["registry"], dependencies=[ctx.read])

    @router.get("/models", summary="Every driftloop model with its environments.")
    def models(versions: VersionsQuery = 20) -> dict[str, Any]:
        # The registry's models (a removed file's history included), what the folder configures now, and
        # the files that do not load, by path.
        views = list_models(ctx.tracking_uri, versions_limit=versions, own=ctx.own())
        return {
            "models": [view.to_dict() for view in views],
            "configured": sorted(ctx.models_dir.configs()),
            "config_errors": ctx.models_dir.errors(),
        }

    @router.get(
        "/models/{name}",
        summary="One model: versions and aliases per environment.",
        responses={404: {"description": "No such model."}},
    )
    def model(name: str, versions: VersionsQuery = 20) -> dict[str, Any]:
        configs = ctx.models_dir.configs()
        envs = configs[name].environments if name in configs else None
        views = list_models(ctx.tracking_uri, name, envs, versions_limit=versions, own=ctx.own())
        if not views:
            raise HTTPException(404, f"no model named {name!r} in the registry")
        return views[0].to_dict()

    @router.get(
        "/models/{name}/environments/{env}/versions/{version}",
        summary="A version's metrics, lineage and drift report.",
        responses={404: {"description": "Unknown."}},
    )
    def version(name: str, env: str, version: str) -> dict[str, Any]:
        return _version_details(ctx, name, env, version)

    @router.get("/models/{name}/drift", summary="Drift checks, newest first.")
    def drift(name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return {"model": name, "checks": history.drift_history(ctx.client(), name, limit)}

    return router


def _version_details(ctx: ApiContext, name: str, env: str, version: str) -> dict[str, Any]:
    registry = ctx.registry_of(name)
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
        "drift_report": _drift_report(run, lineage),
    }


def _drift_report(run: Any, lineage: dict[str, object]) -> str | None:
    """Where the version's copy of its drift check's report is; None before it is copied (it is drawn after
    the retrain) or when it could not be drawn, and for a version that answered no check."""
    drawn = run.data.tags.get(f"{TAG}report", REPORT_DRAWN) == REPORT_DRAWN  # older runs have no tag: drawn
    return f"{run.info.artifact_uri}/{REPORT_PATH}" if lineage.get("drift_run_id") and drawn else None
