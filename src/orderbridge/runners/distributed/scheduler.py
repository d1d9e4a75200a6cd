"""`orderbridge scheduler`: queue each connection's due jobs, and requeue the jobs of dead workers.

Schedules are per connection and change with the configuration, so the scheduler reads them from
the ledger (``job_state.next_run_at``, written by every run) rather than from a static cron table.
Any number of schedulers may run (for availability): the queueing lock lets only one queued run of
a (connection, job) exist, so two schedulers never double a run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import procrastinate
import sqlalchemy as sa
from procrastinate import exceptions as pexc
from procrastinate.jobs import Job, Status

from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import Hub
from orderbridge.engine.jobs import jobs_for
from orderbridge.ledger import schema as t
from orderbridge.runners.distributed.queue import QUEUE, TASK_NAME, job_lock, owner_pattern, queued_locks

log = logging.getLogger("orderbridge.scheduler")


@dataclass
class Scheduler:
    hub: Hub
    app: procrastinate.App
    tick: float = 0.5
    stalled_after: float = 10.0
    reap_every: float = 1.0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    deferred: int = 0
    requeued: int = 0

    def stop(self) -> None:
        self.stopping.set()

    async def run_forever(self) -> None:
        log.info("scheduler started (tick %.1f s, dead workers after %.0f s)", self.tick, self.stalled_after)
        last_reap = 0.0
        while not self.stopping.is_set():
            try:
                await self.defer_due()
                if time.monotonic() - last_reap >= self.reap_every:
                    last_reap = time.monotonic()
                    await self.requeue_stalled()
            except Exception:  # the database may be restarting: keep going, say so
                log.exception("scheduler pass failed; retrying")
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=self.tick)
            except TimeoutError:
                pass
        log.info("scheduler stopped")

    async def defer_due(self) -> int:
        """Queue a run of every (connection, job) that is due and neither queued nor running."""
        now = utcnow()
        js = t.job_state
        with self.hub.db.connect() as conn:
            rows = self.hub.connections(conn, enabled_only=True)
            state = {(r.connection_id, r.job): r for r in conn.execute(
                sa.select(js.c.connection_id, js.c.job, js.c.next_run_at, js.c.lease_owner, js.c.lease_expires_at))}
            queued = queued_locks(conn)
        task = self.app.tasks[TASK_NAME]
        count = 0
        for row in rows:
            for spec in jobs_for(self.hub, row):
                lock = job_lock(row.id, spec.name)
                if lock in queued:
                    continue
                st = state.get((row.id, spec.name))
                if st is not None:
                    if st.next_run_at is not None and st.next_run_at > now:
                        continue
                    if st.lease_owner and st.lease_expires_at is not None and st.lease_expires_at > now:
                        continue  # running outside the queue (e.g. `sync --once`)
                try:
                    await task.configure(lock=lock, queueing_lock=lock).defer_async(
                        connection_id=row.id, job=spec.name)
                    count += 1
                except pexc.AlreadyEnqueued:
                    pass
        self.deferred += count
        return count

    async def requeue_stalled(self) -> int:
        """Put the runs of workers silent for ``stalled_after`` seconds back in the queue, at once.

        Their ledger leases are freed too (when the owner names that worker), so the rerun does not
        wait for lease expiry; the engine then resolves any step the dead run left in flight.
        """
        jm = self.app.job_manager
        stalled = list(await jm.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.stalled_after))
        for job in stalled:
            self._free_lease(job)
            try:
                await jm.retry_job(job)
                self.requeued += 1
                log.warning("requeued %s of connection %s: its worker stopped sending heartbeats",
                            job.task_kwargs.get("job"), job.task_kwargs.get("connection_id"))
            except pexc.ConnectorException:
                # Either another scheduler requeued it already, or a run of the same job is queued
                # (the queueing lock refuses a second one): then the dead run is simply dropped.
                assert job.id is not None
                if await jm.get_job_status_async(job.id) == Status.DOING:
                    await jm.finish_job(job, status=Status.FAILED, delete_job=True)
        await jm.prune_stalled_workers(self.stalled_after)
        return len(stalled)

    def _free_lease(self, job: Job) -> None:
        connection_id, name = job.task_kwargs.get("connection_id"), job.task_kwargs.get("job")
        if not job.worker_id or not isinstance(connection_id, int) or not isinstance(name, str):
            return
        js = t.job_state
        with self.hub.db.begin() as conn:
            conn.execute(js.update().where(
                js.c.connection_id == connection_id, js.c.job == name,
                js.c.lease_owner.like(owner_pattern(job.worker_id))).values(lease_owner=None, lease_expires_at=None))
