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


def test_monitor_runs_hourly_and_a_retrain_request_event_triggers_the_retrain_deployment() -> None:
    from prefect.events import DeploymentEventTrigger

    by_name = {d["name"]: d for d in deployments()}
    assert by_name["monitor"]["schedules"][0]["interval"] == 3600
    assert by_name["monitor"]["parameters"]["retrain_via"] == "event"
    assert by_name["retrain"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    [raw] = by_name["retrain"]["triggers"]
    trigger = DeploymentEventTrigger.model_validate({k: v for k, v in raw.items() if k != "type"})
    assert trigger.expect == {"driftloop.retrain.requested"}
    assert set(trigger.parameters) == {"config_path", "drift_run_id"}
