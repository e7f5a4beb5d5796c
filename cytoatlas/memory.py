"""glibc malloc settings for processes that move large Arrow pages through Python bytes.

Every message of a large result is a ~1.5 MB bytes object (built by the server, copied by gRPC,
received by the client). glibc serves allocations that size with mmap, so each one is mapped,
page-faulted in, zeroed and unmapped again: 27 ms of CPU per 67 MB copied, against 4.7 ms when
the memory is reused from the heap (bench/, 1M rows). Raising the mmap threshold to 64 MiB and
the trim threshold to 256 MiB keeps that memory in the heap for reuse; a process then holds at
most ~256 MiB of freed heap. The server sets it at start; a Router only when asked
(`Router(keep_large_buffers=True)`, as the `cytoatlas` CLI and the benchmark do), since it applies
to the whole host process. Left alone when MALLOC_MMAP_THRESHOLD_ is set (the operator decided) or
when the C library is not glibc (no such setting).
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20


def keep_large_buffers() -> bool:
    """Tune this process's malloc as above; True if it was done."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
