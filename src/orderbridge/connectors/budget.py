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


class PgBudget:
    """Same interface as LocalBudget; the interval between two calls of an account is shared cluster-wide.

    ``headroom`` keeps the pace a little under the documented rate, so that network jitter
    between our start of a call and its arrival at the API cannot push a window over the limit.
    """

    def __init__(self, engine: Engine, headroom: float = 0.9) -> None:
        self.engine = engine
        self.headroom = headroom

    def interval(self, spec: RateSpec) -> float:
        return spec.period / (spec.calls * self.headroom)

    def reserve(self, key: str, spec: RateSpec) -> float:
        """Reserve the account's next slot; return the seconds to wait for it."""
        # One statement, atomic on its own: autocommit spares the BEGIN and COMMIT round trips.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            wait = conn.execute(_RESERVE, {"key": key[:300], "step": self.interval(spec)}).scalar_one()
        return max(0.0, float(wait))

    async def acquire(self, key: str, spec: RateSpec) -> None:
        wait = self.reserve(key, spec)
        # Woken later than the headroom absorbs (an event loop busy elsewhere), a call would leave
        # together with every other whose slot fell in that stall, more than the API allows in a
        # window: it takes a fresh slot instead, and the missed one goes unused. Half the headroom
        # is spent here; the other half is left for the way from here to the API (the loop's other
        # callbacks, the connection, the network), which also bunches calls that were spaced.
        tolerance = spec.calls * (1 - self.headroom) * self.interval(spec) / 2
        while wait > 0:
            due = time.monotonic() + wait
            await asyncio.sleep(wait)
            if time.monotonic() - due <= tolerance:
                return
            wait = self.reserve(key, spec)
