"""Failed logins, counted per user name and per client address, lock further attempts for a while.

Kept in the process's memory, not in the ledger: a flood of wrong passwords then costs no database
write and cannot fill a table, and the count lives where passwords are checked. The price: a restart
forgets the counts, and each process of a deployment counts on its own (``orderbridge serve`` is one).

A user name is locked after ``max_failures`` failures within ``window`` seconds, an address after
``ADDRESS_FACTOR`` times as many (one office behind one address holds several users). While locked,
a login is refused without checking the password, and the refusal is not counted, so the lock ends
``window`` seconds after the failures that caused it however often someone keeps trying.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES_ENV = "ORDERBRIDGE_LOGIN_MAX_FAILURES"
WINDOW_ENV = "ORDERBRIDGE_LOGIN_LOCK_SECONDS"
DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW = 900.0
ADDRESS_FACTOR = 4
MAX_TRACKED = 10_000  # names and addresses remembered at once; the stalest are forgotten first


@dataclass(frozen=True)
class Lock:
    what: str  # "user" or "address"
    seconds: float  # until the next attempt is allowed

    @property
    def message(self) -> str:
        minutes = max(1, round(self.seconds / 60))
        who = "for this user name" if self.what == "user" else "from your network address"
        wait = f"{minutes} minute{'s' if minutes > 1 else ''}" if self.seconds >= 60 else f"{self.seconds:.0f} seconds"
        return f"Too many failed logins {who}. Try again in {wait}."


@dataclass
class LoginThrottle:
    max_failures: int = DEFAULT_MAX_FAILURES
    window: float = DEFAULT_WINDOW
    clock: Callable[[], float] = time.monotonic
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> LoginThrottle:
        return cls(max_failures=int(os.environ.get(MAX_FAILURES_ENV) or DEFAULT_MAX_FAILURES),
                   window=float(os.environ.get(WINDOW_ENV) or DEFAULT_WINDOW))

    def _keys(self, username: str, address: str) -> list[tuple[tuple[str, str], int]]:
        return [(("user", username.strip().lower()), self.max_failures),
                (("address", address), self.max_failures * ADDRESS_FACTOR)]

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def locked(self, username: str, address: str) -> Lock | None:
        """The lock in force for this attempt, if any (the longer one when both are locked)."""
        with self._lock:
            now = self.clock()
            locks = []
            for key, limit in self._keys(username, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    locks.append(Lock(key[0], times[-limit] + self.window - now))
            return max(locks, key=lambda lock: lock.seconds) if locks else None

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            for key, limit in self._keys(username, address):
                times = self._recent(key, now)
                times.append(now)
                while len(times) > limit:  # older failures no longer decide anything
                    times.popleft()
                self._failures[key] = times
            if len(self._failures) > MAX_TRACKED:
                self._forget_stalest(now)

    def succeeded(self, username: str) -> None:
        """A right password clears the name's failures (not the address's: one good account must not
        reset the count of an address trying many names)."""
        with self._lock:
            self._failures.pop(("user", username.strip().lower()), None)

    def _forget_stalest(self, now: float) -> None:
        live = {k: v for k, v in self._failures.items() if self._recent(k, now)}
        if len(live) > MAX_TRACKED:
            keep = sorted(live, key=lambda k: live[k][-1])[-MAX_TRACKED // 2:]
            live = {k: live[k] for k in keep}
        self._failures = live
