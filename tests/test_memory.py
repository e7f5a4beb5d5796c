"""cytoatlas.memory: glibc's mmap threshold raised so large message buffers are reused."""

import subprocess
import sys

CHECK = "from cytoatlas import memory; print(memory.keep_large_buffers())"


def test_tunes_glibc_malloc_unless_the_operator_set_it():
    tuned = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert tuned.stdout.strip() == "True"  # Linux + glibc here
    left = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True,
                          env={"MALLOC_MMAP_THRESHOLD_": "131072", "PATH": "/usr/bin:/bin"})
    assert left.stdout.strip() == "False"


# Whether glibc serves a 48 MiB malloc with mmap: glibc's mmap threshold never exceeds 32 MiB on
# its own, so it does unless M_MMAP_THRESHOLD was raised (keep_large_buffers sets 64 MiB).
MMAP_PROBE = """
import ctypes, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                 "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
from cytoatlas.client import Router
kwargs = {"keep_large_buffers": True} if sys.argv[1:] == ["opt-in"] else {}
router = Router({d: "127.0.0.1:1" for d in ("atlas", "perturbation", "spatial")}, **kwargs)
before = libc.mallinfo2().hblks
block = libc.malloc(48 << 20)
print("mmap" if libc.mallinfo2().hblks > before else "heap")
libc.free(block)
router.close()
"""


def test_a_router_leaves_the_mmap_threshold_alone_unless_asked():
    def probe(*args):
        env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_MMAP_THRESHOLD_ from the caller
        return subprocess.run([sys.executable, "-c", MMAP_PROBE, *args], capture_output=True, text=True,
                              check=True, env=env).stdout.strip()

    assert probe() == "mmap"  # a library in someone else's process: glibc's default stays
    assert probe("opt-in") == "heap"  # Router(keep_large_buffers=True): threshold raised to 64 MiB
