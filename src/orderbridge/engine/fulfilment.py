"""Shipment pickup from backends and shipment confirmation to sources."""

from __future__ import annotations

import functools
import logging
from typing import Any

import sqlalchemy as sa

from orderbridge.connectors.base import ConfirmMode
from orderbridge.domain.models import Shipment, utcnow
from orderbridge.engine import steps
from orderbridge.engine.attempt import attempt, failed
from orderbridge.engine.context import JobContext, read_cursor, window_start, write_cursor
from orderbridge.engine.orders import recompute_status, shipped_fraction
from orderbridge.engine.rules import stored_order
from orderbridge.engine.timeline import event
from orderbridge.ledger import schema as t

log = logging.getLogger("orderbridge.engine.fulfilment")

SHIPMENT_BATCH = 100


async def pickup(ctx: JobContext) -> None:
    """Read shipments from the backend since the cursor (with overlap) into the ledger."""
    from orderbridge.connectors.base import Window

    backend = ctx.hub.backend(ctx.row)
    with ctx.tx() as conn:
        cursor = read_cursor(conn, ctx.row.id, "shipments")
    now = utcnow()
    unmatched = 0
    batch: list[Shipment] = []

    def flush() -> None:
        nonlocal unmatched
        with ctx.tx() as conn:  # a page's shipments in one transaction
            outcomes = [record_shipment(ctx, conn, shipment) for shipment in batch]
        batch.clear()
        ctx.count(outcomes.count("new"))
        unmatched += outcomes.count("unmatched")

    async for shipment in backend.shipments(Window(window_start(cursor, ctx.hub.runner.overlap_seconds), now)):
        batch.append(shipment)
        if len(batch) >= SHIPMENT_BATCH:
            flush()
    flush()
    with ctx.tx() as conn:
        write_cursor(conn, ctx.row.id, "shipments", now)
    if unmatched:
        ctx.notes.append(f"{unmatched} shipments of orders not sent by orderbridge ignored")


def record_shipment(ctx: JobContext, conn: Any, shipment: Shipment) -> str:
    # By our reference, else by the backend's order id: two indexed lookups (an OR of the two
    # would scan every delivery of the backend for each shipment).
    delivery = conn.execute(_by_backend(t.deliveries, "cust_ref", "order_id"),
                            {"backend": ctx.row.id, "value": shipment.order_ref}).first()
    if delivery is None and shipment.backend_order_id:
        delivery = conn.execute(_by_backend(t.deliveries, "backend_order_id", "order_id"),
                                {"backend": ctx.row.id, "value": shipment.backend_order_id}).first()
    if delivery is None:
        return "unmatched"
    order_id = int(delivery.order_id)
    if conn.execute(_by_backend(t.shipments, "external_id", "id"),
                    {"backend": ctx.row.id, "value": shipment.external_id}).first():
        return "same"
    conn.execute(t.shipments.insert(), {
        "order_id": order_id, "backend_id": ctx.row.id, "external_id": shipment.external_id,
        "carrier": shipment.carrier, "service": shipment.service, "tracking_numbers": shipment.all_tracking(),
        "data": shipment.model_dump(mode="json"), "shipped_at": shipment.shipped_at, "created_at": utcnow()})
    tracking = ", ".join(shipment.all_tracking()) or "no tracking number"
    event(conn, order_id, "shipment", f"Shipped by {ctx.row.name}: {shipment.carrier or 'carrier unknown'} "
          f"{tracking}", {"shipment": shipment.external_id})
    _plan_confirmations(ctx, conn, order_id, shipment)
    recompute_status(conn, order_id)
    return "new"


@functools.cache
def _by_backend(table: sa.Table, key: str, column: str) -> Any:
    """``SELECT column FROM table WHERE backend_id = :backend AND key = :value`` (built once)."""
    return sa.select(table.c[column]).where(table.c.backend_id == sa.bindparam("backend"),
                                            table.c[key] == sa.bindparam("value")).limit(1)


def _plan_confirmations(ctx: JobContext, conn: Any, order_id: int, shipment: Shipment) -> None:
    source_id = conn.execute(sa.select(t.orders.c.connection_id).where(t.orders.c.id == order_id)).scalar_one()
    source_row = ctx.hub.connection(conn, int(source_id))
    if not ctx.hub.capabilities(source_row).shipment_upload:
        return
    mode = ctx.hub.source(source_row).confirm_mode()
    c = t.confirmations
    if mode == ConfirmMode.PER_SHIPMENT:
        key, ids = shipment.external_id, [shipment.external_id]
    else:
        shipped, ordered = shipped_fraction(conn, order_id)
        if mode == ConfirmMode.ORDER_WHEN_COMPLETE and shipped < ordered:
            event(conn, order_id, "confirm_wait",
                  f"{shipped} of {ordered} units shipped: confirmation to the source waits for the rest")
            return
        key, ids = "order", []
    exists = conn.execute(sa.select(c.c.id).where(c.c.order_id == order_id, c.c.key == key)).first()
    if not exists:
        conn.execute(c.insert().values(order_id=order_id, key=key, shipment_ids=ids, state=steps.PENDING,
                                       attempts=0, last_error="", note=""))
        ctx.hub.wake(conn, source_row.id, "upload")


async def upload(ctx: JobContext) -> None:
    """Confirm due shipments to the source, each confirmation exactly once."""
    src = ctx.hub.source(ctx.row)
    c, o = t.confirmations, t.orders
    with ctx.tx() as conn:
        steps.release(conn, c, c.c.order_id.in_(sa.select(o.c.id).where(o.c.connection_id == ctx.row.id)))
        rows = conn.execute(
            sa.select(c.c.id, c.c.order_id, c.c.key, c.c.shipment_ids, c.c.attempts)
            .join(o, o.c.id == c.c.order_id)
            .where(o.c.connection_id == ctx.row.id, steps.due_clause(c, utcnow()))
            .order_by(*steps.due_order(c)).limit(1000)).all()

    async def run(row: Any) -> None:
        def claim(conn: Any) -> Any:
            if not steps.claim(conn, c, row.id):
                return None
            order_row = conn.execute(
                sa.select(o, t.deliveries.c.backend_order_id).join(t.deliveries, t.deliveries.c.order_id == o.c.id)
                .where(o.c.id == row.order_id)).one()
            q = sa.select(t.shipments.c.data).where(t.shipments.c.order_id == row.order_id)
            if row.shipment_ids:
                q = q.where(t.shipments.c.external_id.in_(row.shipment_ids))
            return order_row, [Shipment.model_validate(r.data) for r in conn.execute(q.order_by(t.shipments.c.id))]

        claimed = await ctx.write(claim)
        if claimed is None:
            return
        order_row, shipments = claimed
        stored = stored_order(order_row)

        async def confirm() -> str:
            if row.attempts > 0 and await src.is_confirmed(stored, shipments):
                return "already confirmed at the source (found after an interrupted attempt)"
            return (await src.upload_shipments(stored, shipments)).note

        note = await attempt(ctx, c, row, "Shipment confirmation refused", confirm)
        if failed(note):
            return

        def done(conn: Any) -> None:
            steps.succeed(conn, c, row.id, note=note)
            event(conn, row.order_id, "confirmed", f"Shipment confirmed to {ctx.row.name}"
                  + (f": {note}" if note else ""))
            recompute_status(conn, row.order_id)

        await ctx.write(done)
        ctx.count()

    await ctx.each(rows, run)
