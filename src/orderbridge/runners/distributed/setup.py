"""Preparing a process of the cluster: PostgreSQL check, the queue's schema, the hub's hooks."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from orderbridge.connectors.budget import PgBudget
from orderbridge.engine.hub import Hub
from orderbridge.ledger.db import describe, setup_lock
from orderbridge.runners.distributed.queue import QUEUE, TASK_NAME, job_lock, require_postgres

log = logging.getLogger("orderbridge.distributed")


def schema_applied(conn: Connection) -> bool:
    return conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None


def ensure_schema(engine: Engine) -> bool:
    """Apply Procrastinate's schema on first use; True when it was applied now."""
    require_postgres(engine)
    with setup_lock(engine), engine.begin() as conn:
        if schema_applied(conn):
            return False
        # The schema is one SQL script; run it as is (no parameters, so '%' stays literal).
        conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
    log.info("applied the job queue schema to %s", describe(engine))
    return True


_QUEUED = sa.text(
    "SELECT id FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo' FOR UPDATE")
_DEFER = sa.text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :lock, :lock, CAST(:args AS jsonb), "
    "NULL)::procrastinate_job_to_defer_v1]))")


def defer_in_transaction(conn: Connection, connection_id: int, job: str) -> None:
    """Queue a run of (connection, job) in the caller's transaction.

    If a run is already queued, its row is locked until this transaction ends: workers skip
    locked rows, so that run starts only after this write is visible. Either way the queued
    run and the write that needs it commit, or roll back, together.
    """
    lock = job_lock(connection_id, job)
    args = json.dumps({"connection_id": connection_id, "job": job})
    for _ in range(5):
        if conn.execute(_QUEUED, {"lock": lock}).first() is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(_DEFER, {"queue": QUEUE, "task": TASK_NAME, "lock": lock, "args": args})
            return
        except IntegrityError:
            continue  # another transaction queued it a moment ago: lock that one instead
    # Five races in a row: the scheduler still queues the run at its next period.
    log.warning("could not queue %s of connection %s now; it runs at its next period", job, connection_id)


def attach(hub: Hub, *, ensure: bool = True) -> Hub:
    """Make a hub part of the cluster: shared call budgets, and work queued with the writes."""
    require_postgres(hub.db)
    if ensure:
        ensure_schema(hub.db)
    hub.budget = PgBudget(hub.db)
    hub.waker = defer_in_transaction
    return hub
