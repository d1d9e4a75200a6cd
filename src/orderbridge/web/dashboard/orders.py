"""Orders: filtered, keyset-paged list; one order in full; retry, cancel sending, re-pull."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from orderbridge.connectors.errors import ConnectorError
from orderbridge.engine.intake import repull_order
from orderbridge.engine.operations import cancel_sending, retry_order
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import one_snapshot
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx
from orderbridge.web.dashboard.overview import STATUSES

PAGE = 50


def _day(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


def filters(ctx: Ctx) -> dict[str, str]:
    return {k: ctx.field(k) for k in ("status", "connection", "since", "until", "q")}


def order_query(ctx: Ctx, f: dict[str, str]) -> tuple[Any, list[str]]:
    """The filtered query (newest first) and the problems with the filters, in words."""
    o, c = t.orders, t.connections
    q = (sa.select(o.c.id, o.c.cust_po_no, o.c.external_id, o.c.cust_ref, o.c.status, o.c.customer_name,
                   o.c.order_date, o.c.created_at, o.c.error_message, o.c.on_hold, o.c.sending_canceled,
                   c.c.name.label("connection"))
         .join(c, c.c.id == o.c.connection_id).where(scope.merchant_clause(ctx.user, c.c.merchant_id)))
    problems = []
    if f["status"]:
        q = q.where(o.c.status == f["status"])
    if f["connection"]:
        q = q.where(c.c.name == f["connection"])
    for key, op in (("since", "ge"), ("until", "lt")):
        if f[key]:
            day = _day(f[key])
            if day is None:
                problems.append(f"{f[key]!r} is not a date (use YYYY-MM-DD)")
            else:
                q = q.where(o.c.order_date >= day if op == "ge" else o.c.order_date < day + timedelta(days=1))
    if f["q"]:
        text = f["q"]
        like = f"%{text.lower()}%"
        skus = sa.select(t.order_lines.c.order_id).where(t.order_lines.c.sku == text)
        q = q.where(sa.or_(sa.func.lower(o.c.cust_po_no).like(like), o.c.external_id == text,
                           o.c.cust_ref == text, sa.func.lower(o.c.customer_name).like(like), o.c.id.in_(skus)))
    return q, problems


def list_orders(ctx: Ctx) -> Response:
    o = t.orders
    f = filters(ctx)
    q, problems = order_query(ctx, f)
    before, after = ctx.field("before"), ctx.field("after")
    rows: list[Any]
    with ctx.hub.db.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
        if after.isdigit():
            rows = list(reversed(conn.execute(q.where(o.c.id > int(after)).order_by(o.c.id.asc())
                                              .limit(PAGE + 1)).mappings().all()))
            more_newer, rows = len(rows) > PAGE, rows[-PAGE:] if len(rows) > PAGE else rows
            more_older = bool(rows) and conn.execute(q.where(o.c.id < rows[-1]["id"]).limit(1)).first() is not None
        else:
            page = q.where(o.c.id < int(before)) if before.isdigit() else q
            rows = list(conn.execute(page.order_by(o.c.id.desc()).limit(PAGE + 1)).mappings())
            more_older, rows = len(rows) > PAGE, rows[:PAGE]
            more_newer = before.isdigit() and bool(rows) and conn.execute(
                q.where(o.c.id > rows[0]["id"]).limit(1)).first() is not None
        names = [n for (n,) in conn.execute(sa.select(t.connections.c.name).where(
            scope.merchant_clause(ctx.user, t.connections.c.merchant_id), t.connections.c.role == "source")
            .order_by(t.connections.c.name))]
    keep = {k: v for k, v in f.items() if v}
    return ctx.render("orders.html", title="Orders", rows=rows, total=total, filters=f, keep=keep,
                      statuses=STATUSES, connections=names, problems=problems,
                      older=rows[-1]["id"] if rows and more_older else None,
                      newer=rows[0]["id"] if rows and more_newer else None)


def _order(ctx: Ctx, conn: Any, order_id: int) -> Any:
    o, c, m = t.orders, t.connections, t.merchants
    row = conn.execute(
        sa.select(o, c.c.name.label("connection"), c.c.merchant_id, m.c.name.label("merchant"))
        .join(c, c.c.id == o.c.connection_id).join(m, m.c.id == c.c.merchant_id)
        .where(o.c.id == order_id, scope.merchant_clause(ctx.user, c.c.merchant_id))).mappings().first()
    if row is None:
        raise HTTPException(404, f"no order {order_id}")
    return row


def _order_id(ctx: Ctx) -> int:
    try:
        return int(ctx.request.path_params["oid"])
    except ValueError:
        raise HTTPException(404, "no such order") from None


def show_order(ctx: Ctx) -> Response:
    oid = _order_id(ctx)
    with one_snapshot(ctx.hub.db) as conn:  # the order's status and its timeline as of one moment
        row = _order(ctx, conn, oid)

        def rows(table: sa.Table, *order: Any) -> list[Any]:
            return list(conn.execute(sa.select(table).where(table.c.order_id == oid).order_by(*order)).mappings())

        backends = dict(conn.execute(sa.select(t.connections.c.id, t.connections.c.name)).all())
        detail: dict[str, Any] = {
            "lines": rows(t.order_lines, t.order_lines.c.line_no),
            "timeline": rows(t.order_events, t.order_events.c.id),
            "workflow": rows(t.workflow_steps, t.workflow_steps.c.seq),
            "deliveries": rows(t.deliveries, t.deliveries.c.id),
            "shipments": rows(t.shipments, t.shipments.c.id),
            "confirmations": rows(t.confirmations, t.confirmations.c.id),
            "cancellation": rows(t.cancellations, t.cancellations.c.id),
        }
    unknown_skus = [ln["sku"] for ln in detail["lines"]] if row["error_code"] == "unknown_sku" else []
    return ctx.render("order.html", title=f"Order {row['cust_po_no'] or row['external_id']}", o=row,
                      backends=backends, unknown_skus=unknown_skus, **detail)


def retry(ctx: Ctx) -> Response:
    oid = _order_id(ctx)
    with ctx.hub.db.begin() as conn:
        row = _order(ctx, conn, oid)
        n = retry_order(conn, oid, f"requested by {ctx.user.username} in the dashboard")
    ctx.flash(f"Order {row['cust_po_no']}: {n} step(s) will run again at the next run of their job.")
    return ctx.redirect(f"/orders/{oid}")


def cancel(ctx: Ctx) -> Response:
    oid = _order_id(ctx)
    with ctx.hub.db.begin() as conn:
        row = _order(ctx, conn, oid)
        ok = cancel_sending(conn, oid)
    if ok:
        ctx.flash(f"Order {row['cust_po_no']} will not be sent to the backend.")
    else:
        ctx.flash(f"Order {row['cust_po_no']} was already sent to the backend: cancel it at the source, and the "
                  "cancellation reaches the backend.", "error")
    return ctx.redirect(f"/orders/{oid}")


async def repull(ctx: Ctx) -> Response:
    oid = _order_id(ctx)

    def load() -> Any:
        with ctx.hub.db.connect() as conn:
            row = _order(ctx, conn, oid)
            return row, ctx.hub.connection(conn, int(row["connection_id"]))

    row, conn_row = await run_in_threadpool(load)
    try:
        outcome = await repull_order(ctx.hub, conn_row, row["external_id"])
        ctx.flash(f"Re-pulled order {row['cust_po_no']} from {conn_row.name}: {outcome}.")
    except ConnectorError as exc:
        ctx.flash(f"Re-pull from {conn_row.name} failed: {exc}", "error")
    return ctx.redirect(f"/orders/{oid}")
