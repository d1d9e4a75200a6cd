"""The machine's and the bench's own CPU over a run (benchmarks/metrics.py), read from /proc."""

from __future__ import annotations

import os
import time

from benchmarks.metrics import MachineCpu, own_cpu_seconds


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_busy_core_shows_in_the_machine_share_and_in_the_bench_cpu() -> None:
    machine, before = MachineCpu().start(), own_cpu_seconds()
    _spin(0.5)
    share, used = machine.share(), own_cpu_seconds() - before
    assert used > 0.25  # this process kept a core busy for most of the half second
    cores = os.cpu_count() or 1
    assert share is not None and 0.25 / cores < share <= 1


def test_no_share_without_a_start() -> None:
    machine = MachineCpu()
    assert machine.share() is None
