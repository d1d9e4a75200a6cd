"""Inventory: backend stock levels in, available-to-sell pushed out to sources (only changes).

pushed value = max(0, available at the backend - units in orders not yet delivered - buffer),
and 0 when that falls below the source's floor.

"Available at the backend" is the snapshot of the last stock read, while deliveries go on
between reads: an order created in the backend since the snapshot was read is committed there
but not in the snapshot. Its units count as undelivered until the next read, so a delivery never
makes a listing show more than there is (nor makes it go up and back down at every read).

A delivery under way while the snapshot is read may be in it as well: its units are then counted
twice and the listings show a few units less than there are, until a read with no delivery
around it. Such a read is marked unsettled, and a run of deliveries that ends with nothing more
to deliver asks for the next read soon (``settle``) rather than at the job's period: the listings
match the backend's stock within seconds of a burst of orders, at no more than one extra read
per fifth of the period.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.connectors.base import InventoryUpdate
from orderbridge.connectors.errors import AuthError, ConfigError
from orderbridge.domain.models import utcnow
from orderbridge.engine import steps
from orderbridge.engine.context import JobContext, read_cursor, write_cursor
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.rules import aliases
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID

PUSH_BATCH = 100
STOCK_READ = "stock"  # the cursor holding when a backend's stock snapshot was read
UNSETTLED = "stock_unsettled"  # the cursor holding when a read that may under-show began (else empty)
SETTLE_SHARE = 0.2  # a settling read comes no sooner than this share of the period after the last read


async def stock(ctx: JobContext) -> None:
    """Replace this backend's stock snapshot with what it reports now."""
    began = utcnow()  # what the backend had committed by now is in what it reports
    levels = await ctx.hub.backend(ctx.row).stock_levels()
    s = t.stock_levels
    now = utcnow()
    with ctx.tx() as conn:
        write_cursor(conn, ctx.row.id, STOCK_READ, began)
        write_cursor(conn, ctx.row.id, UNSETTLED, began if _straddled(conn, ctx.row.id, began, now) else None)
        current = {(r.sku, r.warehouse): r for r in conn.execute(sa.select(s).where(s.c.backend_id == ctx.row.id))}
        seen, changed = set(), False
        for lvl in levels:
            key = (lvl.sku, lvl.warehouse)
            seen.add(key)
            old = current.get(key)
            values = {"on_hand": lvl.on_hand, "committed": lvl.committed, "available": lvl.available}
            if old is None:
                conn.execute(s.insert().values(backend_id=ctx.row.id, sku=lvl.sku, warehouse=lvl.warehouse,
                                               updated_at=now, **values))
                ctx.count()
                changed = True
            elif any(getattr(old, k) != v for k, v in values.items()):
                conn.execute(s.update().where(s.c.id == old.id).values(updated_at=now, **values))
                ctx.count()
                changed = True
        gone = [current[k].id for k in current.keys() - seen]
        if gone:
            conn.execute(s.delete().where(s.c.id.in_(gone)))
        # Changed levels change what the sources routed here should show: their pushes run next,
        # not at their period (this read also settles the orders delivered since the last one).
        if changed or gone:
            for route in ctx.hub.routes_to_backend(conn, ctx.row.id):
                ctx.hub.wake(conn, route.source_id, "inventory")


def _straddled(conn: Connection, backend_id: int, began: datetime, answered: datetime) -> bool:
    """Whether a delivery to this backend may have been created there while its stock was read:
    claimed before the read answered, and done after it began or still under way."""
    d = t.deliveries
    return conn.execute(sa.select(d.c.id).where(
        d.c.backend_id == backend_id, d.c.intent_at <= answered,
        sa.or_(d.c.state == steps.IN_FLIGHT, sa.and_(d.c.state == steps.DONE, d.c.done_at >= began)),
    ).limit(1)).first() is not None


def settle(hub: Hub, conn: Connection, backend: ConnectionRow) -> None:
    """After a run of deliveries that left nothing to deliver: when the backend's last stock read
    may under-show, read again now, or as soon as a fifth of the period has passed since it."""
    unsettled = read_cursor(conn, backend.id, UNSETTLED)
    if unsettled is None:
        return
    hub.wake_by(conn, backend.id, "stock", unsettled + timedelta(seconds=backend.period("stock") * SETTLE_SHARE))


# The undelivered units of a backend are summed over every order not yet created there, and every
# source routed to it wants that sum for its push: with a backlog of many thousands of orders the
# sum costs more than the rest of a push. A sum over a backlog (MEMO_FROM_UNITS units or more)
# that took over MEMO_FROM seconds is reused by the pushes of the next MEMO_SHARE times that long
# (one sum computed per round of pushes, not one per source), so its share of the hub's time stays
# bounded whatever the backlog. Otherwise each push sums afresh: a small sum that was merely slow
# (a busy machine) is not worth a listing that lags behind.
MEMO_FROM = 0.05
MEMO_FROM_UNITS = 1000
MEMO_SHARE = 10.0


@dataclass
class _Sum:
    units: dict[str, int]
    at: float  # time.monotonic() when computed
    took: float


def undelivered_units_shared(hub: Hub, conn: Any, backend_id: int, merchant_id: int) -> dict[str, int]:
    """``undelivered_units``, reused for a short while when it is costly to compute (see MEMO_FROM)."""
    memo: dict[tuple[int, int], _Sum] = hub.memo.setdefault("undelivered_units", {})
    key = (backend_id, merchant_id)
    now = time.monotonic()
    kept = memo.get(key)
    if (kept is not None and kept.took >= MEMO_FROM and sum(kept.units.values()) >= MEMO_FROM_UNITS
            and now - kept.at < kept.took * MEMO_SHARE):
        return kept.units
    units = undelivered_units(conn, backend_id, merchant_id)
    memo[key] = _Sum(units, now, time.monotonic() - now)
    return units


def undelivered_units(conn: Any, backend_id: int, merchant_id: int) -> dict[str, int]:
    """Units per backend SKU in orders headed to this backend and not in its stock snapshot: not
    yet created there, or created since the snapshot was read."""
    o, d, ln = t.orders, t.deliveries, t.order_lines
    pending: sa.ColumnElement[bool] = d.c.state.notin_((steps.DONE, steps.CANCELED))
    read_at = read_cursor(conn, backend_id, STOCK_READ)
    if read_at is not None:
        pending = sa.or_(pending, sa.and_(d.c.state == steps.DONE, d.c.done_at >= read_at))
    rows = conn.execute(
        sa.select(ln.c.sku, sa.func.sum(ln.c.quantity))
        .join(o, o.c.id == ln.c.order_id).join(d, d.c.order_id == o.c.id)
        .where(d.c.backend_id == backend_id, pending, o.c.sending_canceled.is_(False))
        .group_by(ln.c.sku))
    table = aliases(conn, merchant_id)
    out: dict[str, int] = defaultdict(int)
    for sku, qty in rows:
        out[table.get(sku, sku)] += int(qty or 0)
    return out


def desired_levels(ctx: JobContext, conn: Any, backend_id: int) -> dict[str, tuple[int, dict[str, int]]]:
    """Source SKU -> (value to push, how it was computed)."""
    settings = ctx.hub.source(ctx.row).settings
    s = t.stock_levels
    available: dict[str, int] = defaultdict(int)
    for sku, qty in conn.execute(sa.select(s.c.sku, sa.func.sum(s.c.available)).where(
            s.c.backend_id == backend_id).group_by(s.c.sku)):
        available[sku] = int(qty or 0)
    pending = undelivered_units_shared(ctx.hub, conn, backend_id, ctx.row.merchant_id)
    source_names: dict[str, list[str]] = defaultdict(list)
    for alias, sku in aliases(conn, ctx.row.merchant_id).items():
        source_names[sku].append(alias)
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for sku, avail in available.items():
        value = max(0, avail - pending.get(sku, 0) - settings.inventory_buffer)
        if value < settings.inventory_floor:
            value = 0
        detail = {"available": avail, "undelivered": pending.get(sku, 0), "buffer": settings.inventory_buffer,
                  "floor": settings.inventory_floor}
        for name in source_names.get(sku) or [sku]:
            out[name] = (value, detail)
    return out


@functools.cache
def _due_pushes() -> Any:
    p = t.inventory_pushes
    return (sa.select(p.c.id, p.c.sku, p.c.quantity, p.c.attempts, p.c.first_failure_at)
            .where(p.c.connection_id == sa.bindparam(steps.SOURCE_ID), steps.due_clause(p, sa.bindparam(steps.NOW)))
            .order_by(p.c.sku))


async def push(ctx: JobContext) -> None:
    src = ctx.hub.source(ctx.row)
    if not ctx.hub.capabilities(ctx.row).inventory_push or not src.settings.inventory_enabled:
        return
    p = t.inventory_pushes

    def plan(conn: Any) -> list[Any]:
        """The listings whose quantity is due to be pushed (none without a route)."""
        route = ctx.hub.route_for_source(conn, ctx.row.id)
        if route is None:
            return []
        steps.release(conn, p, ctx.row.id, by="connection_id")
        desired = desired_levels(ctx, conn, route.backend_id)
        existing = {r.sku: r for r in conn.execute(sa.select(p).where(p.c.connection_id == ctx.row.id))}
        for sku, (value, detail) in desired.items():
            row = existing.get(sku)
            if row is None:
                prepared.execute(conn, prepared.insert_into(p), {
                    "connection_id": ctx.row.id, "sku": sku, "quantity": value, "detail": detail,
                    "state": steps.PENDING, "attempts": 0, "last_error": ""})
            elif row.quantity != value or (row.pushed_quantity != value and row.state == steps.DONE):
                prepared.execute(conn, prepared.update_by_id(p), {
                    ROW_ID: row.id, "quantity": value, "detail": detail, "state": steps.PENDING,
                    "next_attempt_at": None, "first_failure_at": None})
        return prepared.execute(conn, _due_pushes(), {steps.SOURCE_ID: ctx.row.id, steps.NOW: utcnow()}).all()

    due = await ctx.hub.in_ledger(plan)
    batches = [due[i:i + PUSH_BATCH] for i in range(0, len(due), PUSH_BATCH)]
    for batch in batches:

        def claim(conn: Any, rows: list[Any] = batch) -> list[Any]:
            return [r for r in rows if steps.claim(conn, p, r.id)]

        batch = await ctx.hub.in_ledger(claim)
        try:
            refused = await src.push_inventory([InventoryUpdate(sku=r.sku, quantity=r.quantity) for r in batch])
        except (AuthError, ConfigError):
            with ctx.tx() as conn:
                conn.execute(p.update().where(p.c.id.in_([r.id for r in batch])).values(state=steps.PENDING))
            raise
        except Exception as exc:
            with ctx.tx() as conn:
                for r in batch:
                    steps.fail_transient(conn, p, r, exc, ctx.hub.runner)
            continue

        def record(conn: Any, rows: list[Any] = batch, refused: dict[str, str] = refused) -> None:
            for r in rows:
                if r.sku in refused:
                    steps.fail_data(conn, p, r.id, refused[r.sku])
                else:
                    steps.succeed(conn, p, r.id, pushed_quantity=r.quantity)
                    ctx.count()

        await ctx.hub.in_ledger(record)
