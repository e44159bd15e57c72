"""A stand-in Kubernetes API for `helm template --dry-run=server`, so the chart's `lookup` calls see a cluster.

No API server can run here. Helm's server-side dry run needs only discovery (which kinds exist) and
GETs of single objects: this answers those from a dict of objects, 404 for the rest, and records what
was asked. It is a mock of the Kubernetes API and nothing more: the rendering is the real helm binary's.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .conftest import CHART, NAMESPACE, RELEASE, tool

# The kinds the chart renders, by group/version: helm maps every rendered object through discovery.
RESOURCES = {
    "v1": [
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("services", "Service"),
        ("serviceaccounts", "ServiceAccount"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"),
        ("pods", "Pod"),
        ("namespaces", "Namespace"),
    ],
    "apps/v1": [("deployments", "Deployment"), ("statefulsets", "StatefulSet")],
    "batch/v1": [("jobs", "Job")],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy"), ("ingresses", "Ingress")],
    "rbac.authorization.k8s.io/v1": [("roles", "Role"), ("rolebindings", "RoleBinding")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor")],
}
CLUSTER_SCOPED = {"namespaces"}


def discovery(path: str) -> dict[str, Any] | None:
    if path == "/version":
        return {"major": "1", "minor": "35", "gitVersion": "v1.35.0", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"]}
    if path == "/apis":
        groups = [gv.split("/") for gv in RESOURCES if "/" in gv]
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in groups
            ],
        }
    group_version = path.removeprefix("/api/").removeprefix("/apis/")
    if path in (f"/api/{group_version}", f"/apis/{group_version}") and group_version in RESOURCES:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": [
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": plural not in CLUSTER_SCOPED,
                    "kind": kind,
                    "verbs": ["get", "list", "create"],
                }
                for plural, kind in RESOURCES[group_version]
            ],
        }
    return None


class LookupCluster(ThreadingHTTPServer):
    objects: dict[str, dict[str, Any]]
    requested: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def add(self, obj: dict[str, Any]) -> None:
        """Make `obj` (a Kubernetes object as a dict) exist, answered at its API path."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural = next(p for p, k in RESOURCES[api_version] if k == kind)
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        namespace = obj["metadata"].get("namespace")
        middle = f"/namespaces/{namespace}" if namespace else ""
        self.objects[f"{prefix}{middle}/{plural}/{obj['metadata']['name']}"] = obj

    def kubeconfig(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in"}}],
            "current-context": "stand-in",
            "users": [{"name": "stand-in", "user": {}}],
        }
        path.write_text(json.dumps(config))
        return path


class _Handler(BaseHTTPRequestHandler):
    server: LookupCluster

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.server.requested.append(path)
        body = discovery(path) or self.server.objects.get(path)
        if body is None:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
            self._answer(404, status)
        else:
            self._answer(200, body)

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def lookup_cluster(namespace: str) -> Iterator[LookupCluster]:
    """A cluster where namespace `namespace` exists with its `default` ServiceAccount, and nothing else."""
    server = LookupCluster(("127.0.0.1", 0), _Handler)
    server.objects, server.requested = {}, []
    server.add({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def render_on_cluster(cluster: LookupCluster, folder: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """`helm template` with lookup answered by `cluster`, as `helm install`/`helm upgrade` render."""
    args = [arg for override in overrides for arg in ("--set", override)]
    command = [tool("helm"), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    command += ["--dry-run=server", "--disable-openapi-validation", *args]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig(folder)), "HELM_CACHE_HOME": str(folder / "cache")}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
