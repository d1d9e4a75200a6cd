"""How often a costly re-read runs: every so many seconds, and never more than a bounded share
of the time. Shared by the engine's look-back re-reads and connectors' own (Houzz by status)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Paced:
    """A re-read that is due once ``every`` seconds have passed since the last one ended, and no
    sooner than ``share`` times that one's duration: when it grows costly (a large backlog), the
    work around it keeps at least ``share`` times its time."""

    share: float
    last: tuple[float, float] | None = None  # (monotonic time the last one ended, seconds it took)

    def due(self, every: float = 0.0) -> bool:
        if self.last is None:
            return True
        ended, took = self.last
        return time.monotonic() - ended >= max(every, self.share * took)

    def done(self, began: float) -> None:
        """Record a re-read that started at ``began`` (``time.monotonic()``) and has just ended."""
        ended = time.monotonic()
        self.last = (ended, ended - began)
