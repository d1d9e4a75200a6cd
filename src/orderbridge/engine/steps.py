"""The step mechanism shared by workflow steps, deliveries, confirmations, cancellations and
inventory pushes: claim (record the intent), succeed, or fail by error class."""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.config import RunnerConfig
from orderbridge.connectors.errors import TransientError
from orderbridge.domain.models import utcnow
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID, update_by_id
from orderbridge.logs import redact

PENDING, IN_FLIGHT, DONE, ERROR, PARKED, CANCELED, WAITING = (
    "pending", "in_flight", "done", "error", "parked", "canceled", "waiting",
)
OPEN_STATES = (PENDING, IN_FLIGHT, WAITING, ERROR, PARKED)

# The bound parameters of the statements a job runs at each run (built once: constructing one
# costs more than running it, and jobs run every second or so per connection, idle or not).
SOURCE_ID = "source_id"  # the connection the job runs for
NOW = "now"  # the time rows are due by


def due_clause(table: sa.Table, now: datetime | sa.BindParameter[Any]) -> Any:
    return sa.and_(
        table.c.state == PENDING,
        sa.or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
    )


def due_order(table: sa.Table) -> tuple[Any, Any]:
    """Due rows oldest first, in the order of the due index (state, next_attempt_at, id): the
    database stops at the batch's end instead of sorting every pending row first."""
    return table.c.next_attempt_at, table.c.id


def claim(conn: Connection, table: sa.Table, row_id: int) -> bool:
    """Record the intent: pending -> in_flight, attempts + 1. False if someone else has it."""
    res = prepared.execute(conn, _claim(table), {ROW_ID: row_id, "intent_at": utcnow()})
    return res.rowcount == 1


@functools.cache
def _claim(table: sa.Table) -> sa.Update:
    return (table.update().where(table.c.id == sa.bindparam(ROW_ID), table.c.state == PENDING)
            .values(state=IN_FLIGHT, attempts=table.c.attempts + 1))


def succeed(conn: Connection, table: sa.Table, row_id: int, **values: Any) -> None:
    prepared.execute(conn, update_by_id(table), {ROW_ID: row_id, "state": DONE, "done_at": utcnow(), "last_error": "",
                                                 "next_attempt_at": None, "first_failure_at": None, **values})


def backoff_seconds(attempts: int, runner: RunnerConfig, retry_after: float | None = None) -> float:
    base = min(runner.backoff_max_seconds, 2.0 ** min(attempts, 20))
    delay = base * (0.5 + random.random() / 2)  # full jitter would starve; keep at least half
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def fail_transient(
    conn: Connection, table: sa.Table, row: Any, exc: Exception, runner: RunnerConfig
) -> bool:
    """Schedule a retry; returns True when the step was parked because it kept failing too long."""
    now = utcnow()
    first = row.first_failure_at or now
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    parked = now - first > timedelta(hours=runner.retry_for_hours)
    conn.execute(
        table.update().where(table.c.id == row.id).values(
            state=PARKED if parked else PENDING,
            first_failure_at=first,
            last_error=redact(str(exc))[:2000],
            next_attempt_at=now + timedelta(seconds=backoff_seconds(row.attempts, runner, retry_after)),
        )
    )
    return parked


def fail_data(conn: Connection, table: sa.Table, row_id: int, message: str) -> None:
    conn.execute(
        table.update().where(table.c.id == row_id).values(
            state=ERROR, last_error=redact(message)[:2000], next_attempt_at=None
        )
    )


def of_source(table: sa.Table, source_id: Any) -> Any:
    """The rows of ``table`` (an order's steps) whose order came from this source: a correlated
    EXISTS, so the database walks the few rows the rest of the condition picks (by the state index)
    and looks each order up by its key, where ``IN (SELECT ...)`` would gather every order of the
    source first, a cost that grows with the ledger."""
    o = t.orders
    return sa.exists().where(o.c.id == table.c.order_id, o.c.connection_id == source_id)


def release(conn: Connection, table: sa.Table, connection_id: int, by: str | None = None) -> int:
    """Return one connection's orphaned in_flight rows (their run died) to pending; their next try
    looks up first. The rows of its orders (``of_source``), or with ``by`` those whose column of
    that name holds the connection's id."""
    return int(prepared.execute(conn, _orphans(table, by), {SOURCE_ID: connection_id}).rowcount or 0)


@functools.cache
def _orphans(table: sa.Table, by: str | None) -> sa.Update:
    mine = of_source(table, sa.bindparam(SOURCE_ID)) if by is None else table.c[by] == sa.bindparam(SOURCE_ID)
    return table.update().where(mine, table.c.state == IN_FLIGHT).values(state=PENDING)


def requeue(conn: Connection, table: sa.Table, where: Any) -> int:
    """Make error / parked / waiting rows due now (after a fix, or 'retry now')."""
    res = conn.execute(
        table.update()
        .where(where, table.c.state.in_((ERROR, PARKED, PENDING)))
        .values(state=PENDING, next_attempt_at=None, first_failure_at=None)
    )
    return int(res.rowcount or 0)
