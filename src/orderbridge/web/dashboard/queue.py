"""Error queue: orders in error grouped by cause, bulk retry after a fix; skipped orders and why."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from orderbridge.engine.operations import retry_order
from orderbridge.ledger import schema as t
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx

SKIPPED_SHOWN = 200
SKU_IN_MESSAGE = re.compile(r"^SKUs? (.+?) (?:is|are) unknown")


def _in_error(ctx: Ctx) -> Any:
    o, c, m = t.orders, t.connections, t.merchants
    return (o.join(c, c.c.id == o.c.connection_id).join(m, m.c.id == c.c.merchant_id),
            sa.and_(o.c.status == "error", scope.merchant_clause(ctx.user, c.c.merchant_id)))


def error_queue(ctx: Ctx) -> Response:
    o, c, m, s = t.orders, t.connections, t.merchants, t.skipped_orders
    joined, where = _in_error(ctx)
    with ctx.hub.db.connect() as conn:
        groups = [dict(r) for r in conn.execute(
            sa.select(m.c.name.label("merchant"), o.c.error_code, o.c.error_message, o.c.error_fix,
                      sa.func.count().label("n"), sa.func.max(o.c.updated_at).label("latest"))
            .select_from(joined).where(where)
            .group_by(m.c.name, o.c.error_code, o.c.error_message, o.c.error_fix)
            .order_by(sa.func.count().desc(), o.c.error_message)).mappings()]
        for g in groups:
            g["orders"] = conn.execute(
                sa.select(o.c.id, o.c.cust_po_no).select_from(joined)
                .where(where, m.c.name == g["merchant"], o.c.error_code == g["error_code"],
                       o.c.error_message == g["error_message"]).order_by(o.c.id.desc()).limit(20)).all()
            found = SKU_IN_MESSAGE.match(g["error_message"]) if g["error_code"] == "unknown_sku" else None
            g["skus"] = [x.strip() for x in found.group(1).split(",")] if found else []
        skipped = conn.execute(
            sa.select(s, c.c.name.label("connection")).join(c, c.c.id == s.c.connection_id)
            .where(scope.merchant_clause(ctx.user, c.c.merchant_id))
            .order_by(s.c.last_seen_at.desc()).limit(SKIPPED_SHOWN)).mappings().all()
    return ctx.render("queue.html", title="Error queue", groups=groups, skipped=skipped,
                      in_error=sum(g["n"] for g in groups))


def retry_group(ctx: Ctx) -> Response:
    """Retry every order of one group (after its cause was fixed)."""
    o, m = t.orders, t.merchants
    joined, where = _in_error(ctx)
    with ctx.hub.db.begin() as conn:
        ids = [int(i) for i in conn.execute(sa.select(o.c.id).select_from(joined).where(
            where, m.c.name == ctx.field("merchant"), o.c.error_code == ctx.field("code"),
            o.c.error_message == ctx.field("message"))).scalars()]
        for oid in ids:
            retry_order(conn, oid, f"bulk retry by {ctx.user.username} in the dashboard")
    ctx.flash(f"{len(ids)} order(s) will be retried at the next run of their jobs." if ids
              else "No order of that group is in error any more.")
    return ctx.redirect("/errors")
