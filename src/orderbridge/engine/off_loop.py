"""Ledger work run in a worker thread, off the event loop (PostgreSQL, where statements wait)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from sqlalchemy.engine import Engine

T = TypeVar("T")


def statements_wait(db: Engine) -> bool:
    """True where the ledger's statements wait on a server (PostgreSQL), so that running them in
    a thread frees the event loop; on SQLite they cost CPU in this process instead."""
    return db.dialect.name == "postgresql"

# Group commits, batches of intake and shipments, job leases: a handful at a time at most.
LEDGER_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="orderbridge-ledger")


async def off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` in a worker thread; the caller resumes with its result once it has returned."""
    running = LEDGER_THREADS.submit(fn)
    try:
        return await asyncio.wrap_future(running)
    except asyncio.CancelledError:
        # It goes on in its thread (a transaction is all or nothing); nothing that depends on it
        # is acknowledged before it ends.
        wait([running])
        raise
