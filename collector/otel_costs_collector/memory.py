"""Large buffers go back to the operating system when they are freed.

glibc serves allocations from ``mmap`` above a threshold that it *raises* each time such a
block is freed (up to 32 MiB on 64-bit), after which request bodies and batch files of a
few MiB come from the heap, and a heap with many threads' arenas rarely shrinks: a flood
of 8 MiB requests left the collector at several times its request-bytes limit
(bench/request_flood.py). A fixed threshold (``mallopt(M_MMAP_THRESHOLD)``, which also
stops the adjustment) keeps resident memory to what is in use. No-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

__all__ = ["GC_THRESHOLDS", "MMAP_THRESHOLD", "quiet_gc", "return_large_buffers"]

#: Allocations of at least this many bytes get their own mapping.
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold for this process; returns whether it was set."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


#: The cyclic garbage collector's thresholds in a collector's processes (Python's: 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)


def quiet_gc() -> None:
    """Make the cyclic garbage collector run rarely, over the young objects: what a process
    holds once started (modules, the price tables) is frozen out of every collection, and a
    collection starts after GC_THRESHOLDS[0] new objects instead of 700. Every mapped row is a
    list, and a batch holds tens of thousands of them: with the default thresholds the
    collections that walk them cost more than the counting rule that reads them."""
    raw = os.environ.get("OTEL_COSTS_GC_THRESHOLDS")
    thresholds = tuple(int(x) for x in raw.split(",")) if raw else GC_THRESHOLDS
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
