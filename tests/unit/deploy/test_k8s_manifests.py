"""deploy/k8s: valid against Kubernetes' schemas (offline, kubernetes-validate), and
wired together: probes on the health endpoints, selectors that match, the detector
configuration equal to the example, replicas no more than partitions."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parents[3]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # oldest release still common; the newest validates too
LABELS = {"app.kubernetes.io/name": "tokenradar", "app.kubernetes.io/component": "worker"}


def manifests() -> dict[str, dict[str, Any]]:
    """Every resource the kustomization lists, by kind."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            found[document["kind"]] = document
    return found


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return manifests()


def worker_container(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = resources["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_kustomization_lists_every_manifest_in_the_folder(resources) -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == {"ConfigMap", "Deployment", "Service", "ServiceMonitor"}


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "Service"])
@pytest.mark.parametrize("version", [KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_core_manifest_validates_strictly_against_kubernetes_schemas(
    resources, kind: str, version: str
) -> None:
    kubernetes_validate.validate(resources[kind], version, strict=True)


def test_the_validator_rejects_a_misspelt_field(resources) -> None:
    broken = copy.deepcopy(resources["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_no_namespace_is_fixed(resources) -> None:
    assert all("namespace" not in r["metadata"] for r in resources.values())


def test_probes_use_the_health_endpoints_on_the_metrics_port(resources) -> None:
    container = worker_container(resources)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = env_of(container)
    assert ports["metrics"] == int(env["TOKENRADAR_METRICS_PORT"])
    assert env["TOKENRADAR_METRICS_HOST"] == "0.0.0.0"  # probes come from the kubelet
    assert float(env["TOKENRADAR_STALL_SECONDS"]) > 0


def test_replicas_do_not_exceed_partitions(resources) -> None:
    env = env_of(worker_container(resources))
    assert 1 <= resources["Deployment"]["spec"]["replicas"] <= int(env["TOKENRADAR_PARTITIONS"])


def test_resources_have_requests_and_limits(resources) -> None:
    limits = worker_container(resources)["resources"]
    assert {"cpu", "memory"} <= set(limits["requests"])
    assert "memory" in limits["limits"]


def test_configmap_is_the_example_configuration_mounted_where_the_worker_reads(
    resources,
) -> None:
    data = resources["ConfigMap"]["data"]["tokenradar.toml"]
    assert data == (ROOT / "examples" / "tokenradar.toml").read_text(), (
        "deploy/k8s/configmap.yaml differs from examples/tokenradar.toml: copy the file "
        "into its data, indented by 4 spaces")
    spec = resources["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == resources["ConfigMap"]["metadata"]["name"]
    (mount,) = [m for m in worker_container(resources)["volumeMounts"]
                if m["name"] == volume["name"]]
    path = env_of(worker_container(resources))["TOKENRADAR_CONFIG"]
    assert path == f"{mount['mountPath']}/tokenradar.toml"


def test_selectors_reach_the_workers(resources) -> None:
    deployment, service = resources["Deployment"], resources["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "metrics"


def test_service_monitor_has_what_prometheus_operator_requires(resources) -> None:
    """No core schema covers this CRD: its required fields are checked here."""
    monitor, service = resources["ServiceMonitor"], resources["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"]
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    # The rules select job="tokenradar": the job label must come out as that.
    assert service["metadata"]["labels"][spec["jobLabel"]] == "tokenradar"
    assert LABELS.items() <= service["metadata"]["labels"].items()
