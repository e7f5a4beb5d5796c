"""Temp file -> verify -> atomic rename: a published domain file is always a complete build.

A build writes `.<file_name>.<pid>.tmp` (and spills to `.<file_name>.<pid>.spill/`) beside the
published file, so the rename stays on one file system. The finished temp file is reopened
read-only and verified (builders/lifecycle/verify.py `publish_verified`) before `publish` renames
it over the published file. On any failure `discard` removes the temp file, its WAL and the spill
directory; the published file is never touched until the rename.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path



def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def spill_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.spill")


def discard(temp: Path) -> None:
    """Remove a temp build file, its WAL and its spill directory (whichever exist)."""
    for path in (temp, temp.with_name(temp.name + ".wal")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(temp.with_suffix(".spill"), ignore_errors=True)


def remove_stale(target: Path) -> list[Path]:
    """Remove temp files and spill directories left by builds of `target` whose process is gone."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(\d+)\.(tmp|tmp\.wal|spill)$")
    removed = []
    for path in target.parent.glob(f".{target.name}.*"):
        m = pattern.match(path.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(temp: Path, target: Path) -> None:
    """fsync the finished temp file, rename it over `target` atomically, fsync the directory."""
    fsync_file(temp)
    os.replace(temp, target)
    fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk; nothing on platforms without
    directory fds."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
