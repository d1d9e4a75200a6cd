"""Cancellations: stop sending before delivery, cancel at the backend after, 'too late' once shipped."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from orderbridge.config import RouteOptions
from orderbridge.connectors.base import SkippedOrder, Window
from orderbridge.domain.models import Cancellation, utcnow
from orderbridge.engine import steps
from orderbridge.engine.attempt import attempt, failed
from orderbridge.engine.context import JobContext, read_cursor, window_start, write_cursor
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.orders import _record_skip, recompute_status
from orderbridge.engine.rules import delivery_request, order_by_id
from orderbridge.engine.timeline import alert, event
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID

log = logging.getLogger("orderbridge.engine.cancels")

FULL_READ = "cancels_full_read"  # the cursor holding when a source last re-read everything recent for them


def record_cancellation(conn: Any, hub: Hub, source: ConnectionRow, c: Cancellation) -> str:
    """Note a cancellation at the source; stop the send at once when it has not happened yet."""
    o, d, k = t.orders, t.deliveries, t.cancellations
    order = conn.execute(sa.select(o.c.id, o.c.status).where(
        o.c.connection_id == source.id, o.c.external_id == c.external_id)).first()
    if order is None:
        _record_skip(conn, source, SkippedOrder(
            external_id=c.external_id, reason="cancelled at the source before it was imported", final=True,
            source_status="cancelled"))
        return "skipped"
    if conn.execute(sa.select(k.c.id).where(k.c.order_id == order.id)).first():
        return "same"
    delivery = conn.execute(sa.select(d.c.id, d.c.state).where(d.c.order_id == order.id)).first()
    reason = c.reason or "cancelled at the source"
    now = utcnow()
    if delivery is None or delivery.state not in (steps.DONE, steps.IN_FLIGHT):
        if delivery is not None:
            conn.execute(d.update().where(d.c.id == delivery.id).values(state=steps.CANCELED))
        conn.execute(t.workflow_steps.update().where(
            t.workflow_steps.c.order_id == order.id, t.workflow_steps.c.state != steps.DONE
        ).values(state=steps.CANCELED))
        conn.execute(o.update().where(o.c.id == order.id).values(sending_canceled=True, updated_at=now))
        conn.execute(k.insert().values(order_id=order.id, reason=reason, detected_at=now, outcome="stopped",
                                       state=steps.DONE, attempts=0, last_error="", done_at=now))
        event(conn, order.id, "canceled", f"Cancelled at the source ({reason}) before delivery: it will not be sent")
    else:
        conn.execute(k.insert().values(order_id=order.id, reason=reason, detected_at=now, outcome="",
                                       state=steps.PENDING, attempts=0, last_error=""))
        event(conn, order.id, "cancel_requested",
              f"Cancelled at the source ({reason}) after delivery: cancelling at the backend")
    recompute_status(conn, order.id)
    return "new"


async def cancels(ctx: JobContext) -> None:
    src = ctx.hub.source(ctx.row)
    if ctx.hub.capabilities(ctx.row).cancel_detection:
        with ctx.tx() as conn:
            cursor = read_cursor(conn, ctx.row.id, "cancels")
            full_read_at = read_cursor(conn, ctx.row.id, FULL_READ)
        now = utcnow()
        full_reads: list[datetime] = []
        if cursor is None and full_read_at is None:
            # The job's first run: no order older than the download's first read (itself a read of
            # everything recent, cancelled ones skipped) is held yet for a re-check to protect.
            full_read_at = now
            full_reads.append(now)
        window = Window(window_start(cursor, ctx.hub.runner.overlap_seconds), now, full_read_at=full_read_at,
                        full_read_done=full_reads.append)
        async for c in src.cancellations(window):
            with ctx.tx() as conn:
                if record_cancellation(conn, ctx.hub, ctx.row, c) == "new":
                    ctx.count()
        with ctx.tx() as conn:
            write_cursor(conn, ctx.row.id, "cancels", now)
            if full_reads:  # recorded once the read is through: one cut short is made again
                write_cursor(conn, ctx.row.id, FULL_READ, full_reads[-1])
    await _cancel_at_backends(ctx)


async def _cancel_at_backends(ctx: JobContext) -> None:
    o, d, k = t.orders, t.deliveries, t.cancellations
    with ctx.tx() as conn:
        steps.release(conn, k, ctx.row.id)
        rows = conn.execute(
            sa.select(k.c.id, k.c.order_id, k.c.attempts, d.c.state.label("delivery_state"),
                      d.c.backend_order_id, d.c.backend_id)
            .join(o, o.c.id == k.c.order_id).join(d, d.c.order_id == k.c.order_id)
            .where(o.c.connection_id == ctx.row.id, steps.due_clause(k, utcnow()))).all()
        route = ctx.hub.route_for_source(conn, ctx.row.id)

    async def run(row: Any) -> None:
        if row.delivery_state == steps.IN_FLIGHT:
            with ctx.tx() as conn:
                conn.execute(k.update().where(k.c.id == row.id).values(
                    next_attempt_at=utcnow() + timedelta(seconds=5)))
            return
        with ctx.tx() as conn:
            backend_row = ctx.hub.connection(conn, int(row.backend_id))
            backend = ctx.hub.backend(backend_row)
            shipped = conn.execute(sa.select(t.shipments.c.id).where(t.shipments.c.order_id == row.order_id)).first()
            if shipped:
                _finish(conn, ctx, row, "too_late", "it had already shipped", backend_row.name)
                return
            if not backend.capabilities.cancel:
                _finish(conn, ctx, row, "flagged", f"{backend_row.name} cannot cancel orders", backend_row.name)
                return
            order_row = conn.execute(order_by_id(), {ROW_ID: row.order_id}).one()
            request = delivery_request(
                conn, merchant_id=ctx.row.merchant_id, order_row=order_row,
                route_options=RouteOptions.model_validate(route.options if route else {}),
                backend_options=ctx.hub.route_options_for(backend, route) if route else None,
                source_name=ctx.row.name, backend_name=backend_row.name)
            if not steps.claim(conn, k, row.id):
                return
        result = await attempt(
            ctx, k, row, "Cancellation at the backend", lambda: backend.cancel_order(row.backend_order_id, request),
            on_data=lambda conn, exc: _finish(conn, ctx, row, "failed", exc.message, backend_row.name))
        if failed(result):
            return
        with ctx.tx() as conn:
            if result.canceled:
                _finish(conn, ctx, row, "canceled", result.note, backend_row.name)
            elif result.too_late:
                _finish(conn, ctx, row, "too_late", result.note or "it had already shipped", backend_row.name)
            else:
                _finish(conn, ctx, row, "flagged", result.note, backend_row.name)
        ctx.count()

    await ctx.each(rows, run)


def _finish(conn: Any, ctx: JobContext, row: Any, outcome: str, note: str, backend: str) -> None:
    k = t.cancellations
    conn.execute(k.update().where(k.c.id == row.id).values(
        state=steps.DONE if outcome != "failed" else steps.ERROR, outcome=outcome, done_at=utcnow(),
        last_error="" if outcome != "failed" else note))
    messages = {
        "canceled": f"Cancelled in {backend}",
        "too_late": f"Too late to cancel in {backend}: {note}",
        "flagged": f"Not cancelled in {backend}: {note}",
        "failed": f"{backend} refused the cancellation: {note}",
    }
    event(conn, row.order_id, "canceled" if outcome == "canceled" else "cancel_" + outcome,
          messages[outcome] + ("" if outcome != "canceled" or not note else f" ({note})"))
    if outcome != "canceled":
        alert(conn, kind="cancel_" + outcome, key=f"cancel:{row.order_id}", connection_id=ctx.row.id,
              merchant_id=ctx.row.merchant_id, order_id=row.order_id,
              message=f"Order cancelled at the source could not be cancelled in {backend}: {messages[outcome]}",
              fix="stop or reverse it by hand at the backend, then resolve this alert")
    recompute_status(conn, row.order_id)
