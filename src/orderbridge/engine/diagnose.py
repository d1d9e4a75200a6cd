"""'Where is my order?': what the source has that the ledger did not import, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from orderbridge.connectors.base import Window
from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t


@dataclass
class Finding:
    external_id: str
    source_status: str
    order_date: datetime | None
    state: str  # imported, error, skipped, not_eligible, not_seen
    reason: str


async def diagnose(hub: Hub, connection: str, external_id: str | None = None, days: int = 30) -> list[Finding]:
    with hub.db.connect() as conn:
        row = hub.connection(conn, connection)
    now = utcnow()
    items = await hub.source(row).survey(Window(since=now - timedelta(days=days), until=now), external_id)
    ids = [i.external_id for i in items]
    with hub.db.connect() as conn:
        o, s = t.orders, t.skipped_orders
        held = {r.external_id: r for r in conn.execute(
            sa.select(o.c.external_id, o.c.status, o.c.error_message, o.c.cust_ref)
            .where(o.c.connection_id == row.id, o.c.external_id.in_(ids)))}
        skipped = {r.external_id: r for r in conn.execute(
            sa.select(s.c.external_id, s.c.reason).where(s.c.connection_id == row.id, s.c.external_id.in_(ids)))}
    out = []
    for item in items:
        h = held.get(item.external_id)
        if h is not None:
            if h.status == "error":
                out.append(Finding(item.external_id, item.source_status, item.order_date, "error",
                                   f"imported but in error: {h.error_message}"))
            else:
                out.append(Finding(item.external_id, item.source_status, item.order_date, "imported",
                                   f"imported as {h.cust_ref}, status {h.status}"))
        elif item.external_id in skipped:
            out.append(Finding(item.external_id, item.source_status, item.order_date, "skipped",
                               skipped[item.external_id].reason))
        elif item.not_eligible_reason:
            out.append(Finding(item.external_id, item.source_status, item.order_date, "not_eligible",
                               item.not_eligible_reason))
        else:
            out.append(Finding(item.external_id, item.source_status, item.order_date, "not_seen",
                               "eligible but not downloaded yet: the download job has not run since it "
                               "appeared (see `orderbridge jobs status`)"))
    return out
