"""Shipment pickup from backends and shipment confirmation to sources."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa

from orderbridge.connectors.base import ConfirmMode
from orderbridge.domain.models import OrderStatus, Shipment, utcnow
from orderbridge.engine import steps
from orderbridge.engine.attempt import attempt, failed
from orderbridge.engine.context import JobContext, LookBack, read_cursor, write_cursor
from orderbridge.engine.orders import (
    WHOLE_ORDER,
    recompute_status,
    shipped_fraction,
    units_ordered,
    units_shipped,
)
from orderbridge.engine.rules import order_columns, stored_order
from orderbridge.engine.timeline import event, events_together
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID

log = logging.getLogger("orderbridge.engine.fulfilment")

SHIPMENT_BATCH = 100


async def pickup(ctx: JobContext) -> None:
    """Read shipments from the backend since the cursor (with overlap) into the ledger."""
    from orderbridge.connectors.base import Window

    backend = ctx.hub.backend(ctx.row)
    cursor = await ctx.hub.in_ledger(lambda conn: read_cursor(conn, ctx.row.id, "shipments"))
    now = utcnow()
    unmatched = 0
    batch: list[Shipment] = []

    async def flush() -> None:
        nonlocal unmatched
        shipments = batch[:]
        batch.clear()
        # A page's shipments in one transaction.
        outcomes = await ctx.hub.in_ledger(lambda conn: _record_page(ctx, conn, shipments))
        ctx.count(outcomes.count("new"))
        unmatched += outcomes.count("unmatched")

    def recorded(external_ids: list[str]) -> Awaitable[set[str]]:
        # What the look-back reads again is mostly recorded already: looked up a page at a time.
        return ctx.hub.in_ledger(lambda conn: recorded_among(conn, ctx.row.id, external_ids))

    look = LookBack(ctx, "shipments", cursor)
    async for shipment in backend.shipments(Window(look.since, now, skip_stored=True, recorded=recorded)):
        batch.append(shipment)
        if len(batch) >= SHIPMENT_BATCH:
            await flush()
    if batch:
        await flush()
    look.read()
    await ctx.hub.in_ledger(lambda conn: write_cursor(conn, ctx.row.id, "shipments", now))
    if unmatched:
        ctx.notes.append(f"{unmatched} shipments of orders not sent by orderbridge ignored")


def recorded_among(conn: Any, backend_id: int, external_ids: list[str]) -> set[str]:
    """The shipments among these ids the ledger has recorded for this backend (its unique key)."""
    sh = t.shipments
    return set(conn.execute(sa.select(sh.c.external_id).where(
        sh.c.backend_id == backend_id, sh.c.external_id.in_(set(external_ids)))).scalars())


def _record_page(ctx: JobContext, conn: Any, shipments: list[Shipment]) -> list[str]:
    with events_together(conn):  # a page's transaction commits or rolls back as a whole
        return record_shipments(ctx, conn, shipments)


def record_shipments(ctx: JobContext, conn: Any, shipments: list[Shipment]) -> list[str]:
    """Record a page of shipments read from this backend; each one's outcome: new, same or unmatched.

    What can be read for the whole page is read in one query each (the deliveries the shipments
    name, the shipments already recorded); then each new shipment is written with its event,
    its confirmation to plan and its order's status."""
    d, sh = t.deliveries, t.shipments
    refs = {s.order_ref for s in shipments}
    deliveries = {r.cust_ref: r for r in conn.execute(
        sa.select(d.c.cust_ref, *_order_so_far(d.c.order_id))
        .join(t.orders, t.orders.c.id == d.c.order_id)
        .where(d.c.backend_id == ctx.row.id, d.c.cust_ref.in_(refs)))} if refs else {}
    recorded = set(conn.execute(sa.select(sh.c.external_id).where(
        sh.c.backend_id == ctx.row.id, sh.c.external_id.in_({s.external_id for s in shipments})
    )).scalars()) if shipments else set()
    sources: dict[int, Any] = {}
    woken: set[int] = set()
    outcomes = []
    # Of the orders with no shipment recorded before this page, the shipments this page records
    # (then they are all the order's: no need to read them back); the orders whose whole-order
    # confirmation is known to exist (read with the delivery, or planned in this page).
    first_shipments: dict[int, list[dict[str, Any]]] = {}
    confirmed_whole: set[int] = set()
    # The orders' rows locked in id order, as every transaction that locks several orders (fewer
    # deadlocks); an order's own shipments keep theirs.
    shipments = sorted(shipments, key=lambda s: int(deliveries[s.order_ref].order_id)
                       if s.order_ref in deliveries else sys.maxsize)
    for shipment in shipments:
        delivery = deliveries.get(shipment.order_ref)
        if delivery is None and shipment.backend_order_id:
            # Not by our reference: by the backend's order id (its own index; an OR of the two
            # would scan every delivery of the backend).
            delivery = prepared.execute(conn, _by_backend_order_id(), {"backend": ctx.row.id,
                                                            "value": shipment.backend_order_id}).first()
        if delivery is None:
            outcomes.append("unmatched")
            continue
        if shipment.external_id in recorded:
            outcomes.append("same")
            continue
        recorded.add(shipment.external_id)
        order_id = int(delivery.order_id)
        data = shipment.model_dump(mode="json")
        prepared.execute(conn, prepared.insert_into(t.shipments), {
            "order_id": order_id, "backend_id": ctx.row.id, "external_id": shipment.external_id,
            "carrier": shipment.carrier, "service": shipment.service, "tracking_numbers": shipment.all_tracking(),
            "data": data, "shipped_at": shipment.shipped_at, "created_at": utcnow()})
        if not delivery.shipments_before:
            first_shipments.setdefault(order_id, []).append(data)
        if delivery.confirmed_whole:
            confirmed_whole.add(order_id)
        tracking = ", ".join(shipment.all_tracking()) or "no tracking number"
        event(conn, order_id, "shipment", f"Shipped by {ctx.row.name}: {shipment.carrier or 'carrier unknown'} "
              f"{tracking}", {"shipment": shipment.external_id})
        source_id = int(delivery.connection_id)
        if source_id not in sources:
            sources[source_id] = ctx.hub.connection(conn, source_id)
        planned, fraction = _plan_confirmation(ctx, conn, sources[source_id], order_id, shipment,
                                               int(delivery.ordered), first_shipments.get(order_id),
                                               order_id in confirmed_whole)
        if planned:
            woken.add(source_id)
            confirmed_whole.add(order_id)  # a later shipment of the page finds it planned
        recompute_status(conn, order_id, fraction, likely=OrderStatus.SHIPPED)
        outcomes.append("new")
    for source_id in woken:
        ctx.hub.wake(conn, source_id, "upload")
    return outcomes


def _order_so_far(order_id: Any) -> list[Any]:
    """What a shipment's recording needs of its order, read with its delivery: the order, its
    source, its units, whether it has shipments recorded and its whole-order confirmation."""
    sh, c = t.shipments, t.confirmations
    return [
        order_id.label("order_id"), t.orders.c.connection_id,
        units_ordered(order_id).scalar_subquery().label("ordered"),
        sa.exists().where(sh.c.order_id == order_id).label("shipments_before"),
        sa.exists().where(c.c.order_id == order_id, c.c.key == WHOLE_ORDER).label("confirmed_whole"),
    ]


@functools.cache
def _by_backend_order_id() -> Any:
    d = t.deliveries
    return (sa.select(*_order_so_far(d.c.order_id))
            .join(t.orders, t.orders.c.id == d.c.order_id)
            .where(d.c.backend_id == sa.bindparam("backend"), d.c.backend_order_id == sa.bindparam("value")).limit(1))


@functools.cache
def _confirmation_of() -> Any:
    c = t.confirmations
    return sa.select(c.c.id).where(c.c.order_id == sa.bindparam("order_id"), c.c.key == sa.bindparam("key"))


def _plan_confirmation(ctx: JobContext, conn: Any, source_row: Any, order_id: int, shipment: Shipment,
                       ordered: int, all_shipments: list[dict[str, Any]] | None,
                       confirmed_whole: bool) -> tuple[bool, tuple[int, int] | None]:
    """Plan the confirmation this shipment calls for: whether one was added, and the order's
    (units shipped, units ordered) when they were worked out for it (the status derives from them
    too). ``ordered``: the order's units, read with its delivery; ``all_shipments``: the data of
    every shipment of the order when the caller holds them all (None: read them); ``confirmed_whole``:
    whether its whole-order confirmation exists or is planned."""
    if not ctx.hub.capabilities(source_row).shipment_upload:
        return False, None
    mode = ctx.hub.source(source_row).confirm_mode()
    fraction = None
    if mode == ConfirmMode.PER_SHIPMENT:
        key, ids = shipment.external_id, [shipment.external_id]
    else:
        if all_shipments is not None:
            fraction = shipped, ordered = units_shipped(all_shipments, ordered), ordered
        else:
            fraction = shipped, ordered = shipped_fraction(conn, order_id, ordered)
        if mode == ConfirmMode.ORDER_WHEN_COMPLETE and shipped < ordered:
            event(conn, order_id, "confirm_wait",
                  f"{shipped} of {ordered} units shipped: confirmation to the source waits for the rest")
            return False, fraction
        key, ids = WHOLE_ORDER, []
    exists = confirmed_whole if key == WHOLE_ORDER else bool(
        prepared.execute(conn, _confirmation_of(), {"order_id": order_id, "key": key}).first())
    if exists:
        return False, fraction
    prepared.execute(conn, prepared.insert_into(t.confirmations), {
        "order_id": order_id, "key": key, "shipment_ids": ids, "state": steps.PENDING, "attempts": 0,
        "last_error": "", "note": ""})
    return True, fraction


@functools.cache
def _due_confirmations() -> Any:
    c, o = t.confirmations, t.orders
    return (sa.select(c.c.id, c.c.order_id, c.c.key, c.c.shipment_ids, c.c.attempts)
            .join(o, o.c.id == c.c.order_id)
            .where(o.c.connection_id == sa.bindparam(steps.SOURCE_ID), steps.due_clause(c, sa.bindparam(steps.NOW)))
            .order_by(*steps.due_order(c)).limit(1000))


@functools.cache
def _order_to_confirm() -> Any:
    o, d = t.orders, t.deliveries
    return (sa.select(*order_columns(), d.c.backend_order_id).join(d, d.c.order_id == o.c.id)
            .where(o.c.id == sa.bindparam(ROW_ID)))


@functools.cache
def _shipments_of_order() -> Any:
    sh = t.shipments
    return sa.select(sh.c.data).where(sh.c.order_id == sa.bindparam(ROW_ID)).order_by(sh.c.id)


async def upload(ctx: JobContext) -> None:
    """Confirm due shipments to the source, each confirmation exactly once."""
    src = ctx.hub.source(ctx.row)
    c = t.confirmations

    def due(conn: Any) -> list[Any]:
        steps.release(conn, c, ctx.row.id)
        return prepared.execute(conn, _due_confirmations(), {steps.SOURCE_ID: ctx.row.id, steps.NOW: utcnow()}).all()

    rows = await ctx.hub.in_ledger(due)

    async def run(row: Any) -> None:
        def claim(conn: Any) -> Any:
            if not steps.claim(conn, c, row.id):
                return None
            order_row = prepared.execute(conn, _order_to_confirm(), {ROW_ID: row.order_id}).one()
            if row.shipment_ids:
                shipped = conn.execute(_shipments_of_order().where(t.shipments.c.external_id.in_(row.shipment_ids)),
                                       {ROW_ID: row.order_id}).scalars().all()
            else:
                shipped = prepared.execute(conn, _shipments_of_order(), {ROW_ID: row.order_id}).scalars().all()
            return order_row, shipped

        claimed = await ctx.write(claim)
        if claimed is None:
            return
        order_row, shipped = claimed
        shipments = [Shipment.model_validate(data) for data in shipped]
        # Every shipment of the order, when the confirmation is for the whole order: its status
        # derives from them, and they need not be read again for it.
        all_shipped = None if row.shipment_ids else list(shipped)
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
            recompute_status(conn, row.order_id, shipments=all_shipped,
                             likely=OrderStatus.CONFIRMED if row.key == WHOLE_ORDER else None)

        await ctx.write(done)
        ctx.count()

    await ctx.each(rows, run)
