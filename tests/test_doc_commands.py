"""Every command block of README.md, docs/*.md and deploy/README.md, and every command `make demo`
prints, runs exactly as written against a live `make demo` stack (tests/doc_commands.py), so a doc
line cannot rot. Blocks that cannot run here say why (`<!-- not-runnable: REASON -->`); those
are still held to the same spelling rules below.

The stack is scripts/demo.py at the smallest demo scale on its default ports, in a network
namespace of its own (`unshare --net`, as root), so the ports are free whatever else runs here."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import pytest

from tests.doc_commands import ROOT, blocks, commands, demo_commands, fill_npm_cache

PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")), "deploy/README.md"]


def can_unshare() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(
        ["unshare", "--net", "true"], capture_output=True).returncode == 0


def default_ports_free() -> bool:
    for port in (50051, 50052, 50053):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if shutil.which("npm"):  # the network namespace has no way out: npm installs from this cache
        fill_npm_cache(PAGES)
    out = tmp_path_factory.mktemp("doc-commands") / "results.json"
    argv = [sys.executable, str(ROOT / "tests" / "doc_commands.py"), str(out), *PAGES]
    if can_unshare():
        argv = ["unshare", "--net", "--", *argv]
    elif not default_ports_free():
        reason = "ports 50051-50053 are taken and no network namespace can be made here (needs root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0 and out.exists(), done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(out.read_text())


def report(failures: list[dict]) -> str:
    return "\n\n".join(f"{r['where']} exit {r.get('code')}:\n{r.get('command', '')}\n--- stdout\n"
                       f"{r.get('stdout', '')[-600:]}\n--- stderr\n{r.get('stderr', '')[-1500:]}" for r in failures)


@pytest.mark.timeout(1500)
@pytest.mark.reliability  # a live demo stack and every documented command: a long run
def test_every_command_block_and_demo_command_runs_as_written(results):
    ran = [r for r in results["results"] if "skipped" not in r]
    failures = [r for r in ran if r.get("code") != 0]
    assert not failures, report(failures)
    demo = [r for r in ran if r["where"] == "make demo printout"]
    assert len(demo) == 26, results["printout"]  # every command of the printout was found and run
    assert any(r.get("expected_failure") == "NOT_FOUND" for r in demo)
    ran_pages = {r["where"].split(":")[0] for r in ran if r["where"] != "make demo printout"}
    assert {"README.md", "docs/clients.md", "docs/contract.md", "docs/lifecycle.md"} <= ran_pages
    skipped = [r for r in results["results"] if "skipped" in r]
    assert all(r["skipped"].strip() for r in skipped)
    if os.environ.get("CI"):
        assert not any("missing" in r for r in skipped), skipped  # CI installs every tool


@pytest.mark.reliability  # a live demo stack and every documented command: a long run
def test_the_readme_python_example_prints_a_dataframe(results):
    [python] = [r for r in results["results"] if r["where"].startswith("README.md") and "Router" in r.get("command", "")]
    assert "activity_diff" in python["stdout"] and "Ruxolitinib" in python["stdout"]


# -- spelling rules every block keeps, run or not ----------------------------------------------

def all_blocks():
    return [b for page in PAGES for b in blocks(ROOT / page)]


def test_every_block_is_run_or_says_why_not():
    for block in all_blocks():
        if block.language in ("js", "go"):
            assert block.file or block.skip, f"{block.where}: a {block.language} block needs a file or not-runnable marker"
        assert not block.skip or len(block.skip) > 10, f"{block.where}: say why it cannot run"


def test_no_command_uses_usage_brackets_or_assumes_an_activated_virtualenv():
    for block in all_blocks():
        if block.language != "sh":
            continue
        for command in commands(block.text):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", "''", command)  # JSON and quoted values aside
            code = re.sub(r"\s#.*", "", code)
            assert not re.search(r"\[--?\w|\w\|\w+\|", code), f"{block.where}: usage syntax in {command!r}"
            for word in ("cytoatlas", "grpcurl"):
                assert not re.search(rf"(^|[;&|(]\s*|^\s*\w+=\S+\s+){word}\s", code, re.M), \
                    f"{block.where}: {word} is not on PATH in a fresh shell; write .venv/bin/{word}"


def test_the_demo_printout_parser_finds_every_command():
    printout = """
  /x/grpcurl -plaintext 127.0.0.1:50052 list
  /x/grpcurl -plaintext -d '{"a": 1,
      "b": 2}' \\
      127.0.0.1:50052 S/M

  /x/cytoatlas status
"""
    assert demo_commands(printout) == ["/x/grpcurl -plaintext 127.0.0.1:50052 list",
                                       '/x/grpcurl -plaintext -d \'{"a": 1,\n    "b": 2}\' \\\n    127.0.0.1:50052 S/M',
                                       "/x/cytoatlas status"]
