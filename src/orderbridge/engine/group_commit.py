"""Group commit: the small transactions of concurrent steps, committed together.

Every step records its intent before its external call and its result after it, each a tiny
transaction; on SQLite (``synchronous=FULL``) each commit waits for the disk, and on PostgreSQL
each statement and each commit is a round trip to the server. Steps that want to write at the
same moment (a burst of answers arriving) hand their writes here: they run one after another
inside ONE transaction (their order events inserted together at its end), and every caller
resumes only after that commit. Nothing is acknowledged
before it is durable, so the exactly-once rules hold as with one transaction each.

Should any write of a group raise, the whole group is rolled back and every write is run again
in a transaction of its own, so one failing write never takes the others down and gets its own
exception. (A savepoint per write would give the same isolation, at two more round trips per
write on PostgreSQL, for a case that almost never happens.) Writes are therefore pure ledger work:
whatever else they do must bear being done twice.

On SQLite the writes run on the event loop (they cost CPU, not waiting) and the commit, the wait
for the disk, in a worker thread; one group at a time, as SQLite has one writer. On PostgreSQL
the whole group runs in a worker thread, and a few groups may be in flight at once: while one
waits on the server the next is already being written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import wait
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from orderbridge.engine.deadlocks import own_transaction
from orderbridge.engine.off_loop import LEDGER_THREADS, off_loop, statements_wait
from orderbridge.engine.timeline import events_together

log = logging.getLogger("orderbridge.engine")

T = TypeVar("T")
Write = Callable[[Connection], Any]
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]

PG_GROUPS_IN_FLIGHT = 5


class GroupCommit:
    def __init__(self, db: Engine) -> None:
        self.db = db
        self.loop = asyncio.get_running_loop()
        self.threaded = statements_wait(db)
        self.limit = PG_GROUPS_IN_FLIGHT if self.threaded else 1
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the groups being committed (kept referenced)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction; return its result once that transaction is committed."""
        fut: asyncio.Future[T] = self.loop.create_future()
        self._pending.append((fn, fut))
        self._schedule()
        return await fut

    def _schedule(self) -> None:
        if self._pending and not self._scheduled and self._in_flight < self.limit:
            self._scheduled = True
            self.loop.call_soon(self._start)  # after the callbacks already ready: they may join

    def _start(self) -> None:
        self._scheduled = False
        batch = [(fn, fut) for fn, fut in self._pending if not fut.cancelled()]
        self._pending = []
        if batch:
            self._in_flight += 1
            task = self.loop.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        try:
            try:
                if self.threaded:
                    outcomes = await off_loop(lambda: self._together(batch))
                else:
                    outcomes = await self._on_loop(batch)
            except Exception:
                # A write raised, or the shared commit failed (a deadlock with another process,
                # say): each write on its own.
                log.debug("group commit of %d writes failed; writing them one by one", len(batch), exc_info=True)
                if self.threaded:
                    outcomes = await off_loop(lambda: [self._alone(fn, fut) for fn, fut in batch])
                else:
                    outcomes = [self._alone(fn, fut) for fn, fut in batch]
        finally:
            self._in_flight -= 1
            self._schedule()
        for fut, value, error in outcomes:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

    def _together(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[Outcome]:
        with self.db.begin() as conn, events_together(conn):
            return [(fut, fn(conn), None) for fn, fut in batch]

    async def _on_loop(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[Outcome]:
        with self.db.connect() as conn:
            trans = conn.begin()
            try:
                with events_together(conn):
                    outcomes: list[Outcome] = [(fut, fn(conn), None) for fn, fut in batch]
            except BaseException:
                trans.rollback()
                raise
            committing = LEDGER_THREADS.submit(trans.commit)
            try:
                await asyncio.wrap_future(committing)
            except asyncio.CancelledError:
                wait([committing])  # it goes on in its thread: the connection stays until it is done
                if committing.exception() is not None:
                    trans.rollback()
                raise
            except Exception:
                trans.rollback()  # a failed COMMIT can leave the database's transaction open
                raise
        return outcomes

    def _alone(self, fn: Write, fut: asyncio.Future[Any]) -> Outcome:
        def write(conn: Connection) -> Any:
            with events_together(conn):
                return fn(conn)

        try:
            return fut, own_transaction(self.db, write), None
        except Exception as exc:
            return fut, None, exc


def group_commit(hub: Any) -> GroupCommit:
    """The hub's group committer for the running event loop."""
    current = getattr(hub, "_group_commit", None)
    if current is None or current.loop is not asyncio.get_running_loop() or current.db is not hub.db:
        current = GroupCommit(hub.db)
        hub._group_commit = current
    return current
