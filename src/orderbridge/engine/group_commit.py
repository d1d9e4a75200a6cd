"""Group commit: the small transactions of concurrent steps, committed together.

Every step records its intent before its external call and its result after it, each a tiny
transaction; on SQLite (``synchronous=FULL``) each commit waits for the disk, and the hub's event
loop waits with it. Steps that want to write at the same moment (a burst of answers arriving)
hand their writes here: they run one after another, each in its own savepoint, inside ONE
transaction, and every caller resumes only after that commit. Nothing is acknowledged before it
is durable, so the exactly-once rules hold as with one transaction each.

The commit itself (the wait for the disk) runs in a worker thread: the event loop goes on with
API calls meanwhile, and the writes that arrive in the meantime form the next group, flushed as
soon as this commit is done (one group at a time, so groups never wait on each other's locks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("orderbridge.engine")
COMMITS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="orderbridge-commit")

T = TypeVar("T")
Write = Callable[[Connection], Any]
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


class GroupCommit:
    def __init__(self, db: Engine) -> None:
        self.db = db
        self.loop = asyncio.get_running_loop()
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._committing = False
        self._task: asyncio.Task[None] | None = None  # the group being committed (kept referenced)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction; return its result once that transaction is committed."""
        fut: asyncio.Future[T] = self.loop.create_future()
        self._pending.append((fn, fut))
        if not self._scheduled and not self._committing:
            self._scheduled = True
            self.loop.call_soon(self._start)  # after the callbacks already ready: they may join
        return await fut

    def _start(self) -> None:
        self._scheduled = False
        batch = [(fn, fut) for fn, fut in self._pending if not fut.cancelled()]
        self._pending = []
        if batch:
            self._committing = True
            self._task = self.loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        try:
            if self.db.dialect.name == "postgresql":
                outcomes = await self._in_thread(batch)
            else:
                outcomes = await self._together(batch)
        except Exception:
            # The shared commit failed (a deadlock with another process, say): each on its own.
            log.debug("group commit of %d writes failed; writing them one by one", len(batch), exc_info=True)
            outcomes = [self._alone(fn, fut) for fn, fut in batch]
        finally:
            self._committing = False
            if self._pending and not self._scheduled:
                self._scheduled = True
                self.loop.call_soon(self._start)
        for fut, value, error in outcomes:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

    async def _together(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self.db.connect() as conn:
            trans = conn.begin()
            try:
                for fn, fut in batch:
                    try:
                        with conn.begin_nested():  # one write failing never takes the others down
                            outcomes.append((fut, fn(conn), None))
                    except Exception as exc:
                        outcomes.append((fut, None, exc))
            except BaseException:
                trans.rollback()
                raise
            committing = COMMITS.submit(trans.commit)
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

    async def _in_thread(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[Outcome]:
        # On PostgreSQL each statement is a round trip to the server: the whole group runs in the
        # worker thread, and the event loop goes on with API calls meanwhile. (On SQLite the
        # statements cost CPU rather than waiting, and two threads would only share one core.)
        def together() -> list[Outcome]:
            outcomes: list[Outcome] = []
            with self.db.begin() as conn:
                for fn, fut in batch:
                    try:
                        with conn.begin_nested():
                            outcomes.append((fut, fn(conn), None))
                    except Exception as exc:
                        outcomes.append((fut, None, exc))
            return outcomes

        running = COMMITS.submit(together)
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            wait([running])  # it goes on in its thread; nothing is acknowledged before it ends
            raise

    def _alone(self, fn: Write, fut: asyncio.Future[Any]) -> Outcome:
        try:
            with self.db.begin() as conn:
                return fut, fn(conn), None
        except Exception as exc:
            return fut, None, exc


def group_commit(hub: Any) -> GroupCommit:
    """The hub's group committer for the running event loop."""
    current = getattr(hub, "_group_commit", None)
    if current is None or current.loop is not asyncio.get_running_loop() or current.db is not hub.db:
        current = GroupCommit(hub.db)
        hub._group_commit = current
    return current
