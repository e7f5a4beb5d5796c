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
