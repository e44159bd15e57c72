"""A prod registry of its own (values `registries`), read from the chart as rendered by a real helm.

The model configs name it (and load as driftloop configs), the API and flow runs get its credentials
from the named Secret, the NetworkPolicies let exactly those two reach its port, and the schema and
validation refuse what would not work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from service.config_file import load_config

from .conftest import Objects, base_job_template_of, find, parse
from .test_kubernetes_validate import validation_errors

PROD = {"trackingUri": "https://mlflow-prod.example.com", "existingSecret": "mlflow-prod"}
MODELS = {
    "weather": {
        "model": {"name": "weather", "task": "classification", "target": "weather"},
        "data": {"reference": "/data/reference.csv", "current": "/data/incoming/*.csv"},
    }
}
CREDENTIALS = [f"DRIFTLOOP_REGISTRY_PROD_TRACKING_{key}" for key in ("USERNAME", "PASSWORD", "TOKEN")]


def render(render_with: Callable[..., Any], **values: Any) -> Objects:
    result = render_with(values={"models": MODELS, **values})
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def secret_env(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        entry["name"]: (entry["valueFrom"]["secretKeyRef"]["name"], entry["valueFrom"]["secretKeyRef"]["key"])
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }


def test_a_prod_registry_reaches_the_model_configs_as_a_valid_driftloop_config(
    render_with: Callable[..., Any], tmp_path: Path
) -> None:
    objects = render(render_with, registries={"prod": PROD})
    text = find(objects, "ConfigMap", "driftloop-models")["data"]["weather.yaml"]
    path = tmp_path / "weather.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.tracking_uri("prod") == PROD["trackingUri"]
    assert config.registry.environments["prod"].credentials_env == "DRIFTLOOP_REGISTRY_PROD"
    assert "dev" not in config.registry.environments and "staging" not in config.registry.environments


def test_a_model_that_names_its_own_prod_registry_keeps_it(render_with: Callable[..., Any]) -> None:
    own = {"environments": {"prod": {"tracking_uri": "http://mlflow-own:5000"}}}
    models = {"weather": {**MODELS["weather"], "registry": own}}
    result = render_with(values={"models": models, "registries": {"prod": PROD}})
    assert result.returncode == 0, result.stderr
    text = find(parse(result.stdout), "ConfigMap", "driftloop-models")["data"]["weather.yaml"]
    assert yaml.safe_load(text)["registry"] == own


def test_the_api_and_flow_runs_get_the_prod_credentials_from_its_secret(render_with: Callable[..., Any]) -> None:
    objects = render(render_with, registries={"prod": PROD})
    api = find(objects, "Deployment", "driftloop-api")["spec"]["template"]["spec"]["containers"][0]
    job = base_job_template_of(objects)["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    expected = {name: ("mlflow-prod", name.rsplit("_", 1)[1].lower()) for name in CREDENTIALS}
    for container in (api, job["containers"][0]):
        found = {k: v for k, v in secret_env(container).items() if k.startswith("DRIFTLOOP_REGISTRY_")}
        assert found == expected
    worker = find(objects, "Deployment", "driftloop-prefect-worker")["spec"]["template"]["spec"]["containers"][0]
    assert not any(name.startswith("DRIFTLOOP_REGISTRY_") for name in secret_env(worker))


def egress_to_blocks(objects: Objects, component: str) -> list[dict[str, Any]]:
    policy = find(objects, "NetworkPolicy", f"driftloop-{component}")
    return [rule for rule in policy["spec"].get("egress", []) if any("ipBlock" in peer for peer in rule["to"])]


def test_only_the_api_and_flow_runs_may_reach_the_registries_on_their_ports(render_with: Callable[..., Any]) -> None:
    registries = {"prod": PROD, "staging": {"trackingUri": "http://mlflow-staging.example.com:5000"}}
    objects = render(
        render_with,
        registries=registries,
        networkPolicy={"egress": {"registries": {"cidrs": ["10.40.0.0/16"]}}},
    )
    rule = {
        "to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 5000}],
    }
    for component in ("api", "flow-run"):
        assert rule in egress_to_blocks(objects, component), component
    for component in ("prefect-worker", "prefect-server", "mlflow", "register"):
        assert rule not in egress_to_blocks(objects, component), component
    default = render(render_with)
    assert all(r["to"] != rule["to"] for r in egress_to_blocks(default, "api"))
    assert validation_errors(objects, "1.35") == []


def test_the_schema_refuses_a_registry_without_a_server_or_with_an_unknown_key(
    render_with: Callable[..., Any],
) -> None:
    missing = render_with(values={"registries": {"prod": {"existingSecret": "mlflow-prod"}}})
    assert missing.returncode != 0 and "trackingUri" in missing.stderr
    typo = render_with(values={"registries": {"prod": {**PROD, "existingSecrets": "x"}}})
    assert typo.returncode != 0 and "existingSecrets" in typo.stderr
    not_a_server = render_with(values={"registries": {"prod": {"trackingUri": "sqlite:///prod.db"}}})
    assert not_a_server.returncode != 0 and "trackingUri" in not_a_server.stderr


def test_the_registries_egress_never_reaches_the_cloud_metadata_address(render_with: Callable[..., Any]) -> None:
    result = render_with(
        values={
            "registries": {"prod": PROD},
            "networkPolicy": {"egress": {"registries": {"cidrs": ["169.254.169.254/32"]}}},
        }
    )
    assert result.returncode != 0
    assert "networkPolicy.egress.registries.cidrs" in result.stderr and "metadata" in result.stderr
    wide = render(render_with, registries={"prod": PROD})
    [rule] = [r for r in egress_to_blocks(wide, "api") if json.dumps(r).count("443")]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]
