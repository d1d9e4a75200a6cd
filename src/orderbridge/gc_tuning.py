"""Garbage-collector and allocator settings for orderbridge's long-running processes.

A hub process allocates many short-lived containers for every API call and ledger write (requests,
parsed JSON, rows), and holds a large heap that lives as long as the process (modules, compiled SQL,
validators, the web app); an API emulator (sandbox) also holds every order it was given. With
CPython's default thresholds the young generation is collected every 700 allocations, and every
tenth of those collections moves towards a full one, which walks the whole heap. Measured in
``orderbridge bench`` (3,000 orders, ``gc.callbacks`` timing every collection): 2.0 s of the hub's
14.5 CPU s in collections, 3.4 s in the Houzz sandbox's; with the settings below 0.1 s and 0.8 s.

The C allocator (glibc's malloc, which holds SQLite's page cache and every Python object larger
than 512 bytes: parsed pages, JSON text, rows) gives memory back to the system only from the top
of its heap. Freed chunks in the middle stay resident, so a process's resident size ratchets up
to its busiest moments and stays there. Long-running processes hand those free pages back every
``TRIM_SECONDS`` (``malloc_trim``; a few milliseconds for a heap of tens of MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
import threading
import time
from collections.abc import Callable

# Young-generation threshold: container allocations (net of frees) between two collections. Objects
# freed by reference counting never wait for it; only cyclic garbage does, a few MB at most here.
YOUNG_THRESHOLD = 20_000


# Seconds between two hand-backs of the C allocator's free pages.
TRIM_SECONDS = 10.0

_trimming: threading.Thread | None = None


def tune_for_long_run() -> None:
    """Call once a long-running process has built what it keeps (imports, app, hub), before it serves."""
    gc.collect()
    gc.freeze()  # what exists now lives as long as the process: no collection need walk it again
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    release_freed_memory()
    _trim_in_background()


def release_freed_memory() -> bool:
    """Hand the C allocator's free pages back to the system now; False where the C library cannot
    (not glibc: macOS, musl), where its allocator keeps less to begin with."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim()
    return True


def _trim_in_background() -> None:
    global _trimming
    if _trimming is not None or _malloc_trim() is None:
        return

    def every_while() -> None:
        while True:
            time.sleep(TRIM_SECONDS)
            release_freed_memory()

    # A thread of its own: it costs nothing between hand-backs and needs no event loop (workers,
    # the scheduler and the sandboxes have different ones). Daemon: it never holds up an exit.
    _trimming = threading.Thread(target=every_while, name="orderbridge-malloc-trim", daemon=True)
    _trimming.start()


@functools.cache
def _malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, looked up once; None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))
