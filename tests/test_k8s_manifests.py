"""deploy/k8s: every manifest is valid against the Kubernetes schemas (offline, bundled with
kubernetes-validate) and each domain is deployed the way deploy/README.md says."""

import pathlib

import kubernetes_validate
import pytest
import yaml

from cytoatlas.serving.config import DEFAULT_PORTS, FLIGHT_PORT_OFFSET, SOCKET_PORT_OFFSET

K8S = pathlib.Path(__file__).resolve().parents[1] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33"  # native gRPC probes are GA since 1.27
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
RESOURCES = [doc for name in KUSTOMIZATION["resources"]
             for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def find(kind: str, name: str) -> dict:
    return next(r for r in RESOURCES if r["kind"] == kind and r["metadata"]["name"] == name)


def test_kustomization_lists_every_manifest():
    assert sorted(KUSTOMIZATION["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_manifest_is_valid_against_the_kubernetes_schema(resource):
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_caught():  # the validation above can fail
    broken = yaml.safe_load(yaml.safe_dump(find("Deployment", "atlas")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("domain", DEFAULT_PORTS)
def test_each_domain_runs_replicas_behind_a_headless_service_fed_by_a_builder_job(domain):
    port, flight = DEFAULT_PORTS[domain], DEFAULT_PORTS[domain] + FLIGHT_PORT_OFFSET
    arrow_socket = DEFAULT_PORTS[domain] + SOCKET_PORT_OFFSET
    deployment, service = find("Deployment", domain), find("Service", domain)
    pod = deployment["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert deployment["spec"]["replicas"] >= 2
    assert server["args"][:2] == ["serve", domain]
    assert server["readinessProbe"]["grpc"]["port"] == port
    assert server["livenessProbe"]["tcpSocket"]["port"] == port  # NOT_SERVING must not restart it
    assert {"cpu", "memory"} <= server["resources"]["requests"].keys() & server["resources"]["limits"].keys()
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert {p["containerPort"] for p in server["ports"]} == {port, flight, arrow_socket, 9090}
    assert {"name": "CYTOATLAS_METRICS_PORT", "value": "9090"} in server["env"]
    assert {"name": "CYTOATLAS_FLIGHT_PORT", "value": str(flight)} in server["env"]
    assert {"name": "CYTOATLAS_SOCKET_PORT", "value": str(arrow_socket)} in server["env"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"] == {"claimName": "cytoatlas-data", "readOnly": True}

    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["metadata"]["labels"] == service["spec"]["selector"]
    assert {p["port"] for p in service["spec"]["ports"]} == {port, flight, arrow_socket, 9090}

    job = find("Job", f"build-{domain}")["spec"]["template"]["spec"]
    assert f"cytoatlas build {domain} " in job["containers"][0]["command"][-1]
    assert job["volumes"][0]["persistentVolumeClaim"]["claimName"] == "cytoatlas-data"
