"""`make demo` (scripts/demo.py) as a user meets it: a taken port is reported at once, before any
building; a service that exits at start is reported at once, not after a long wait; killing one
service leaves the other two serving, Enter starts it again; Ctrl-C stops all three cleanly."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import TEST_SCALE, health_status

ROOT_DIR = pathlib.Path(__file__).resolve().parents[1]
DEMO = [sys.executable, str(ROOT_DIR / "scripts" / "demo.py"), "--scale", str(TEST_SCALE)]


class Demo:
    """scripts/demo.py running, its output collected line by line."""

    def __init__(self, demo_dir, *args: str, env: dict | None = None):
        self.process = subprocess.Popen([*DEMO, "--dir", str(demo_dir), *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env={**os.environ, **(env or {})}, cwd=ROOT_DIR)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=lambda s=stream, l=lines: l.extend(iter(s.readline, "")), daemon=True).start()

    def text(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text())
            if match:
                return match
            assert self.process.poll() is None or re.search(pattern, self.text()), \
                f"demo exited {self.process.returncode} before {pattern!r}:\n{self.text()[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}")

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # the reader threads catch the last lines
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo")  # sources generated once (the demo's stamp), rebuilt per run


def test_a_taken_port_is_reported_at_once_before_anything_is_built(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        demo = Demo(tmp_path, "--ports", f"0,{port},0")
        code = demo.finish(timeout=60)
    assert code != 0 and time.monotonic() - started < 15
    text = demo.text()
    assert f"port {port} for the perturbation service on 127.0.0.1 is taken" in text, text
    assert "make demo PORTS=" in text and "CYTOATLAS_PERTURBATION_ADDR" in text
    assert not (tmp_path / "data").exists()  # nothing was built first


@pytest.mark.reliability  # builds and runs the whole demo: a long run
def test_a_service_that_exits_at_start_is_reported_at_once(demo_dir):
    demo = Demo(demo_dir, "--ports", "auto", env={"CYTOATLAS_REQUEST_LOG": "bogus"})
    try:
        demo.wait_for(r"(?s)(published.*){3}", timeout=180)  # the three files are built
        code = demo.finish(timeout=20)  # the old demo waited 30 s for SERVING before giving up
    finally:
        demo.kill()
    assert code != 0
    assert re.search(r"the (atlas|perturbation|spatial) service exited at start with code 1", demo.text()), demo.text()
    assert "must be json or off" in demo.text()  # the service's own error, shown as it happened


@pytest.mark.reliability  # builds and runs the whole demo: a long run
def test_one_service_dies_the_others_keep_serving_enter_restarts_it_and_ctrl_c_stops_all(demo_dir):
    demo = Demo(demo_dir, "--ports", "auto")
    try:
        found = demo.wait_for(r"Service processes: atlas (\d+), perturbation (\d+), spatial (\d+)")
        pids = dict(zip(("atlas", "perturbation", "spatial"), map(int, found.groups())))
        up = demo.wait_for(r"The stack is up: atlas (\S+), perturbation (\S+), spatial (\S+)\.")
        addresses = dict(zip(("atlas", "perturbation", "spatial"), up.groups()))
        assert all(health_status(a) == "SERVING" for a in addresses.values())

        os.kill(pids["perturbation"], signal.SIGKILL)
        demo.wait_for(rf"the perturbation service \(pid {pids['perturbation']}\) was killed by signal 9 "
                      r"\(SIGKILL\); atlas and spatial keep serving\. Press Enter to start it again", timeout=30)
        time.sleep(1)
        assert demo.process.poll() is None
        assert health_status(addresses["atlas"]) == health_status(addresses["spatial"]) == "SERVING"

        demo.process.stdin.write("\n")
        demo.process.stdin.flush()
        demo.wait_for(r"demo: perturbation serving again", timeout=60)
        assert health_status(addresses["perturbation"]) == "SERVING"

        demo.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.finish(timeout=60) == 0
    finally:
        demo.kill()
    assert "stopped the three services" in demo.text()
    assert "Traceback" not in demo.text()
    for address in addresses.values():
        with pytest.raises(Exception):
            health_status(address, timeout=1)
