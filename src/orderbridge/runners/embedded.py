"""The embedded runner: every connection's jobs on their schedules, inside one process.

`run_forever` is what `orderbridge serve` runs beside the web app; `sync_once` runs every job
until a whole pass changes nothing (for cron and scripts).

A job another one has work for is woken (``Hub.wake``: new orders wake the delivery, picked-up
shipments the upload, a changed stock read the inventory push) and runs at the next tick instead
of at its next period; one woken while it runs runs again once it is done. The wake is asked for
inside the transaction that makes the work and is taken here at once, not at its commit: a run it
starts before that commit finds nothing to do, and the work is then done at the job's next period,
as without the wake (and a wake whose transaction rolls back costs one run that finds nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.jobs import RunResult, jobs_for, new_owner, run_job
from orderbridge.ledger import schema as t

log = logging.getLogger("orderbridge.runner")


@dataclass
class EmbeddedRunner:
    hub: Hub
    tick: float = 0.2
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[tuple[int, str], asyncio.Task[RunResult]] = field(default_factory=dict)
    owner: str = field(default_factory=new_owner)
    woken: set[tuple[int, str]] = field(default_factory=set)  # (connection id, job) to run at the next tick

    def stop(self) -> None:
        self.stopping.set()

    def wake(self, conn: Connection, connection_id: int, job: str) -> None:
        """The hub's waker while this runner runs (see the module's docstring)."""
        self.woken.add((connection_id, job))

    async def run_forever(self) -> None:
        log.info("embedded runner started")
        if self.hub.waker is None:
            self.hub.waker = self.wake
        try:
            while not self.stopping.is_set():
                await self._launch_due()
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.tick)
                except TimeoutError:
                    pass
        finally:
            # Graceful shutdown: let the runs in progress finish their current step.
            if self.running:
                log.info("waiting for %d job run(s) to finish", len(self.running))
                await asyncio.gather(*self.running.values(), return_exceptions=True)
            if self.hub.waker == self.wake:
                self.hub.waker = None
            log.info("embedded runner stopped")

    async def _launch_due(self) -> None:
        def read(conn: Connection) -> tuple[list[ConnectionRow], dict[tuple[int, str], datetime | None]]:
            rows = self.hub.connections(conn, enabled_only=True)
            return rows, {(r.connection_id, r.job): r.next_run_at for r in conn.execute(
                sa.select(t.job_state.c.connection_id, t.job_state.c.job, t.job_state.c.next_run_at))}

        # Through the hub's ledger work, as the jobs' own reads: on SQLite a read of its own on
        # the event loop would wait, with the loop, for the write lock a commit holds.
        rows, due = await self.hub.in_ledger(read)
        now = utcnow()
        for row in rows:
            for spec in jobs_for(self.hub, row):
                key = (row.id, spec.name)
                task = self.running.get(key)
                if task and not task.done():
                    continue  # a wake meanwhile stays: it runs again once this run is done
                nxt = due.get(key)
                if nxt is not None and nxt > now and key not in self.woken:
                    continue
                self.woken.discard(key)
                self.running[key] = asyncio.create_task(run_job(self.hub, row, spec.name, self.owner))


async def sync_once(
    hub: Hub, *, max_passes: int = 200, on_pass: Callable[[int, list[RunResult]], None] | None = None,
    connections: list[str] | None = None,
) -> list[RunResult]:
    """Run every job of every enabled connection, again and again, until a pass changes nothing."""
    history: list[RunResult] = []
    for n in range(1, max_passes + 1):
        with hub.db.connect() as conn:
            rows = [r for r in hub.connections(conn, enabled_only=True)
                    if connections is None or r.name in connections]
        results = await asyncio.gather(*(
            _run_connection(hub, row) for row in rows))
        flat = [r for group in results for r in group]
        history.extend(flat)
        if on_pass:
            on_pass(n, flat)
        if not any(r.processed for r in flat):
            break
    return history


async def _run_connection(hub: Hub, row: object) -> list[RunResult]:
    # A connection's jobs run in the lifecycle's order, so one pass can carry an order far.
    out = []
    for spec in jobs_for(hub, row):  # type: ignore[arg-type]
        out.append(await run_job(hub, row, spec.name))  # type: ignore[arg-type]
    return out
