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

__all__ = ["MMAP_THRESHOLD", "return_large_buffers"]

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
