"""glibc malloc settings that keep the training step's large buffers mapped between calls.

A parameter update allocates and frees the same few-MB buffers every time (activations, their
gradients, the sampled minibatch). glibc serves blocks above M_MMAP_THRESHOLD (128 KiB at start,
raised dynamically up to 32 MiB) with mmap and gives them back with munmap on free, and trims the
heap top above M_TRIM_THRESHOLD; either way the next update page-faults the memory in again
(measured: ~3,000 minor faults per Nature-CNN update on CPU, 15-40% of its time). With both
thresholds raised, freed blocks stay in the heap and are reused. The price is memory that stays
mapped after a peak: at most the largest transient working set of a step, a few hundred MB.

This changes no result: only where the allocator places memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 256 * 2**20
TRIM_THRESHOLD_BYTES = 512 * 2**20

_applied = False


def keep_freed_memory_mapped(mmap_threshold_bytes: int = MMAP_THRESHOLD_BYTES,
                             trim_threshold_bytes: int = TRIM_THRESHOLD_BYTES) -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if glibc took them.

    A no-op returning False off glibc (macOS, musl); safe to call more than once. Call it at an
    entry point, before the first large allocation: blocks already mapped keep their fate.
    """
    global _applied
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error (and musl has no such symbol: caught above).
    ok = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_bytes))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold_bytes)))
    _applied = _applied or ok
    return ok


def applied() -> bool:
    """Whether keep_freed_memory_mapped() succeeded in this process."""
    return _applied
