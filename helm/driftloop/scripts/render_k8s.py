"""Render k8s/ (the plain manifests for `kubectl apply -k k8s/`) from the chart, so there is one source.

    python helm/driftloop/scripts/render_k8s.py           # rewrite the generated files of k8s/
    python helm/driftloop/scripts/render_k8s.py --check   # exit 1 if they are out of date

Generated: k8s/driftloop.yaml (every object of release `driftloop` in namespace `driftloop`, minus what
only Helm can run: the pre-upgrade migration Job and the `helm test` pod), k8s/base-job-template.json
(the work pool's base job template with the chart's default values) and k8s/register.sh (the register
Job's script). kustomization.yaml turns the last two into the ConfigMap the register Job mounts.
Without Helm nobody creates the database Secret: k8s/README.md shows the command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1]
K8S = CHART.parents[1] / "k8s"
RELEASE = NAMESPACE = "driftloop"
# Objects Helm alone can run, or that kustomization.yaml generates.
LEFT_OUT = {("Job", "driftloop-migrate"), ("Pod", "driftloop-test-connection"), ("ConfigMap", "driftloop-work-pool")}
HEADER = (
    "# Generated from helm/driftloop by helm/driftloop/scripts/render_k8s.py: edit the chart and rerun it.\n"
    "# Release `driftloop` in namespace `driftloop`: the chart's default values, and\n"
    "# database.existingSecret=driftloop-database, auth.existingSecret=driftloop-auth and\n"
    "# auth.flowRunExistingSecret=driftloop-flow-run-auth (create those Secrets first: see k8s/README.md).\n"
)


# Without Helm nothing generates passwords (nor could it keep them across applies): the manifests name
# the Secrets k8s/README.md creates, and the chart refuses to render without them where lookup is blind.
EXISTING_SECRETS = (
    "--set",
    "database.existingSecret=driftloop-database",
    "--set",
    "auth.existingSecret=driftloop-auth",
    "--set",
    "auth.flowRunExistingSecret=driftloop-flow-run-auth",
)


def helm_template(*args: str) -> list[dict[str, Any]]:
    """The objects `helm template` renders for release `driftloop` in namespace `driftloop`."""
    command = ["helm", "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *EXISTING_SECRETS, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _without_helm(metadata: dict[str, Any]) -> None:
    labels = metadata.get("labels") or {}
    labels.pop("helm.sh/chart", None)
    if "app.kubernetes.io/managed-by" in labels:
        labels["app.kubernetes.io/managed-by"] = "kubectl"
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if not k.startswith("helm.sh/")}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)


def _strip(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metadata" and isinstance(value, dict):
                _without_helm(value)
            _strip(value)
    elif isinstance(node, list):
        for item in node:
            _strip(item)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def work_pool_files(*helm_args: str) -> dict[str, str]:
    """The data of the chart's work-pool ConfigMap: base-job-template.json and register.sh."""
    (configmap,) = helm_template("--show-only", "templates/work-pool-configmap.yaml", *helm_args)
    return configmap["data"]


def base_job_template(*helm_args: str) -> dict[str, Any]:
    return json.loads(work_pool_files(*helm_args)["base-job-template.json"])


def rendered() -> dict[str, str]:
    """File name under k8s/ → content."""
    objects = [
        obj
        for obj in helm_template("--set", "database.existingSecret=driftloop-database")
        if (obj["kind"], obj["metadata"]["name"]) not in LEFT_OUT
    ]
    for obj in objects:
        _strip(obj)
    manifests = "---\n".join(
        yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120) for obj in objects
    )
    files = work_pool_files()
    return {
        "driftloop.yaml": HEADER + "---\n" + manifests,
        "base-job-template.json": json.dumps(json.loads(files["base-job-template.json"]), indent=2) + "\n",
        "register.sh": files["register.sh"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if a generated file of k8s/ is out of date.")
    args = parser.parse_args()
    stale = []
    for name, content in rendered().items():
        path = K8S / name
        if path.exists() and path.read_text() == content:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(content)
    if args.check and stale:
        print(f"k8s/: out of date: {', '.join(stale)}: run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
