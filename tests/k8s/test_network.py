"""Who may talk to whom, read from the rendered NetworkPolicies as a CNI enforcing them would.

No cluster runs here, so `Network` below applies the Kubernetes NetworkPolicy rules (a pod selected by
no policy of a direction is open in it; otherwise a connection needs one rule allowing it on both
sides) to the pods the chart renders, flow-run pods included. The tests ask it what users would
see: which service a pod reaches, whether the cloud metadata address answers, what a values change
opens.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import NAMESPACE, Objects, find, helm_template, parse, pod_spec
from .test_kubernetes_validate import validation_errors

METADATA = "169.254.169.254"
# The release's services by component, at the container ports the policies see.
SERVICES = {"postgresql": 5432, "prefect-server": 4200, "mlflow": 5000, "api": 8000}


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str] = field(hash=False)

    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector: matchLabels and matchExpressions (an empty selector selects all)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Pod | str) -> bool:
    if isinstance(other, str):
        if "ipBlock" not in peer:
            return False
        address = ipaddress.ip_address(other)
        block = peer["ipBlock"]
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(cut) for cut in block.get("except", []))
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels()):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return not ports or any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports)


class Network:
    def __init__(self, objects: Objects) -> None:
        self.policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
        self.pods = {pod.name: pod for pod in pods_of(objects)}

    def _allowed(self, pod: Pod, direction: str, other: Pod | str, port: int, protocol: str) -> bool:
        policy_type, key, peers = {
            "egress": ("Egress", "egress", "to"),
            "ingress": ("Ingress", "ingress", "from"),
        }[direction]
        governing = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and selects(policy["spec"]["podSelector"], pod.labels)
            and policy_type in policy["spec"].get("policyTypes", ["Ingress"])
        ]
        if not governing:
            return True
        return any(
            port_matches(rule.get("ports"), port, protocol)
            and (
                not rule.get(peers)
                or any(peer_matches(peer, policy["metadata"]["namespace"], other) for peer in rule[peers])
            )
            for policy in governing
            for rule in policy["spec"].get(key) or []
        )

    def connects(self, source: Pod | str, target: Pod | str, port: int, protocol: str = "TCP") -> bool:
        """Whether a connection from source to target:port gets through both sides' policies."""
        out = self._allowed(source, "egress", target, port, protocol) if isinstance(source, Pod) else True
        into = self._allowed(target, "ingress", source, port, protocol) if isinstance(target, Pod) else True
        return out and into

    def services_reached(self, source: str) -> set[str]:
        return {
            component
            for component, port in SERVICES.items()
            if component in self.pods and self.connects(self.pods[source], self.pods[component], port)
        }


def pods_of(objects: Objects) -> list[Pod]:
    """Every pod the chart runs, by component, and a flow-run pod as the base job template makes it."""
    pods = []
    for obj in objects:
        if pod_spec(obj) is None:
            continue
        labels = obj["metadata"]["labels"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]
        pods.append(Pod(labels["app.kubernetes.io/component"], obj["metadata"]["namespace"], labels))
    template = json.loads(find(objects, "ConfigMap", "driftloop-work-pool")["data"]["base-job-template.json"])
    job = template["job_configuration"]["job_manifest"]
    # The base job template fixes the Jobs' namespace and the pod's labels: no job variable sets them.
    pods.append(Pod("flow-run", job["metadata"]["namespace"], job["spec"]["template"]["metadata"]["labels"]))
    return pods


def render(*overrides: str, values: dict[str, Any] | None = None) -> Objects:
    args = [arg for override in overrides for arg in ("--set", override)]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def dns_pod() -> Pod:
    return Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})


@pytest.fixture(scope="module")
def network(default_objects: Objects) -> Network:
    return Network(default_objects)


def test_each_pod_reaches_exactly_the_release_services_it_calls(network: Network) -> None:
    reached = {name: network.services_reached(name) for name in network.pods}
    assert reached == {
        "postgresql": set(),
        "prefect-server": {"postgresql"},
        "mlflow": {"postgresql"},
        "migrate": {"postgresql"},
        "api": {"prefect-server", "mlflow"},
        "prefect-worker": {"prefect-server"},
        "register": {"prefect-server"},
        "mlflow-users": {"mlflow"},
        "test": {"prefect-server", "mlflow", "api"},
        "flow-run": {"prefect-server", "mlflow"},
    }


def test_flow_runs_in_their_own_namespace_reach_prefect_and_mlflow_across_namespaces(
    rendered: dict[str, Objects],
) -> None:
    network = Network(rendered["external-database-s3-values.yaml"])
    flow_run = network.pods["flow-run"]
    assert flow_run.namespace == "driftloop-jobs"
    assert network.services_reached("flow-run") == {"prefect-server", "mlflow"}
    # A pod of the release's namespace wearing flow-run labels is not a flow run: it reaches nothing more.
    impostor = Pod("impostor", NAMESPACE, dict(flow_run.labels))
    assert not network.connects(impostor, network.pods["mlflow"], 5000)


def test_every_pod_but_postgresql_resolves_names(network: Network) -> None:
    resolving = {name for name, pod in network.pods.items() if network.connects(pod, dns_pod(), 53, "UDP")}
    assert resolving == set(network.pods) - {"postgresql"}
    assert all(network.connects(network.pods[name], dns_pod(), 53, "TCP") for name in resolving)
    assert not network.connects(network.pods["flow-run"], Pod("other", "kube-system", {}), 53, "UDP")


@pytest.mark.parametrize("values_file", ["default", "external-database-s3-values.yaml"])
def test_no_pod_reaches_the_cloud_metadata_address(values_file: str, rendered: dict[str, Objects]) -> None:
    network = Network(rendered[values_file])
    for name, pod in network.pods.items():
        for port in (80, 443, 5432, 6443):
            assert not network.connects(pod, METADATA, port), f"{name} reaches {METADATA}:{port}"


def test_the_metadata_address_opens_only_when_asked() -> None:
    network = Network(render("networkPolicy.egress.allowCloudMetadata=true"))
    assert network.connects(network.pods["flow-run"], METADATA, 443)
    assert not network.connects(network.pods["flow-run"], METADATA, 80)


def test_outside_addresses_are_reached_only_by_the_pods_that_need_them(rendered: dict[str, Objects]) -> None:
    network = Network(rendered["external-database-s3-values.yaml"])
    bucket, database, control_plane = "52.218.0.10", "10.20.0.5", "10.0.0.1"
    outside = {
        name: {
            "object store": network.connects(pod, bucket, 443),
            "database": network.connects(pod, database, 5432),
            "kubernetes api": network.connects(pod, control_plane, 6443),
        }
        for name, pod in network.pods.items()
    }
    reaching = {what: {name for name, reached in outside.items() if reached[what]} for what in outside["api"]}
    assert reaching == {
        # The worker too, until networkPolicy.egress.kubernetesApi.cidrs names the control plane: by
        # default it may reach any address on 443 and 6443, where API servers listen.
        "object store": {"mlflow", "flow-run", "prefect-worker"},
        "database": {"prefect-server", "mlflow", "migrate"},
        "kubernetes api": {"prefect-worker"},
    }


def test_mlflow_with_artifacts_on_a_claim_reaches_no_object_store(network: Network) -> None:
    assert not network.connects(network.pods["mlflow"], "52.218.0.10", 443)
    assert network.connects(network.pods["flow-run"], "52.218.0.10", 443)


def test_narrowed_cidrs_and_ports_limit_the_external_targets() -> None:
    network = Network(
        render(
            "postgresql.enabled=false",
            values={
                "networkPolicy.egress.database": {"cidrs": ["10.20.0.0/16"], "ports": [5433]},
                "networkPolicy.egress.objectStore": {"cidrs": ["10.30.0.0/24"], "ports": [9000]},
                "networkPolicy.egress.kubernetesApi": {"cidrs": ["172.16.0.1/32"], "ports": [6443]},
            },
        )
    )
    server, worker, flow_run = (network.pods[name] for name in ("prefect-server", "prefect-worker", "flow-run"))
    assert network.connects(server, "10.20.3.4", 5433)
    assert not network.connects(server, "10.20.3.4", 5432)
    assert not network.connects(server, "10.21.0.1", 5433)
    assert network.connects(flow_run, "10.30.0.9", 9000)
    assert not network.connects(flow_run, "52.218.0.10", 443)
    assert network.connects(worker, "172.16.0.1", 6443)
    assert not network.connects(worker, "172.16.0.2", 6443)


def test_webhook_targets_are_reached_by_the_api_and_flow_runs_only() -> None:
    network = Network(render(values={"networkPolicy.egress.webhooks": {"cidrs": ["203.0.113.0/24"], "ports": [8443]}}))
    reaching = {name for name, pod in network.pods.items() if network.connects(pod, "203.0.113.7", 8443)}
    assert reaching == {"api", "flow-run"}


def test_extra_rules_reach_every_pod_but_postgresql() -> None:
    minio = {"to": [{"podSelector": {"matchLabels": {"app": "minio"}}}], "ports": [{"port": 9000}]}
    network = Network(render(values={"networkPolicy.egress.extraRules": [minio]}))
    target = Pod("minio", NAMESPACE, {"app": "minio"})
    reaching = {name for name, pod in network.pods.items() if network.connects(pod, target, 9000)}
    assert reaching == set(network.pods) - {"postgresql"}


def test_egress_left_open_when_turned_off_while_ingress_stays_closed() -> None:
    network = Network(render("networkPolicy.egress.enabled=false"))
    assert network.connects(network.pods["flow-run"], METADATA, 80)
    assert network.connects(network.pods["api"], network.pods["postgresql"], 5432) is False
    assert not network.connects(network.pods["flow-run"], network.pods["postgresql"], 5432)


@pytest.mark.parametrize(
    ("cidr", "cut"),
    [
        ("0.0.0.0/0", [f"{METADATA}/32"]),
        ("169.254.0.0/16", [f"{METADATA}/32"]),
        ("169.254.169.0/24", [f"{METADATA}/32"]),
        ("10.0.0.0/8", None),  # Kubernetes refuses an `except` outside its CIDR
        ("169.254.170.0/24", None),
        ("::/0", None),
    ],
)
def test_the_metadata_address_is_cut_out_of_exactly_the_cidrs_holding_it(cidr: str, cut: list[str] | None) -> None:
    objects = render(values={"networkPolicy.egress.webhooks": {"cidrs": [cidr], "ports": [443]}})
    policy = find(objects, "NetworkPolicy", "driftloop-api")
    blocks = [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
    assert blocks == [{"cidr": cidr, "except": cut} if cut else {"cidr": cidr}]


def test_the_metadata_address_as_a_target_fails_naming_the_key() -> None:
    values = {"networkPolicy.egress.webhooks": {"cidrs": [f"{METADATA}/32"], "ports": [80]}}
    args = ["--set-json", f"networkPolicy.egress.webhooks={json.dumps(values['networkPolicy.egress.webhooks'])}"]
    result = helm_template(*args)
    assert result.returncode != 0
    assert "networkPolicy.egress.webhooks.cidrs: 169.254.169.254/32 is the cloud metadata address" in result.stderr
    assert "networkPolicy.egress.allowCloudMetadata=true" in result.stderr
    allowed = helm_template(*args, "--set", "networkPolicy.egress.allowCloudMetadata=true")
    assert allowed.returncode == 0, allowed.stderr


def test_a_malformed_cidr_fails_the_schema_naming_the_key() -> None:
    result = helm_template("--set-json", 'networkPolicy.egress.objectStore.cidrs=["10.0.0.0"]')
    assert result.returncode != 0
    assert "networkPolicy.egress.objectStore.cidrs" in result.stderr.replace("/", ".")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["api.ingress.enabled=true", "api.ingress.host=driftloop.example.com"], "api.ingress.enabled=true"),
        (["prefectServer.service.type=LoadBalancer"], "prefectServer.service.type=LoadBalancer"),
        (["mlflow.service.type=NodePort"], "mlflow.service.type=NodePort"),
    ],
)
def test_traffic_from_outside_without_ingress_from_fails_naming_both_keys(overrides: list[str], key: str) -> None:
    args = [arg for override in overrides for arg in ("--set", override)]
    refused = helm_template(*args)
    assert refused.returncode != 0
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("networkPolicy.ingressFrom:")]
    assert key in line and "networkPolicy.enabled=true" in line
    peers = json.dumps([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}])
    assert helm_template(*args, "--set-json", f"networkPolicy.ingressFrom={peers}").returncode == 0
    assert helm_template(*args, "--set", "networkPolicy.enabled=false").returncode == 0


def test_ingress_from_admits_the_controller_to_the_exposed_services_only(rendered: dict[str, Objects]) -> None:
    network = Network(rendered["ingress-values.yaml"])
    controller = Pod("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    reached = {name for name, port in SERVICES.items() if network.connects(controller, network.pods[name], port)}
    assert reached == {"prefect-server", "mlflow", "api"}


def test_prometheus_scrapes_the_api_only_with_the_service_monitor(network: Network) -> None:
    prometheus = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert not network.connects(prometheus, network.pods["api"], 8000)
    monitored = Network(render("metrics.serviceMonitor.enabled=true"))
    assert monitored.connects(prometheus, monitored.pods["api"], 8000)
    assert not monitored.connects(prometheus, monitored.pods["mlflow"], 5000)
    assert not monitored.connects(Pod("prometheus", "default", prometheus.labels), monitored.pods["api"], 8000)


@pytest.mark.parametrize("version", ["1.29", "1.35"])
def test_policies_with_every_egress_option_are_valid_kubernetes(version: str) -> None:
    objects = render(
        "metrics.serviceMonitor.enabled=true",
        "postgresql.enabled=false",
        values={
            "networkPolicy.egress.webhooks": {"cidrs": ["0.0.0.0/0", "::/0", "169.254.0.0/16"], "ports": [443]},
            "networkPolicy.egress.extraRules": [{"to": [{"podSelector": {}}], "ports": [{"port": 9000}]}],
        },
    )
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    assert len(policies) >= 9
    assert validation_errors(policies, version) == []
