"""Order events (the timeline) and alerts."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.domain.models import utcnow
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.logs import redact

_HELD = "orderbridge.held_events"  # key in Connection.info: the events held for one INSERT


def event(conn: Connection, order_id: int, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    row = event_row(order_id, utcnow(), kind, message, data)
    held = conn.info.get(_HELD)
    if held is not None:
        held.append(row)
    else:
        prepared.execute(conn, prepared.insert_into(t.order_events), row)


@contextlib.contextmanager
def events_together(conn: Connection) -> Iterator[None]:
    """The order events written inside this block go in as one INSERT at its end (one statement
    where a batch of steps writes one event each). Use it around work that commits or rolls back
    as a whole (no savepoint that could roll back alone): the events are inserted at the block's
    end, so a write that fails inside it takes its own events with it. A block inside another
    joins it (its events go in at the outer block's end)."""
    if _HELD in conn.info:
        yield
        return
    held: list[dict[str, Any]] = []
    conn.info[_HELD] = held
    try:
        yield
    finally:
        # ``info`` belongs to the pooled connection: nothing may stay behind for its next user.
        del conn.info[_HELD]
    if held:
        prepared.execute(conn, prepared.insert_into(t.order_events), held)


def event_row(order_id: int, at: datetime, kind: str, message: str, data: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """An order event as a row to insert (several at once, with ``order_events.insert()``)."""
    return {"order_id": order_id, "at": at, "kind": kind, "message": redact(message), "data": _masked(data)}


def _masked(data: Any) -> Any:
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    return data


def alert(
    conn: Connection,
    *,
    kind: str,
    key: str,
    message: str,
    fix: str = "",
    merchant_id: int | None = None,
    connection_id: int | None = None,
    order_id: int | None = None,
) -> None:
    """Raise an alert, or bump the open one with the same key."""
    now = utcnow()
    a = t.alerts
    existing = conn.execute(sa.select(a.c.id, a.c.resolved_at).where(a.c.dedup_key == key)).first()
    if existing:
        conn.execute(
            a.update().where(a.c.id == existing.id).values(
                count=a.c.count + 1, last_seen_at=now, message=redact(message), fix=redact(fix), resolved_at=None
            )
        )
        return
    conn.execute(
        a.insert().values(
            kind=kind, dedup_key=key, message=redact(message), fix=redact(fix), merchant_id=merchant_id,
            connection_id=connection_id, order_id=order_id, created_at=now, last_seen_at=now,
        )
    )


def resolve_alert(conn: Connection, key: str) -> None:
    prepared.execute(conn, _resolve_alert(), {"key": key, "resolved_at": utcnow()})


@functools.cache
def _resolve_alert() -> sa.Update:
    a = t.alerts
    return a.update().where(a.c.dedup_key == sa.bindparam("key"), a.c.resolved_at.is_(None))
