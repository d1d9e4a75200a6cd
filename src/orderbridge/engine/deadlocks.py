"""A ledger transaction chosen as a deadlock's victim, run again.

On PostgreSQL two transactions that lock the same orders in opposite orders (a page of shipments
recorded while a group commit records steps of some of the same orders) can each wait for the
other; the server then aborts one of them. Nothing of the aborted one remains, so running it again
is what the server expects of its client; the job that asked for it never sees the deadlock.
The work given here must therefore be ledger work that bears being run again from the start (a
transaction of its own, no side effect beyond it). SQLite, whose writers queue for one lock,
never deadlocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random

log = logging.getLogger("orderbridge.engine")

T = TypeVar("T")

ATTEMPTS = 4
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for deadlock_detected


def is_deadlock(exc: BaseException) -> bool:
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else None
    return getattr(orig, "sqlstate", None) == DEADLOCK


def _note(state: object) -> None:
    log.info("ledger transaction was a deadlock's victim; running it again (attempt %d)",
             getattr(state, "attempt_number", 0) + 1)


def retried_on_deadlock(fn: Callable[[], T]) -> T:
    """``fn()``, run again (after a short random pause, so the two do not meet again) when the
    server aborted it to break a deadlock; any other error, or a fourth deadlock, is raised."""
    retrying = Retrying(retry=retry_if_exception(is_deadlock), stop=stop_after_attempt(ATTEMPTS),
                        wait=wait_random(0.01, 0.1), before_sleep=_note, reraise=True)
    return retrying(fn)


def own_transaction(db: Engine, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` in a transaction of its own, committed before this returns, and run again in a
    new one should the server abort it to break a deadlock."""

    def run() -> T:
        with db.begin() as conn:
            return fn(conn)

    return retried_on_deadlock(run)
