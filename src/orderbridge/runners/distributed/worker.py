"""`orderbridge worker`: run queued job runs until stopped (SIGTERM / Ctrl+C finish the runs in progress)."""

from __future__ import annotations

import logging
import os
import socket
import threading

import sqlalchemy as sa
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


async def run_worker(hub: Hub, *, concurrency: int = 8, name: str | None = None,
                     heartbeat: float = HEARTBEAT_SECONDS) -> None:
    """Run job runs from the queue, ``concurrency`` at a time, until a stop signal."""
    app = make_app(hub.db, pool_size=concurrency + 3)
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    log.info("worker %s started (concurrency %d)", name, concurrency)
    try:
        with ProcessHeartbeat(hub.db, heartbeat) as beat:
            async with app.open_async():
                await app.run_worker_async(
                    queues=[QUEUE], name=name, concurrency=concurrency,
                    additional_context={"hub": hub, "heartbeat": beat},
                    update_heartbeat_interval=heartbeat, stalled_worker_timeout=max(30.0, heartbeat * 10),
                    fetch_job_polling_interval=1.0, abort_job_polling_interval=5.0,
                    delete_jobs="successful",  # the ledger keeps the history (job_runs); the queue stays small
                )
    finally:
        await hub.aclose()
        log.info("worker %s stopped", name)
