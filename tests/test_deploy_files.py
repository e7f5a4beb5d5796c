"""The deploy files without a Docker engine (make test-deploy runs them for real): the image
build's pip probe fails fast and says what to do, the compose project has a name of its own, one
domain's demo sources can be regenerated alone, and deploy/README.md says what a first build
needs (base image, CA bundle, the host's client, one-domain rebuilds)."""

import os
import pathlib
import re
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def probe_with_pip_saying(tmp_path, output: str, code: int) -> subprocess.CompletedProcess:
    """deploy/pip-probe.sh with a stand-in `pip` that prints `output` and exits `code`."""
    fake = tmp_path / "bin"
    fake.mkdir(parents=True)
    (fake / "pip").write_text(f"#!/bin/sh\ncat <<'OUT' >&2\n{output}\nOUT\nexit {code}\n")
    (fake / "pip").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    return subprocess.run(["sh", str(DEPLOY / "pip-probe.sh")], capture_output=True, text=True, env=env, timeout=30)


def test_the_build_probe_names_the_ca_bundle_when_pip_does_not_trust_the_index(tmp_path):
    started = time.monotonic()
    out = probe_with_pip_saying(tmp_path, "WARNING: Retrying ... SSLError(SSLCertVerificationError(1, "
                                          "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                          "self-signed certificate in certificate chain'))", 1)
    assert out.returncode == 1 and time.monotonic() - started < 10
    assert "CYTOATLAS_CA_BUNDLE=deploy/ca/" in out.stderr and "--build-arg CA_BUNDLE" in out.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in out.stderr  # pip's own last lines stay visible


def test_the_build_probe_says_when_the_index_cannot_be_reached(tmp_path):
    out = probe_with_pip_saying(tmp_path, "ERROR: Could not find a version that satisfies the requirement pip "
                                          "(from versions: none)", 1)
    assert out.returncode == 1 and "cannot reach the package index" in out.stderr
    assert probe_with_pip_saying(tmp_path / "ok", "Saved pip.whl", 0).returncode == 0


def test_the_probe_lets_pip_say_why():
    """pip's SSL complaint is a warning: `pip -q` would hide the very line the probe reads."""
    probe = (DEPLOY / "pip-probe.sh").read_text()
    download = next(line for line in probe.splitlines() if "pip download" in line)
    assert " -q " not in download and "--retries 0" in download


def test_the_image_runs_the_probe_before_the_dependency_install():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.index("cytoatlas-pip-probe") < dockerfile.index("pip install --no-cache-dir -r")
    assert "!deploy/pip-probe.sh" in (ROOT / ".dockerignore").read_text()


def test_the_compose_project_is_named_cytoatlas_whatever_the_folder():
    assert re.search(r"^COMPOSE_PROJECT_NAME=cytoatlas$", (DEPLOY / ".env").read_text(), re.M)
    compose_python = pathlib.Path("/usr/bin/python3")
    check = subprocess.run([str(compose_python), "-c", "from compose.cli.command import get_project_name; "
                            "print(get_project_name('deploy'))"], cwd=ROOT, capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip("docker-compose (Debian's v1) is not installed; make test-deploy installs it")
    assert check.stdout.strip() == "cytoatlas"


def test_demo_sources_can_be_regenerated_for_one_domain():
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert '"--domains", "${CYTOATLAS_DEMO_DOMAINS:-atlas,perturbation,spatial}"' in compose


def test_the_compose_section_says_what_a_first_build_and_a_rebuild_need():
    readme = (DEPLOY / "README.md").read_text()
    compose = readme[readme.index("### docker-compose"):readme.index("### `make test-deploy`")]
    for needed in ("CYTOATLAS_BASE_IMAGE=cytoatlas-base:bookworm", "deploy/engine.sh", "CYTOATLAS_CA_BUNDLE=",
                   "make setup", "../.venv/bin/cytoatlas status", "run --rm --no-deps build-perturbation",
                   "CYTOATLAS_DEMO_DOMAINS=perturbation", "COMPOSE_PROJECT_NAME"):
        assert needed in compose, needed
