"""The chart rendered by a real helm binary, once per values file per session.

No Kubernetes cluster runs here: the tests render the chart and the plain manifests, validate every
object against the Kubernetes API schemas, scan them with checkov, build flow-run Jobs with the real
prefect-kubernetes code and run the worker against a mocked Kubernetes API. `.ci/install-k8s-tools`
installs helm, kubectl, checkov and kubernetes-validate.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "driftloop"
K8S = ROOT / "k8s"
RELEASE = NAMESPACE = "driftloop"
# Every example values file, plus the defaults.
VALUES_FILES = ["default", *sorted(path.name for path in (CHART / "ci").glob("*.yaml"))]
KUBERNETES_VERSIONS = ["1.29", "1.35"]
# What a subprocess gets besides PATH: nothing phones home (tests/conftest.py sets the same in-process).
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED": "false",
}

Objects = list[dict[str, Any]]


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: run .ci/install-k8s-tools"
    return path


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def load_script(name: str) -> ModuleType:
    """One of the chart's scripts (helm/driftloop/scripts/<name>.py), imported as a module."""
    module_name = f"driftloop_chart_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, CHART / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def values_args(values_file: str) -> list[str]:
    return [] if values_file == "default" else ["--values", str(CHART / "ci" / values_file)]


# `helm template` sees no cluster, so the chart refuses to generate Secrets whose passwords lookup keeps
# across upgrades: every render names existing Secrets first (later --values and --set still override).
NO_CLUSTER_VALUES = Path(__file__).resolve().parent / "no-cluster-values.yaml"


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return run(
        tool("helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--values",
        str(NO_CLUSTER_VALUES),
        *args,
    )


def parse(manifests: str) -> Objects:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    matches = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload or Pod, None for other kinds."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
        return obj["spec"]["template"]["spec"]
    return None


def base_job_template_of(objects: Objects) -> dict[str, Any]:
    configmap = find(objects, "ConfigMap", "driftloop-work-pool")
    return json.loads(configmap["data"]["base-job-template.json"])


@pytest.fixture(scope="session")
def rendered_text() -> dict[str, str]:
    """`helm template` output for each values file (default values and every ci/ example)."""
    outputs = {}
    for values_file in VALUES_FILES:
        result = helm_template(*values_args(values_file))
        assert result.returncode == 0, f"{values_file}: {result.stderr}"
        outputs[values_file] = result.stdout
    return outputs


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, Objects]:
    return {values_file: parse(text) for values_file, text in rendered_text.items()}


@pytest.fixture(scope="session")
def default_objects(rendered: dict[str, Objects]) -> Objects:
    return rendered["default"]


@pytest.fixture(scope="session")
def plain_manifests() -> Objects:
    """What `kubectl apply -k k8s/` would send: the kustomize build of k8s/."""
    result = run(tool("kubectl"), "kustomize", str(K8S))
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


@pytest.fixture
def render_with() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Render the chart with `--set`-style overrides; returns the completed helm process."""

    def render(*overrides: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        args = [arg for override in overrides for arg in ("--set", override)]
        for key, value in (values or {}).items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return helm_template(*args)

    return render


@pytest.fixture(scope="session")
def default_base_job_template(default_objects: Objects) -> dict[str, Any]:
    return base_job_template_of(default_objects)
