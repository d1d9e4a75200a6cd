"""The Procrastinate app and its one task: run one job of one connection with the engine's run_job."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import procrastinate
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderbridge.connectors.errors import ConfigError
from orderbridge.engine.hub import Hub
from orderbridge.engine.jobs import JOBS, OWNER_PREFIX, RunResult, run_job
from orderbridge.ledger.db import describe

log = logging.getLogger("orderbridge.distributed")

QUEUE = "orderbridge"
TASK_NAME = "orderbridge.run_job"


def job_lock(connection_id: int, job: str) -> str:
    """The Procrastinate lock and queueing lock of a (connection, job): one queued, one running."""
    return f"orderbridge:{connection_id}:{job}"


def worker_owner(worker_id: int | None) -> str:
    """A lease owner naming the Procrastinate worker, so the reaper can free a dead worker's leases.

    It keeps the engine's ``host:pid:`` prefix, which the dead-pid check reads.
    """
    return f"{OWNER_PREFIX}w{worker_id or 0}-{uuid.uuid4().hex[:8]}"


def owner_pattern(worker_id: int) -> str:
    """SQL LIKE pattern matching every lease owner of one Procrastinate worker."""
    return f"%:w{worker_id}-%"


def conninfo(engine: Engine) -> str:
    """The libpq connection string of the ledger, for Procrastinate's own connection pool."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _run_connection_job(context: procrastinate.JobContext, connection_id: int, job: str) -> dict[str, Any]:
    hub: Hub = context.additional_context["hub"]
    beat = context.additional_context.get("heartbeat")
    if beat is not None:
        beat.watch(context.job.worker_id)  # the worker's id is known from its first job on
    if job not in JOBS:
        log.error("queued job %r is unknown; dropped", job)
        return {"ran": False, "reason": f"unknown job {job!r}"}
    with hub.db.connect() as conn:
        try:
            row = hub.connection(conn, connection_id)
        except ConfigError:
            return {"ran": False, "reason": "connection removed"}
    if not row.enabled:
        return {"ran": False, "reason": "connection disabled"}
    result: RunResult = await run_job(hub, row, job, worker_owner(context.job.worker_id))
    return {"ran": result.ran, "status": result.status, "processed": result.processed}


def require_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            f"the distributed runner needs PostgreSQL: the ledger is {describe(engine)}, a "
            f"{engine.dialect.name} database that only processes on this machine can share",
            fix="set ORDERBRIDGE_DATABASE_URL (or [database] url) to postgresql://USER@HOST:PORT/DB, or run "
                "everything in one process with `orderbridge serve` (the embedded runner)",
        )


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def make_app(engine: Engine, *, pool_size: int = 4) -> procrastinate.App:
    """A Procrastinate app on the ledger's PostgreSQL database."""
    require_postgres(engine)
    # Autocommit: each of Procrastinate's statements (fetch, finish, defer) then commits on the
    # server as it ends. Without it the commit waits for this process's event loop to come back to
    # the statement, and the engine's blocking ledger writes can hold that loop while waiting for
    # the very row the statement locked (a job's queue row): a lock wait PostgreSQL cannot see as a
    # deadlock, which froze a worker until its database went away. (Set per connection: the
    # listener's own connection is made with autocommit already, and refuses it as an argument.)
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(engine), min_size=1, max_size=pool_size,
                                               configure=_autocommit)
    app = procrastinate.App(connector=connector)
    app.task(name=TASK_NAME, queue=QUEUE, pass_context=True)(_run_connection_job)
    return app


def queued_locks(conn: sa.Connection) -> set[str]:
    """Locks of the job runs now queued or running."""
    rows = conn.execute(sa.text(
        "SELECT lock FROM procrastinate_jobs WHERE status IN ('todo', 'doing') AND queue_name = :q"
    ), {"q": QUEUE})
    return {str(r[0]) for r in rows if r[0]}
