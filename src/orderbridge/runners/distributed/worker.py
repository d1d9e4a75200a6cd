"""`orderbridge worker`: run queued job runs until stopped (SIGTERM / Ctrl+C finish the runs in progress)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any

import sqlalchemy as sa
from procrastinate.app import WorkerOptions
from sqlalchemy.engine import Engine

from orderbridge.engine.hub import Hub
from orderbridge.runners.distributed.queue import QUEUE, make_app

log = logging.getLogger("orderbridge.worker")

# A worker says it is alive this often; the scheduler requeues the runs of a worker silent for
# longer than its --stalled-after (10 s by default), so a killed worker's jobs run again within seconds.
HEARTBEAT_SECONDS = 1.0

_BEAT = sa.text("UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = ANY(:ids)")


class ProcessHeartbeat:
    """Heartbeats from a thread of their own: they say the process lives, even while a job run keeps
    the event loop busy for a while (Procrastinate's own heartbeat runs on that loop), so only a dead
    or frozen process is taken for dead."""

    def __init__(self, engine: Engine, every: float = HEARTBEAT_SECONDS) -> None:
        self.engine = engine
        self.every = every
        self.worker_ids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def watch(self, worker_id: int | None) -> None:
        if worker_id is not None and worker_id not in self.worker_ids:
            self.worker_ids.add(worker_id)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.worker_ids:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(_BEAT, {"ids": sorted(self.worker_ids)})
            except Exception as exc:  # the database may be restarting: the next beat tries again
                log.warning("heartbeat failed: %s", exc)

    def __enter__(self) -> ProcessHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# After the grace period a stopping worker has cancelled its runs; what is still not done this much
# later is left behind (its process is about to exit; the ledger's lease makes the run resumable).
ABANDON_SECONDS = 10.0


async def run_worker(hub: Hub, *, concurrency: int = 8, name: str | None = None,
                     heartbeat: float = HEARTBEAT_SECONDS, stop: asyncio.Event | None = None,
                     grace: float | None = None) -> None:
    """Run job runs from the queue, ``concurrency`` at a time, until stopped.

    Without ``stop``, SIGTERM and SIGINT stop the worker (Procrastinate's own signal handlers).
    With ``stop`` (a worker inside a bigger program) no signal handler is installed, and the worker
    stops once ``stop`` is set. Stopping takes no new runs; the runs in progress get ``grace``
    seconds (None: as long as they take) and are then cancelled, which leaves their ledger lease to
    expire so that a later run resumes them.
    """
    app = make_app(hub.db, pool_size=concurrency + 3)
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    log.info("worker %s started (concurrency %d)", name, concurrency)
    try:
        with ProcessHeartbeat(hub.db, heartbeat) as beat:
            options: WorkerOptions = {
                "queues": [QUEUE], "name": name, "concurrency": concurrency,
                "additional_context": {"hub": hub, "heartbeat": beat},
                "update_heartbeat_interval": heartbeat, "stalled_worker_timeout": max(30.0, heartbeat * 10),
                "fetch_job_polling_interval": 1.0, "abort_job_polling_interval": 5.0,
                "delete_jobs": "successful",  # the ledger keeps the history (job_runs); the queue stays small
                "install_signal_handlers": stop is None,
            }
            if grace is not None:
                options["shutdown_graceful_timeout"] = grace
            async with app.open_async():
                if stop is None:
                    await app.run_worker_async(**options)
                else:
                    await _until_stopped(asyncio.ensure_future(app.run_worker_async(**options)), stop, name, grace)
    finally:
        await hub.aclose()
        log.info("worker %s stopped", name)


async def _until_stopped(work: asyncio.Future[None], stop: asyncio.Event, name: str, grace: float | None) -> None:
    """Run the worker until ``stop`` is set, then stop it the way Procrastinate stops a worker run
    as a task: cancelling that task makes the worker finish gracefully (no new runs; the runs in
    progress get the grace period, then are aborted) before the task ends as cancelled."""
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            await asyncio.wait([work], timeout=None if grace is None else grace + ABANDON_SECONDS)
        if not work.done():
            # A run that ignores its cancellation, or a database that does not answer: a second
            # cancellation interrupts Procrastinate's own shutdown.
            log.warning("worker %s: runs still going %.0f s after the grace period; interrupting them",
                        name, ABANDON_SECONDS)
            work.cancel()
            await asyncio.wait([work], timeout=ABANDON_SECONDS)
    finally:
        stopping.cancel()
        if not work.done():  # we were cancelled ourselves, or the worker would not stop
            work.cancel()
    if not work.done():
        log.error("worker %s did not stop; left behind", name)
        return
    error = None if work.cancelled() else work.exception()
    if error is not None:
        raise error
