"""Order events (the timeline) and alerts."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t
from orderbridge.logs import redact


def event(conn: Connection, order_id: int, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    conn.execute(_insert_event(), event_row(order_id, utcnow(), kind, message, data))


@functools.cache
def _insert_event() -> sa.Insert:
    return t.order_events.insert()


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
    conn.execute(
        t.alerts.update()
        .where(t.alerts.c.dedup_key == key, t.alerts.c.resolved_at.is_(None))
        .values(resolved_at=utcnow())
    )
