"""glibc malloc tuning for a long-running, threaded Python process.

Each poll reads megabytes of XML in worker threads and then frees it. By default glibc gives
threads arenas of their own, keeps freed memory in them, and raises its mmap threshold after each
large free, so later large buffers come from the heap and fragment it: the RSS ratchets up well
beyond what is live. Two arenas, a fixed mmap threshold (large buffers are mapped and unmapped,
never left in the heap) and a trim after each publish keep it near what is live. At 10,000 tunnels
(benchmarks/poll.py) the serving process peaked at 148 MiB without the threshold and at 112–134 MiB
with it. Where glibc is absent (musl, macOS) all of this is a no-op.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, made fixed
ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process
        libc.mallopt, libc.malloc_trim  # noqa: B018 (probe: both exist only with glibc)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune_malloc() -> bool:
    """Apply the settings above; call before threads start (arenas already made are kept)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, ARENAS) and _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> None:
    """Hand memory that Python has freed back to the kernel (a few ms at 10,000 tunnels)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
