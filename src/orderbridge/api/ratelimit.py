"""CartRover's rate limit: a leaky bucket per API user (100 calls, one leaks out every 0.6 s).

A small bucket of our own rather than aiolimiter's: the response must carry the remaining count
(``X-CartRover-Api-Minute-Hits-Remaining``) and a refusal must be immediate, never a wait.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class LeakyBuckets:
    size: int = 100
    leak_seconds: float = 0.6
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (level, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _level(self, key: str, now: float) -> float:
        level, at = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - at) / self.leak_seconds)

    def hit(self, key: str) -> tuple[bool, int]:
        """Count one call; (allowed, calls remaining in the bucket)."""
        with self._lock:
            now = time.monotonic()
            level = self._level(key, now)
            if level + 1 > self.size:
                self._levels[key] = (level, now)
                return False, 0
            self._levels[key] = (level + 1, now)
            return True, int(self.size - level - 1)

    def remaining(self, key: str) -> int:
        with self._lock:
            return int(self.size - self._level(key, time.monotonic()))
