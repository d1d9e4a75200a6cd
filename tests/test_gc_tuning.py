"""The collector settings of long-running processes (checked in a fresh interpreter, not this one)."""

from __future__ import annotations

import json
import subprocess
import sys

from orderbridge.gc_tuning import YOUNG_THRESHOLD

PROBE = """
import gc, json
import orderbridge.web.app  # what a serving process has imported
from orderbridge.gc_tuning import tune_for_long_run
before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
tune_for_long_run()
after = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}
print(json.dumps({"before": before, "after": after}))
"""


def test_tuning_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["before"]["frozen"] == 0
    assert seen["before"]["threshold"][0] < YOUNG_THRESHOLD
    after = seen["after"]
    assert after["threshold"] == [YOUNG_THRESHOLD, *seen["before"]["threshold"][1:]]
    # The modules' objects are out of every collection's walk: far more frozen than still tracked.
    assert after["frozen"] > 50_000
    assert after["tracked"] < after["frozen"] / 10


TRIM_PROBE = """
import json, threading
from orderbridge.gc_tuning import release_freed_memory, tune_for_long_run

def resident_anon_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("RssAnon"))
    except OSError:  # no /proc
        return -1.0

# About 90 MB of chunks from the C allocator (bytes objects over 512 bytes), every 50th kept: freed
# chunks lie between live ones, so the heap cannot shrink from its top.
chunks = [b"x" * 1500 + str(i).encode() for i in range(60_000)]
kept = chunks[::50]
del chunks
before = resident_anon_mb()
released = release_freed_memory()
after = resident_anon_mb()
tune_for_long_run()
threads = [t.name for t in threading.enumerate() if t.daemon]
print(json.dumps({"before": before, "after": after, "released": released, "threads": threads}))
"""


def test_freed_heap_memory_goes_back_to_the_system_and_long_runs_keep_handing_it_back() -> None:
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    if not sys.platform.startswith("linux"):  # no glibc: nothing to hand back, and no thread for it
        assert seen["released"] is False and "orderbridge-malloc-trim" not in seen["threads"]
        return
    assert seen["released"] is True
    assert seen["before"] > 60, seen  # the freed chunks were still resident
    assert seen["after"] < seen["before"] / 2, seen
    assert "orderbridge-malloc-trim" in seen["threads"]
