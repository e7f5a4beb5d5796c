"""Run the commands the docs show, exactly as written, against a live `make demo` stack.

Markdown convention (README.md, docs/*.md, deploy/README.md):
  - every fenced block of language `sh`, `python` or `js` is run, in page order, from a working
    directory laid out like the repository root (`.venv` and `protos/` of this checkout);
  - `<!-- file: PATH -->` on the line before a block: the block is a file the reader saves as
    PATH (the next `sh` block runs it);
  - `<!-- not-runnable: REASON -->` on the line before a block: skipped, for that reason (servers
    that run until stopped, Docker, the build and test targets themselves);
  - `<!-- needs: TOOL... -->` on the line before a block: skipped when a tool is missing, but only
    outside CI (CI unset); in CI the block runs and fails without it.
A `sh` block runs in a fresh `bash -e -o pipefail`, with a PATH that does not hold `.venv/bin`
(a reader's shell has not activated it); a `python` block is saved and run with `.venv/bin/python`.

The `make demo` printout's commands are run one by one; one whose trailing comment starts with
a gRPC status name (`# NOT_FOUND: ...`) must fail with that status.

`python tests/doc_commands.py OUT.json PAGE...` starts scripts/demo.py (default ports, the
smallest demo scale), runs everything, stops the demo and writes the results; the test
(tests/test_doc_commands.py) runs it in a network namespace of its own, so the default ports
are free whatever else runs on the machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LANGUAGES = ("sh", "python", "js", "go")
MARKER = re.compile(r"<!--\s*(not-runnable|file|needs):\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
STATUS_COMMENT = re.compile(r"\s#\s*([A-Z][A-Z_]+):")
COMMAND_TIMEOUT = 300
NPM_CACHE = ROOT / ".venv" / "npm-cache"
NPM_INSTALL = re.compile(r"npm install\b[^\n&|;]*")


@dataclasses.dataclass
class Block:
    page: str
    line: int
    language: str
    text: str
    skip: str = ""  # the reason, for a block marked not-runnable
    file: str = ""  # where the reader saves it, for a block marked file
    needs: tuple = ()  # tools it runs

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: pathlib.Path) -> list[Block]:
    """The fenced blocks of `page` in the runnable languages, with their markers."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        language = match.group(1)
        if language in LANGUAGES:
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.search(before)
            block = Block(str(page.relative_to(ROOT)), i + 1, language, "\n".join(lines[i + 1:end]) + "\n")
            if marker and marker.group(1) == "not-runnable":
                block.skip = marker.group(2)
            elif marker and marker.group(1) == "needs":
                block.needs = tuple(marker.group(2).split())
            elif marker:
                block.file = marker.group(2)
            found.append(block)
        i = end + 1
    return found


def commands(script: str) -> list[str]:
    """Split shell text into commands: a command goes on past a trailing backslash or an open quote."""
    result, current = [], []
    for line in script.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current.append(line)
        text = "\n".join(current)
        if text.endswith("\\") or _open_quote(text):
            continue
        result.append(text)
        current = []
    if current:
        result.append("\n".join(current))
    return result


def _open_quote(text: str) -> bool:
    """Whether `text` ends inside a quoted string (comments skipped)."""
    quote, i = None, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                quote = None
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n"):
            newline = text.find("\n", i)
            if newline < 0:
                break
            i = newline
        elif char in "'\"":
            quote = char
        i += 1
    return quote is not None


def demo_commands(printout: str) -> list[str]:
    """The commands of the `make demo` printout (its indented lines)."""
    indented = "\n".join(line[2:] if line.startswith("  ") else "" for line in printout.splitlines())
    return commands(indented)


def fill_npm_cache(pages: list[str]) -> None:
    """Run each `npm install ...` the pages show, in a scratch folder, so that the npm cache holds
    those packages (the test set-up does this outside the network namespace)."""
    for page in pages:
        for block in blocks(ROOT / page):
            for install in NPM_INSTALL.findall(block.text):
                with tempfile.TemporaryDirectory() as scratch:
                    subprocess.run(["bash", "-c", install], cwd=scratch, check=True, capture_output=True, timeout=600,
                                   env={**os.environ, "npm_config_cache": str(NPM_CACHE)})


def reader_env(work: pathlib.Path) -> dict[str, str]:
    """A reader's shell: no activated virtualenv, no CYTOATLAS_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CYTOATLAS_", "VIRTUAL_ENV", "PYTEST", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if pathlib.Path(p).resolve() != (ROOT / ".venv" / "bin").resolve()
                                  and not p.endswith("/.venv/bin"))
    # npm installs come from a cache kept with the virtualenv, filled by fill_npm_cache() before
    # the run (the network namespace has no way out): offline, and fast
    env["npm_config_cache"] = str(NPM_CACHE)
    env["npm_config_offline"] = "true"
    env.update({"npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false"})
    return env


def run(argv: list[str], work: pathlib.Path, env: dict) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -1, str(exc.stdout or ""), f"timed out after {COMMAND_TIMEOUT} s"
    return {"code": code, "stdout": out[-3000:], "stderr": err[-3000:], "seconds": round(time.monotonic() - started, 1)}


def run_block(block: Block, work: pathlib.Path, env: dict) -> dict:
    if block.skip:
        return {"where": block.where, "skipped": block.skip}
    missing = [tool for tool in block.needs if not shutil.which(tool, path=env["PATH"])]
    if missing and not os.environ.get("CI"):
        return {"where": block.where, "skipped": f"{' '.join(missing)} not installed (CI installs it: .ci/run)",
                "missing": missing}
    if block.file:
        path = work / block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text)
        return {"where": block.where, "file": block.file, "code": 0}
    if block.language == "sh":
        result = run(["bash", "-e", "-o", "pipefail", "-c", block.text], work, env)
    elif block.language == "python":
        script = work / f"block_{block.page.replace('/', '_')}_{block.line}.py"
        script.write_text(block.text)
        result = run([str(work / ".venv" / "bin" / "python"), script.name], work, env)
    else:
        result = {"code": 1, "stderr": f"a {block.language} block needs <!-- file: PATH --> or "
                                        "<!-- not-runnable: REASON --> before it"}
    return {"where": block.where, "command": block.text, **result}


def run_demo_command(command: str, work: pathlib.Path, env: dict) -> dict:
    result = {"where": "make demo printout", "command": command,
              **run(["bash", "-o", "pipefail", "-c", command], work, env)}
    expected = STATUS_COMMENT.search(command.rsplit("\n", 1)[-1])
    if expected:  # the printout says this one fails, and with which status (grpcurl: NotFound)
        status = expected.group(1)
        camel = "".join(part.capitalize() for part in status.split("_"))
        output = result["stdout"] + result["stderr"]
        failed_as_said = result["code"] != 0 and (status in output or f"Code: {camel}" in output)
        result["expected_failure"] = status
        result["code"] = 0 if failed_as_said else 1
    return result


def _stop_with_parent() -> None:
    """In the demo's process: SIGINT (its Ctrl-C) when this runner dies, however it dies."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


def start_demo(work: pathlib.Path, scale: str) -> tuple[subprocess.Popen, str]:
    """scripts/demo.py on the default ports, as `make demo` runs it; (process, its printout)."""
    log = open(work / "demo.log", "w+")
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "scripts" / "demo.py"),
                                "--dir", str(work / "demo"), "--scale", scale], preexec_fn=_stop_with_parent,
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = (work / "demo.log").read_text()
        if "Ctrl-C stops the three services" in text:
            return process, text[text.index("The stack is up"):]
        if process.poll() is not None:
            raise RuntimeError(f"make demo exited {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"make demo did not come up:\n{(work / 'demo.log').read_text()[-3000:]}")


def loopback_up() -> None:
    """Bring `lo` up: a new network namespace starts with it down (no 127.0.0.1 to listen on)."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def main(out: str, pages: list[str], scale: str = "0.02") -> int:
    loopback_up()
    work = pathlib.Path(tempfile.mkdtemp(prefix="doc-commands-"))
    for name in (".venv", "protos"):
        (work / name).symlink_to(ROOT / name)
    env = reader_env(work)
    results = []
    process, printout = start_demo(work, scale)
    try:
        for command in demo_commands(printout):
            results.append(run_demo_command(command, work, env))
        for page in pages:
            for block in blocks(ROOT / page):
                results.append(run_block(block, work, env))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)
    pathlib.Path(out).write_text(json.dumps({"printout": printout, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--fill-npm-cache":
        fill_npm_cache(sys.argv[2:])
        sys.exit(0)
    sys.exit(main(sys.argv[1], sys.argv[2:], os.environ.get("DOC_COMMANDS_SCALE", "0.02")))
