"""`retain_freed_cpu_memory`: freed activations' pages are reused instead of faulted in again (glibc only)."""

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from srdiff_diffusers import runtime as cpu_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
# pages touched by the ten counted allocations (os.sysconf is POSIX only)
PAGES = 10 * 64 * 2**20 // os.sysconf("SC_PAGE_SIZE") if GLIBC else 0

# Allocates, touches and frees a 64 MiB tensor 13 times and counts the page faults of the last ten (glibc may still grow
# its heap once in the first few), in a fresh process so that nothing earlier in the test session has changed malloc's
# settings.
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from srdiff_diffusers.runtime import retain_freed_cpu_memory

    applied = retain_freed_cpu_memory() if sys.argv[1] == "retain" else None

    def allocate():
        torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, above glibc's largest default mmap threshold (32 MiB)

    for _ in range(3):
        allocate()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        allocate()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({"applied": applied, "faults": faults}))
    """
)


def run_child(mode, **env):
    # glibc's own MALLOC_* variables and our opt-out would change the defaults measured here.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != cpu_memory.OPT_OUT_VARIABLE}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env={**clean, **env},
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc settings: Linux with glibc only")
def test_freed_memory_is_reused_without_page_faults():
    default = run_child("default")
    retained = run_child("retain")
    # By default every 64 MiB block is mmap'ed anew: each of its pages faults on first touch. Retained, the blocks
    # are reused (at most one or two heap growths).
    assert default["faults"] > 0.9 * PAGES, default
    assert retained["applied"] is True
    assert retained["faults"] < 0.25 * PAGES, retained


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc settings: Linux with glibc only")
def test_opt_out_keeps_the_defaults():
    opted_out = run_child("retain", **{cpu_memory.OPT_OUT_VARIABLE: "1"})
    assert opted_out["applied"] is False
    assert opted_out["faults"] > 0.9 * PAGES, opted_out


@pytest.mark.skipif(GLIBC, reason="other C libraries only")
def test_other_c_libraries_are_left_alone():
    assert cpu_memory.retain_freed_cpu_memory() is False


@pytest.mark.parametrize("threshold", [0, -1, 2**31, 1.5, "1G", True])  # True is no byte count
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="positive number of bytes"):
        cpu_memory.retain_freed_cpu_memory(threshold)
