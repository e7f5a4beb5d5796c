"""TLS, mutual TLS and the bearer token on a real service, through the Router and grpcurl.

Certificates come from a throwaway CA made here with `cryptography`; a second CA signs the
certificate a client must NOT get in with."""

import datetime
import ipaddress
import os
import subprocess
import sys

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cytoatlas.client import CytoAtlasError, Router
from cytoatlas.client.errors import from_rpc_error
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import BIN, health_status

TABLE = "tahoe_drug_effect"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca=False, server=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A CA and certificates it signed, written as PEM files under `root`."""

    def __init__(self, root, name):
        self.root, self.name = root, name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = _certificate(f"{name} CA", self.key, f"{name} CA", self.key, ca=True)
        self.ca = self._write(f"{name}-ca.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def _write(self, filename, data):
        path = self.root / filename
        path.write_bytes(data)
        return str(path)

    def issue(self, subject, *, server=False):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(subject, key, f"{self.name} CA", self.key, server=server)
        cert_path = self._write(f"{self.name}-{subject}.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_path = self._write(f"{self.name}-{subject}.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    good, other = Pki(root, "good"), Pki(root, "other")
    return {"ca": good.ca, "server": good.issue("server", server=True), "client": good.issue("client"),
            "other_ca": other.ca, "other_client": other.issue("client")}


def _query(router):
    return router.query(TABLE, limit=3).num_rows


def _refused(router):
    with pytest.raises(CytoAtlasError) as info:
        router.query(TABLE, limit=3)
    return info.value


def test_mutual_tls(built, pki, start_service):
    cert, key = pki["server"]
    service = start_service("perturbation", built["perturbation"], "--tls-cert", cert, "--tls-key", key,
                            "--tls-client-ca", pki["ca"])
    address = {"perturbation": service.address}
    accepted = refused = 0
    with Router(address, timeout=10, tls_ca=pki["ca"], tls_cert=pki["client"][0], tls_key=pki["client"][1]) as good:
        assert _query(good) == 3 and good.health("perturbation") == "SERVING"
        accepted += 1
    for label, kwargs in [("no client certificate", {"tls_ca": pki["ca"]}),
                          ("client certificate from another CA",
                           {"tls_ca": pki["ca"], "tls_cert": pki["other_client"][0],
                            "tls_key": pki["other_client"][1]})]:
        with Router(address, timeout=10, **kwargs) as router:
            error = _refused(router)
            assert error.code == grpc.StatusCode.UNAVAILABLE, (label, error)
            refused += 1
    with grpc.insecure_channel(service.address) as channel:  # plaintext to a TLS port
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.TableServiceStub(channel).ListTables(pb.ListTablesRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        refused += 1
    assert service.process.poll() is None
    print(f"\nFIGURE mTLS: {accepted} accepted (client certificate from the service's CA); {refused} refused "
          f"(no client certificate, certificate from another CA, plaintext)")


def test_tls_without_client_certificates(built, pki, start_service):
    cert, key = pki["server"]
    service = start_service("perturbation", built["perturbation"], "--tls-cert", cert, "--tls-key", key)
    with Router({"perturbation": service.address}, timeout=10, tls_ca=pki["ca"]) as router:
        assert _query(router) == 3
    with Router({"perturbation": service.address}, timeout=10, tls_ca=pki["other_ca"]) as router:
        assert _refused(router).code == grpc.StatusCode.UNAVAILABLE  # server not trusted
    assert health_status(service.address, credentials=grpc.ssl_channel_credentials(
        open(pki["ca"], "rb").read())) == "SERVING"


def test_bearer_token(built, start_service):
    service = start_service("perturbation", built["perturbation"], "--auth-token", "s3cret")
    closed = start_service("perturbation", built["perturbation"], "--auth-token", "s3cret", "--auth-exempt", "")
    accepted = refused = 0
    with Router({"perturbation": service.address}, timeout=10, token="s3cret") as router:
        assert _query(router) == 3
        accepted += 1
    for token, words in [(None, "no bearer token was sent"), ("wrong", "the bearer token is not valid")]:
        with Router({"perturbation": service.address}, timeout=10, token=token) as router:
            error = _refused(router)
            assert error.code == grpc.StatusCode.UNAUTHENTICATED and words in str(error)
            refused += 1
    with grpc.insecure_channel(service.address) as channel:  # every TableService RPC, no token
        stub = pb_grpc.TableServiceStub(channel)
        for call in (lambda: stub.ListTables(pb.ListTablesRequest()), lambda: stub.GetTable(pb.GetTableRequest(name=TABLE)),
                     lambda: stub.GetDatabaseInfo(pb.GetDatabaseInfoRequest()),
                     lambda: list(stub.Query(pb.QueryRequest(table=TABLE)))):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert from_rpc_error(info.value, "perturbation", service.address).reason == "UNAUTHENTICATED"
            refused += 1
    # Health and reflection stay open by default (probes, grpcurl discovery) ...
    assert health_status(service.address) == "SERVING"
    listed = subprocess.run([str(BIN / "grpcurl"), "-plaintext", service.address, "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "cytoatlas.table.v1.TableService" in listed.stdout
    # ... and closed with --auth-exempt "".
    with pytest.raises(grpc.RpcError) as info:
        health_status(closed.address)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    listed = subprocess.run([str(BIN / "grpcurl"), "-plaintext", closed.address, "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode != 0 and "Unauthenticated" in listed.stderr
    with Router({"perturbation": closed.address}, timeout=10, token="s3cret") as router:
        assert router.health("perturbation") == "SERVING" and _query(router) == 3
    print(f"\nFIGURE bearer token: {accepted + 1} accepted with the token, {refused + 2} refused "
          f"UNAUTHENTICATED (none, wrong, 4 RPCs bare, health and reflection when not exempt); health and "
          f"reflection open when exempt")


def test_bad_tls_settings_stop_the_start_with_a_clear_message(built, tmp_path):
    out = subprocess.run([str(BIN / "cytoatlas"), "serve", "perturbation", "--db", str(built["perturbation"]),
                          "--port", "0", "--tls-cert", str(tmp_path / "nope.pem")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "needs both --tls-cert and --tls-key" in out.stderr


@pytest.mark.parametrize("setup", ["mutual TLS + token", "TLS + token", "token"])
def test_the_container_health_check_reaches_a_tls_and_token_service(built, pki, start_service, setup):
    """The image's HEALTHCHECK runs with the service's own environment: it must pass TLS, mutual
    TLS and a token that does not exempt health, as a probe of that container would."""
    cert, key = pki["server"]
    env = {"CYTOATLAS_AUTH_TOKEN": "s3cret", "CYTOATLAS_AUTH_EXEMPT": ""}
    if "TLS" in setup:
        env |= {"CYTOATLAS_TLS_CERT": cert, "CYTOATLAS_TLS_KEY": key}
    if setup == "mutual TLS + token":
        env["CYTOATLAS_TLS_CLIENT_CA"] = pki["ca"]
    if setup == "TLS + token":
        env["CYTOATLAS_CLIENT_TLS_CA"] = pki["ca"]  # the CA that signed the service's certificate
    flags = [f"--{k[len('CYTOATLAS_'):].lower().replace('_', '-')}={v}" for k, v in env.items()
             if not k.startswith("CYTOATLAS_CLIENT_")]
    service = start_service("perturbation", built["perturbation"], *flags)
    port = service.address.rsplit(":", 1)[1]
    check = subprocess.run([sys.executable, "-m", "cytoatlas.serving.healthcheck", port], capture_output=True,
                           text=True, timeout=30, env={**os.environ, **env})
    assert (check.returncode, check.stdout.strip()) == (0, "SERVING"), check.stderr
    without_token = {k: v for k, v in env.items() if k != "CYTOATLAS_AUTH_TOKEN"}
    refused = subprocess.run([sys.executable, "-m", "cytoatlas.serving.healthcheck", port], capture_output=True,
                             text=True, timeout=30, env={**os.environ, **without_token})
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
