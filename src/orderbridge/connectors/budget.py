"""A call budget shared by every worker process of a cluster, kept in PostgreSQL.

GCRA (the generic cell rate algorithm) with one row per external account in ``rate_buckets``:
the row holds the theoretical arrival time (TAT) of the account's next call. Each call reserves
its slot with one atomic upsert (``tat = max(tat, now) + interval``) and sleeps until the slot
begins, so the calls of all workers together are spaced ``interval`` apart, in any window, on the
database's one clock. No retry loop: a reservation never fails, it only tells how long to wait.
"""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderbridge.connectors.http import RateSpec

_RESERVE = sa.text(
    """
    INSERT INTO rate_buckets (key, tat) VALUES (:key, EXTRACT(EPOCH FROM clock_timestamp()) + :step)
    ON CONFLICT (key) DO UPDATE
        SET tat = GREATEST(rate_buckets.tat, EXTRACT(EPOCH FROM clock_timestamp())) + :step
    RETURNING tat - :step - EXTRACT(EPOCH FROM clock_timestamp()) AS wait
    """
)


JITTER = 0.25  # seconds a call may take from its slot to the API's counter


class PgBudget:
    """Same interface as LocalBudget; the interval between two calls of an account is shared cluster-wide.

    A call reaches the API a little after its slot: the worker's event loop may wake it late (busy
    elsewhere), then come the connection and the network. ``jitter`` is how late it may be, in
    seconds, and the pace is set so that any window of the API's period still holds no more than
    its limit when every call arrives anywhere up to ``jitter`` after its slot: slots in a span of
    ``period + jitter`` number at most ``calls``. A time, not a share of the rate: 0.25 s costs a
    per-second limit a fifth of its pace, a per-minute one under half a percent.
    """

    def __init__(self, engine: Engine, jitter: float = JITTER) -> None:
        self.engine = engine
        self.jitter = jitter

    def interval(self, spec: RateSpec) -> float:
        return (spec.period + self.jitter) / spec.calls

    def reserve(self, key: str, spec: RateSpec) -> float:
        """Reserve the account's next slot; return the seconds to wait for it."""
        # One statement, atomic on its own: autocommit spares the BEGIN and COMMIT round trips.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            wait = conn.execute(_RESERVE, {"key": key[:300], "step": self.interval(spec)}).scalar_one()
        return max(0.0, float(wait))

    async def acquire(self, key: str, spec: RateSpec) -> None:
        wait = self.reserve(key, spec)
        # Woken later than half the jitter (an event loop busy elsewhere), a call would leave
        # together with every other whose slot fell in that stall, more than the API allows in a
        # window: it takes a fresh slot instead, and the missed one goes unused. The other half is
        # left for the way from here to the API, which also bunches calls that were spaced.
        while wait > 0:
            due = time.monotonic() + wait
            await asyncio.sleep(wait)
            if time.monotonic() - due <= self.jitter / 2:
                return
            wait = self.reserve(key, spec)
