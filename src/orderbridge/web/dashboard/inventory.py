"""Inventory: per backend SKU the level at the backend, the units in orders not yet delivered, and the
value pushed to each source that backend feeds (under the source's own SKU when it has an alias)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from orderbridge.connectors.base import Role
from orderbridge.engine.inventory import undelivered_units
from orderbridge.engine.rules import aliases
from orderbridge.ledger import schema as t
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx

ROWS_SHOWN = 500


def inventory_page(ctx: Ctx) -> Response:
    c, s, p = t.connections, t.stock_levels, t.inventory_pushes
    text = ctx.field("q")
    backends: list[dict[str, Any]] = []
    with ctx.hub.db.connect() as conn:
        rows = conn.execute(sa.select(c.c.id, c.c.name, c.c.merchant_id).where(
            c.c.role == str(Role.BACKEND), scope.merchant_clause(ctx.user, c.c.merchant_id)).order_by(c.c.name)).all()
        for b in rows:
            q = (sa.select(s.c.sku, sa.func.sum(s.c.on_hand).label("on_hand"),
                           sa.func.sum(s.c.available).label("available"), sa.func.max(s.c.updated_at).label("at"))
                 .where(s.c.backend_id == b.id).group_by(s.c.sku).order_by(s.c.sku).limit(ROWS_SHOWN))
            if text:
                q = q.where(s.c.sku.like(f"%{text}%"))
            levels = conn.execute(q).mappings().all()
            pending = undelivered_units(conn, b.id, b.merchant_id)
            table = aliases(conn, b.merchant_id)
            names: dict[str, list[str]] = defaultdict(list)
            for alias, sku in table.items():
                names[sku].append(alias)
            sources = [ctx.hub.connection(conn, r.source_id) for r in ctx.hub.routes_to_backend(conn, b.id)]
            pushes: dict[tuple[int, str], Any] = {}
            if sources:
                for r in conn.execute(sa.select(p).where(p.c.connection_id.in_([x.id for x in sources]))):
                    pushes[(r.connection_id, r.sku)] = r
            items = []
            for lv in levels:
                per_source = []
                for src in sources:
                    for name in names.get(lv["sku"]) or [lv["sku"]]:
                        push = pushes.get((src.id, name))
                        if push is not None:
                            per_source.append({"source": src.name, "sku": name, "quantity": push.quantity,
                                               "pushed": push.pushed_quantity, "state": push.state,
                                               "error": push.last_error})
                items.append({**lv, "undelivered": pending.get(lv["sku"], 0), "pushes": per_source})
            backends.append({"name": b.name, "sources": [x.name for x in sources], "items": items})
    return ctx.render("inventory.html", title="Inventory", backends=backends, q=text, limit=ROWS_SHOWN)
