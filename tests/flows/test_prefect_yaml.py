"""flows/prefect.yaml: every deployment is valid for Prefect and points at a real flow of ours."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

PREFECT_YAML = Path(__file__).resolve().parents[2] / "flows" / "prefect.yaml"


def deployments() -> list[dict[str, object]]:
    return yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: str(d["name"]))
def test_deployment_is_valid_and_its_entrypoint_is_a_flow_accepting_its_parameters(deployment: dict) -> None:
    from prefect.cli.deploy._models import DeploymentConfig
    from prefect.flows import Flow

    config = DeploymentConfig.model_validate(deployment)
    module_path, _, name = str(config.entrypoint).partition(":")
    flow = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), name)
    assert isinstance(flow, Flow)
    assert set(config.parameters) <= set(flow.parameters.properties)
    assert config.work_pool is not None and config.work_pool.name == "driftloop"


def test_the_sweep_runs_hourly_over_the_models_directory_and_a_retrain_request_triggers_a_retrain() -> None:
    from prefect.events import DeploymentEventTrigger

    by_name = {d["name"]: d for d in deployments()}
    assert by_name["sweep"]["schedules"][0]["interval"] == 3600
    assert by_name["sweep"]["parameters"] == {"models_dir": "/etc/driftloop/models", "retrain_via": "event"}
    # the monitor runs per model, started by the sweep: it has no schedule of its own
    assert "schedules" not in by_name["monitor"]
    # a fleet-wide cap on retrains; one model's retrains are kept apart inside the flow (flows/slots.py)
    assert by_name["retrain"]["concurrency_limit"]["limit"] > 1
    [raw] = by_name["retrain"]["triggers"]
    trigger = DeploymentEventTrigger.model_validate({k: v for k, v in raw.items() if k != "type"})
    assert trigger.expect == {"driftloop.retrain.requested"}
    assert set(trigger.parameters) == {"config_path", "drift_run_id"}


def test_a_version_awaiting_approval_triggers_an_approval_run_told_which_model_version_and_file() -> None:
    from prefect.events import DeploymentEventTrigger

    from flows.approval import approve_in_ui
    from service.approval import FLOW
    from service.notify import for_outcome
    from service.promote import Outcome

    deployment = {d["name"]: d for d in deployments()}["approval"]
    # the runs a decision cancels are found by this flow name
    assert approve_in_ui.name == FLOW
    [raw] = deployment["triggers"]
    trigger = DeploymentEventTrigger.model_validate({k: v for k, v in raw.items() if k != "type"})
    assert trigger.expect == {"driftloop.approval.needed"}
    # every parameter the trigger fills comes from what an approval.needed notification carries
    waiting = Outcome("prod", "weather-prod", "2", "awaiting_approval", "waits")
    notification = for_outcome("weather", waiting, "/etc/driftloop/models/weather.yaml")
    assert notification is not None and notification.event == "driftloop.approval.needed"
    payload = notification.body()
    assert trigger.parameters == {
        "config_path": "{{ event.payload.details.config_path }}",
        "model": "{{ event.payload.model }}",
        "env": "{{ event.payload.env }}",
        "version": "{{ event.payload.version }}",
    }
    assert (payload["details"]["config_path"], payload["model"], payload["env"], payload["version"]) == (
        "/etc/driftloop/models/weather.yaml",
        "weather",
        "prod",
        "2",
    )
