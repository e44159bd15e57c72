"""Changes, each behind the bearer token: alias moves (promote, approve or reject, roll back) and flow runs
started (a check, a retrain). A move is announced by a Prefect event and the webhook, as the CLI's are."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from service import orchestrator
from service.api.context import ApiContext
from service.errors import PromotionError


class PromoteRequest(BaseModel):
    to: str


class EnvironmentRequest(BaseModel):
    env: str


class DecisionRequest(BaseModel):
    env: str
    note: str = ""


class Started(BaseModel):
    flow_run_id: str
    deployment: str


CONFLICT = {401: {"description": "Missing or wrong token."}, 409: {"description": "Nothing to do that to."}}
UNAVAILABLE = {401: {"description": "Missing or wrong token."}, 503: {"description": "Prefect unreachable."}}


def steering_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["steering"], dependencies=[ctx.write])

    @router.post(
        "/models/{name}/promote",
        responses=CONFLICT,
        summary="Promote the previous environment's champion into `to`, by its policy.",
    )
    def promote_model(name: str, request: PromoteRequest) -> dict[str, Any]:
        return _move(ctx, name, request.to, "promote")

    @router.post(
        "/models/{name}/approve",
        responses=CONFLICT,
        summary="Make the version awaiting approval in `env` its champion; its suspended approval run ends.",
    )
    def approve_model(name: str, request: DecisionRequest) -> dict[str, Any]:
        return _move(ctx, name, request.env, "approve", request.note)

    @router.post(
        "/models/{name}/reject",
        responses=CONFLICT,
        summary="Reject the version awaiting approval in `env` (the champion stays); its suspended approval run ends.",
    )
    def reject_model(name: str, request: DecisionRequest) -> dict[str, Any]:
        return _move(ctx, name, request.env, "reject", request.note)

    @router.post(
        "/models/{name}/rollback",
        responses=CONFLICT,
        summary="Move `env`'s champion back to its previous version.",
    )
    def rollback_model(name: str, request: EnvironmentRequest) -> dict[str, Any]:
        return _move(ctx, name, request.env, "rollback")

    @router.post(
        "/models/{name}/check",
        status_code=202,
        responses=UNAVAILABLE,
        summary="Start a monitoring pass (a flow run of monitor/monitor).",
    )
    def check(name: str) -> Started:
        return _start(ctx, name, "monitor")

    @router.post(
        "/models/{name}/retrain",
        status_code=202,
        responses=UNAVAILABLE,
        summary="Start a retrain (a flow run of retrain/retrain).",
    )
    def retrain(name: str) -> Started:
        return _start(ctx, name, "retrain")

    return router


def _move(
    ctx: ApiContext, name: str, env: str, action: Literal["promote", "approve", "reject", "rollback"], note: str = ""
) -> dict[str, Any]:
    from service.steering import Decision, steer

    config = ctx.config_of(name)
    if env not in config.environments:
        raise HTTPException(422, f"unknown environment {env!r}: expected one of {config.environments}")
    try:
        steered = steer(ctx.registry_of(name), env, action, ctx.settings, decision=Decision(note=note, via="api"))
    except PromotionError as exc:
        raise HTTPException(409, str(exc)) from None
    return steered.to_dict()


def _start(ctx: ApiContext, name: str, flow: str) -> Started:
    config = ctx.config_of(name)
    try:
        run_id = orchestrator.start_deployment(flow, flow, {"config_path": str(config.source)})
    except orchestrator.OrchestratorError as exc:
        raise HTTPException(503, str(exc)) from None
    return Started(flow_run_id=run_id, deployment=f"{flow}/{flow}")
