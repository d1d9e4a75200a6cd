"""What a job run works with, and helpers every job shares."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.connectors.errors import AuthError, ConfigError
from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.ledger import schema as t
from orderbridge.pacing import Paced

log = logging.getLogger("orderbridge.engine")

ITEMS_PER_CALL_SLOT = 4

T = TypeVar("T")


class JobAborted(Exception):
    """An auth or config problem makes the rest of this run pointless; the runner alerts."""

    def __init__(self, cause: AuthError | ConfigError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class JobContext:
    hub: Hub
    row: ConnectionRow
    job: str
    started: datetime = field(default_factory=utcnow)
    processed: int = 0
    notes: list[str] = field(default_factory=list)
    abort: AuthError | ConfigError | None = None
    _call_slots: asyncio.Semaphore | None = None

    def tx(self) -> Any:
        return self.hub.db.begin()

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a transaction shared with the other steps writing now; returns once committed."""
        from orderbridge.engine.group_commit import group_commit

        return await group_commit(self.hub).run(fn)

    def count(self, n: int = 1) -> None:
        self.processed += n

    @property
    def call_slots(self) -> asyncio.Semaphore:
        """The run's external calls in flight, at most ``runner.concurrency`` (held by ``attempt``)."""
        if self._call_slots is None:
            self._call_slots = asyncio.Semaphore(self.hub.runner.concurrency)
        return self._call_slots

    async def each(self, items: Iterable[T], fn: Callable[[T], Awaitable[None]], *, widen: bool = False) -> None:
        """Run fn over items with the configured concurrency; an auth/config error stops the rest.

        ``widen``: fn makes its external calls through ``attempt`` (which holds a call slot for
        each), so more items than call slots may be in progress: while some wait for the ledger,
        others' calls keep every slot busy."""
        # As many workers as items may be in progress, each taking the next item when done: a
        # batch of hundreds costs a handful of tasks, not one task per item.
        width = self.hub.runner.concurrency * (ITEMS_PER_CALL_SLOT if widen else 1)
        todo = list(items)
        queue = iter(todo)

        async def worker() -> None:
            for item in queue:  # shared by the workers: each item is taken once
                if self.abort:
                    return
                try:
                    await fn(item)
                except (AuthError, ConfigError) as exc:
                    self.abort = exc

        await asyncio.gather(*(worker() for _ in range(min(width, len(todo)))))
        if self.abort:
            raise JobAborted(self.abort)


def read_cursor(conn: Connection, connection_id: int, job: str) -> datetime | None:
    return conn.execute(
        sa.select(t.cursors.c.value).where(t.cursors.c.connection_id == connection_id, t.cursors.c.job == job)
    ).scalar()


def write_cursor(conn: Connection, connection_id: int, job: str, value: datetime | None) -> None:
    c = t.cursors
    updated = conn.execute(
        c.update().where(c.c.connection_id == connection_id, c.c.job == job).values(value=value, updated_at=utcnow())
    )
    if not updated.rowcount:
        conn.execute(c.insert().values(connection_id=connection_id, job=job, value=value, updated_at=utcnow()))


def window_start(cursor: datetime | None, overlap_seconds: float) -> datetime | None:
    return cursor - timedelta(seconds=overlap_seconds) if cursor else None


# A poll reads from the cursor minus the look-back (runner.overlap_seconds), to catch what a
# source shows late. At volume that window holds thousands of records, read again by every
# poll. So the polls start RECENT_LOOK_BACK_SECONDS before the cursor (clock skew, a record
# committed a moment late), and one reads the whole window once a quarter of it has passed
# since the last that did, or FULL_LOOK_BACK_SHARE times that read's duration if longer: a
# record shown up to three quarters of the look-back late is still read, and re-reading stays
# a bounded share of the work whatever the volume.
RECENT_LOOK_BACK_SECONDS = 10.0
FULL_LOOK_BACK_EVERY = 0.25  # of the look-back
FULL_LOOK_BACK_SHARE = 4.0


class LookBack:
    """Where one poll of a connection's job starts reading; call ``read()`` once it has read."""

    def __init__(self, ctx: JobContext, job: str, cursor: datetime | None) -> None:
        paced: dict[tuple[int, str], Paced] = ctx.hub.memo.setdefault("full_look_back", {})
        self._full_reads = paced.setdefault((ctx.row.id, job), Paced(FULL_LOOK_BACK_SHARE))
        overlap = ctx.hub.runner.overlap_seconds
        self.full = self._full_reads.due(FULL_LOOK_BACK_EVERY * overlap)
        self.since = window_start(cursor, overlap if self.full else min(overlap, RECENT_LOOK_BACK_SECONDS))
        self._began = time.monotonic()

    def read(self) -> None:
        if self.full:
            self._full_reads.done(self._began)
