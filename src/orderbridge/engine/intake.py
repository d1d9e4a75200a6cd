"""Order download (polling with a UTC cursor and overlap), webhooks and re-pulls."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder, SourceConnector, Window
from orderbridge.domain.models import utcnow
from orderbridge.engine.context import JobContext, read_cursor, window_start, write_cursor
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.orders import ingest, order_json
from orderbridge.ledger import schema as t

log = logging.getLogger("orderbridge.engine.intake")

BATCH = 200


def _workflow(src: SourceConnector, item: DownloadItem) -> list[Any]:
    if isinstance(item, DownloadedOrder) and item.order is not None:
        return src.workflow_steps(item.order)
    return []


def store_items(hub: Hub, row: ConnectionRow, items: list[DownloadItem], via: str) -> dict[str, int]:
    """Ingest a batch in one transaction, each item in its own savepoint: one bad item never
    takes the others down."""
    src = hub.source(row)
    tally: dict[str, int] = {}
    with hub.db.begin() as conn:
        route = hub.route_for_source(conn, row.id)
        known = _known(conn, row.id, [i.external_id for i in items])
        for item in items:
            if _unchanged(known.get(item.external_id), item):
                # Re-read within the overlap window and not changed: nothing to write (the common case).
                tally["same"] = tally.get("same", 0) + 1
                continue
            try:
                with conn.begin_nested():
                    outcome = ingest(conn, row, route, item, _workflow(src, item), via=via)
            except IntegrityError:
                outcome = "same"  # a concurrent intake (webhook and poll) stored it first
            except Exception:
                log.exception("cannot store order %s of %s", item.external_id, row.name)
                outcome = "failed"
            tally[outcome] = tally.get(outcome, 0) + 1
    return tally


def _known(conn: Any, connection_id: int, external_ids: list[str]) -> dict[str, Any]:
    """The stored orders among these ids, in one query."""
    o = t.orders
    rows = conn.execute(sa.select(o.c.external_id, o.c.data, o.c.error_code).where(
        o.c.connection_id == connection_id, o.c.external_id.in_(set(external_ids)))) if external_ids else []
    return {r.external_id: r for r in rows}


def _unchanged(stored: Any, item: DownloadItem) -> bool:
    """True when ``ingest`` would answer "same" without writing (see engine/orders.py)."""
    if stored is None:
        return False
    if isinstance(item, SkippedOrder) or item.order is None:
        return True
    return bool(stored.error_code != "invalid_order" and order_json(item.order) == stored.data)


async def pull(ctx: JobContext, window: Window, via: str = "poll") -> dict[str, int]:
    src = ctx.hub.source(ctx.row)
    tally: dict[str, int] = {}
    batch: list[DownloadItem] = []

    def flush() -> None:
        for k, v in store_items(ctx.hub, ctx.row, batch, via).items():
            tally[k] = tally.get(k, 0) + v
        batch.clear()

    async for item in src.download(window):
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    ctx.count(tally.get("new", 0) + tally.get("updated", 0))
    return tally


async def download(ctx: JobContext) -> None:
    with ctx.tx() as conn:
        cursor = read_cursor(conn, ctx.row.id, "download")
    now = utcnow()  # read before the pull: anything created during it is re-read next time
    tally = await pull(ctx, Window(since=window_start(cursor, ctx.hub.runner.overlap_seconds), until=now))
    with ctx.tx() as conn:
        write_cursor(conn, ctx.row.id, "download", now)
    if tally:
        ctx.notes.append(", ".join(f"{v} {k}" for k, v in sorted(tally.items())))


async def repull(hub: Hub, connection: str, since: datetime, until: datetime) -> dict[str, int]:
    """Re-read a date range from the source; the cursor is left alone."""
    with hub.db.begin() as conn:
        row = hub.connection(conn, connection)
    ctx = JobContext(hub=hub, row=row, job="repull")
    return await pull(ctx, Window(since=since, until=until), via="re-pull")


async def repull_order(hub: Hub, row: ConnectionRow, external_id: str) -> str:
    item = await hub.source(row).fetch_order(external_id)
    if item is None:
        return "not found at the source"
    tally = store_items(hub, row, [item], "re-pull")
    return next(iter(tally))


async def handle_webhook(hub: Hub, connection: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A webhook is a hint: verify it, de-duplicate on its event id, fetch what it names."""
    from orderbridge.engine.cancels import record_cancellation

    with hub.db.begin() as conn:
        row = hub.connection(conn, connection)
    src = hub.source(row)
    evt = await src.parse_webhook(headers, body)  # AuthError on a forged signature
    try:
        with hub.db.begin() as conn:
            conn.execute(t.webhook_events.insert().values(
                connection_id=row.id, event_id=evt.event_id[:200], received_at=utcnow()))
    except IntegrityError:
        return {"duplicate": True, "event_id": evt.event_id}
    results: dict[str, Any] = {"duplicate": False, "event_id": evt.event_id, "orders": {}}
    for external_id in evt.external_ids:
        if evt.kind == "cancel":
            from orderbridge.domain.models import Cancellation

            with hub.db.begin() as conn:
                results["orders"][external_id] = record_cancellation(
                    conn, hub, row, Cancellation(external_id=external_id, reason="cancelled (webhook)"))
            continue
        item = await src.fetch_order(external_id)
        if item is None:
            results["orders"][external_id] = "not found"
            continue
        tally = store_items(hub, row, [item], "webhook")
        results["orders"][external_id] = next(iter(tally))
        if isinstance(item, SkippedOrder):
            continue
    return results


def webhook_seen(hub: Hub, connection_id: int, event_id: str) -> bool:
    with hub.db.connect() as conn:
        return conn.execute(sa.select(t.webhook_events.c.id).where(
            t.webhook_events.c.connection_id == connection_id, t.webhook_events.c.event_id == event_id)
        ).first() is not None
