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
