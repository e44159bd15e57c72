"""A stand-in Kubernetes API server on 127.0.0.1, so the chart's `lookup` paths render with a real helm.

No Kubernetes API server can run on these machines (DESIGN.md, "Testing without a cluster"). Helm's
`lookup` only reads the cluster under `helm template --dry-run=server` (and install/upgrade), so
these tests point helm at this server: it answers discovery for the kinds the chart renders, GETs of
the objects a test puts in it (the namespace's `default` ServiceAccount always, so the chart sees a
cluster), lists with nothing in them, and echoes server-side dry-run writes. It is a mock of the
Kubernetes API, the one part the tests may mock; helm and the chart's templates are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# group/version -> (plural, kind, namespaced) for every kind the chart may render or look up.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("pods", "Pod", True),
        ("namespaces", "Namespace", False),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True)],
    "batch/v1": [("jobs", "Job", True)],
    "rbac.authorization.k8s.io/v1": [("roles", "Role", True), ("rolebindings", "RoleBinding", True)],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True), ("ingresses", "Ingress", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "storage.k8s.io/v1": [("storageclasses", "StorageClass", False)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True)],
}
KIND_PLURAL = {kind: plural for resources in RESOURCES.values() for plural, kind, _ in resources}
KIND_GROUP_VERSION = {kind: gv for gv, resources in RESOURCES.items() for _, kind, _ in resources}


def object_path(kind: str, name: str, namespace: str | None) -> str:
    group_version = KIND_GROUP_VERSION[kind]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{KIND_PLURAL[kind]}/{name}"


@dataclass
class FakeApiServer:
    namespace: str
    release: str
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None

    def add(self, obj: dict[str, Any]) -> None:
        """Make `obj` readable (by its kind, namespace and name) as if it existed in the cluster."""
        metadata = obj["metadata"]
        namespaced = any(k == obj["kind"] and n for _, k, n in RESOURCES[KIND_GROUP_VERSION[obj["kind"]]])
        namespace = metadata.get("namespace", self.namespace) if namespaced else None
        obj = {"apiVersion": KIND_GROUP_VERSION[obj["kind"]], **obj}
        # Helm's own objects: it refuses to render over objects of another owner.
        metadata.setdefault("labels", {}).setdefault("app.kubernetes.io/managed-by", "Helm")
        annotations = metadata.setdefault("annotations", {})
        annotations.setdefault("meta.helm.sh/release-name", self.release)
        annotations.setdefault("meta.helm.sh/release-namespace", self.namespace)
        self.objects[object_path(obj["kind"], metadata["name"], namespace)] = obj

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests.append(f"{method} {path}")
        path = path.split("?")[0]
        if method in {"POST", "PUT", "PATCH"}:
            # Helm's server-side dry run: the server would validate and echo the object back.
            return 201, json.loads(body or b"{}")
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups = []
            for group_version in RESOURCES:
                if "/" in group_version:
                    group, version = group_version.split("/")
                    entry = {"groupVersion": group_version, "version": version}
                    groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        for group_version, resources in RESOURCES.items():
            prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            if path == prefix:
                listing = [
                    {
                        "name": plural,
                        "singularName": "",
                        "namespaced": namespaced,
                        "kind": kind,
                        "verbs": ["get", "list"],
                    }
                    for plural, kind, namespaced in resources
                ]
                return 200, {"kind": "APIResourceList", "groupVersion": group_version, "resources": listing}
        if path in self.objects:
            return 200, self.objects[path]
        if path.rsplit("/", 1)[-1] in KIND_PLURAL.values():
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}


def helm_template_in_cluster(
    fake: FakeApiServer, chart: Path, release: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`helm template` as `helm install` renders: lookup reads the fake cluster. OpenAPI validation is
    off (the fake serves no schemas; kubernetes-validate checks the objects elsewhere)."""
    command = ["helm", "template", release, str(chart), "--namespace", fake.namespace, "--dry-run=server"]
    command += ["--disable-openapi-validation", *args]
    env = {**os.environ, "KUBECONFIG": str(fake.kubeconfig)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@contextmanager
def fake_apiserver(tmp_path: Path, namespace: str, release: str) -> Iterator[FakeApiServer]:
    """A running fake API server and a kubeconfig pointing at it (set KUBECONFIG to `.kubeconfig`);
    objects added to it belong to Helm release `release`."""
    fake = FakeApiServer(namespace, release)
    fake.add({"kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, answer = fake.answer(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.kubeconfig = tmp_path / "kubeconfig"
    fake.kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
                "current-context": "fake",
            }
        )
    )
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
