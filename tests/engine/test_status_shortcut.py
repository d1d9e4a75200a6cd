"""The status a step normally leads to, stored in one statement (``recompute_status(likely=...)``):
wherever anything else bears on the order's status, the full derivation runs and gives the same
status as without the shortcut (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.domain.models import OrderStatus, utcnow
from orderbridge.engine.hub import Hub
from orderbridge.engine.orders import WHOLE_ORDER, recompute_status
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from orderbridge.runners.embedded import sync_once
from tests.conftest import ShopAdmin, shop_config

Change = Callable[[Connection, int], None]


def _nothing(conn: Connection, order_id: int) -> None:
    pass


def _sending_canceled(conn: Connection, order_id: int) -> None:
    conn.execute(t.orders.update().where(t.orders.c.id == order_id).values(sending_canceled=True))


def _cancelled_at_backend(conn: Connection, order_id: int) -> None:
    conn.execute(t.cancellations.insert().values(order_id=order_id, reason="test", detected_at=utcnow(),
                                                 outcome="canceled", state="done"))


def _too_late_to_cancel(conn: Connection, order_id: int) -> None:
    conn.execute(t.cancellations.insert().values(order_id=order_id, reason="test", detected_at=utcnow(),
                                                 outcome="too_late", state="done"))


def _in_error(conn: Connection, order_id: int) -> None:
    conn.execute(t.orders.update().where(t.orders.c.id == order_id).values(error_code="data", error_message="x"))


def _delivery_pending(conn: Connection, order_id: int) -> None:
    conn.execute(t.deliveries.update().where(t.deliveries.c.order_id == order_id).values(state="pending"))


def _no_delivery(conn: Connection, order_id: int) -> None:
    conn.execute(t.deliveries.delete().where(t.deliveries.c.order_id == order_id))


def _shipped(conn: Connection, order_id: int) -> None:
    backend_id = conn.execute(sa.select(t.deliveries.c.backend_id).where(
        t.deliveries.c.order_id == order_id)).scalar_one()
    units = conn.execute(sa.select(t.order_lines.c.sku, t.order_lines.c.quantity).where(
        t.order_lines.c.order_id == order_id)).all()
    conn.execute(t.shipments.insert().values(
        order_id=order_id, backend_id=backend_id, external_id=f"s-{order_id}", carrier="UPS", service="",
        tracking_numbers=["1Z"], data={"lines": [{"sku": s, "quantity": q} for s, q in units]},
        shipped_at=utcnow(), created_at=utcnow()))


def _confirmation(state: str, key: str = WHOLE_ORDER) -> Change:
    def change(conn: Connection, order_id: int) -> None:
        conn.execute(t.confirmations.insert().values(order_id=order_id, key=key, shipment_ids=[], note="",
                                                     state=state, attempts=0, last_error=""))
    return change


def _both(*changes: Change) -> Change:
    def change(conn: Connection, order_id: int) -> None:
        for one in changes:
            one(conn, order_id)
    return change


class Case(NamedTuple):
    change: Change  # what else the ledger holds
    likely: OrderStatus  # the status the step expects
    fraction: tuple[int, int] | None  # (units shipped, units ordered), as the step counted them
    derived: str  # the status derived
    shortcut: str  # "taken" (the one guarded UPDATE), "tried" (it wrote nothing) or "skipped" (not tried)


CASES: dict[str, Case] = {
    "delivered": Case(_nothing, OrderStatus.AT_WMS, None, "at_wms", "taken"),
    "delivered, sending cancelled": Case(_sending_canceled, OrderStatus.AT_WMS, None, "canceled", "tried"),
    "delivered, cancelled at the backend": Case(_cancelled_at_backend, OrderStatus.AT_WMS, None, "canceled", "tried"),
    "delivered, too late to cancel": Case(_too_late_to_cancel, OrderStatus.AT_WMS, None, "at_wms", "taken"),
    "delivered, in error": Case(_in_error, OrderStatus.AT_WMS, None, "error", "tried"),
    "delivery not done": Case(_delivery_pending, OrderStatus.AT_WMS, None, "new", "tried"),
    "no delivery": Case(_no_delivery, OrderStatus.AT_WMS, None, "new", "tried"),
    "delivered, already shipped": Case(_shipped, OrderStatus.AT_WMS, None, "shipped", "tried"),
    "delivered, shipped and confirmed": Case(_both(_shipped, _confirmation("done")), OrderStatus.AT_WMS, None,
                                             "confirmed", "tried"),
    "shipped, nothing confirmed": Case(_shipped, OrderStatus.SHIPPED, (3, 3), "shipped", "taken"),
    "shipped, confirmation due": Case(_both(_shipped, _confirmation("pending")), OrderStatus.SHIPPED, (3, 3),
                                      "shipped", "taken"),
    "shipped, confirmed": Case(_both(_shipped, _confirmation("done")), OrderStatus.SHIPPED, (3, 3), "confirmed",
                               "tried"),
    "shipped, one of two confirmed": Case(_both(_shipped, _confirmation("done", "a"), _confirmation("pending", "b")),
                                          OrderStatus.SHIPPED, (3, 3), "shipped", "taken"),
    "shipped in part": Case(_shipped, OrderStatus.SHIPPED, (1, 3), "partial", "skipped"),
    "shipped, cancelled": Case(_both(_shipped, _sending_canceled), OrderStatus.SHIPPED, (3, 3), "canceled", "tried"),
    "whole order confirmed": Case(_both(_shipped, _confirmation("done")), OrderStatus.CONFIRMED, None, "confirmed",
                                  "taken"),
    "whole order confirmed, nothing shipped": Case(_confirmation("done"), OrderStatus.CONFIRMED, None, "confirmed",
                                                   "taken"),
    "whole order confirmed, another one due": Case(
        _both(_shipped, _confirmation("done"), _confirmation("pending", "s-2")), OrderStatus.CONFIRMED, None,
        "shipped", "tried"),
    "each shipment confirmed": Case(_both(_shipped, _confirmation("done", "s-1")), OrderStatus.CONFIRMED, None,
                                    "confirmed", "tried"),
    "whole order confirmed, in error": Case(_both(_confirmation("done"), _in_error), OrderStatus.CONFIRMED, None,
                                            "error", "tried"),
}


@pytest.fixture
def delivered(db_url: str, admin: ShopAdmin) -> Any:
    """A hub whose ledger holds one order delivered to the backend, nothing shipped yet."""
    admin.order("S1", [("SKU-1", 2), ("SKU-2", 1)])
    cfg = shop_config(admin.url)
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    asyncio.run(sync_once(hub))
    with hub.db.connect() as conn:
        order_id, status = conn.execute(sa.select(t.orders.c.id, t.orders.c.status)).one()
        assert status == "at_wms"
        assert conn.execute(sa.select(sa.func.count()).select_from(t.shipments)).scalar_one() == 0
    yield hub, int(order_id)
    hub.db.dispose()


def _derive(hub: Hub, order_id: int, change: Change, fraction: tuple[int, int] | None,
            likely: OrderStatus | None) -> tuple[str, str, int]:
    """The status derived (and then stored) after ``change``, from ``new``, and the statements
    it took; all of it rolled back."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with hub.db.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(t.orders.update().where(t.orders.c.id == order_id).values(status="new"))
            change(conn, order_id)
            sa.event.listen(conn, "before_cursor_execute", count)
            try:
                derived = recompute_status(conn, order_id, fraction, likely=likely)
            finally:
                sa.event.remove(conn, "before_cursor_execute", count)
            stored = conn.execute(sa.select(t.orders.c.status).where(t.orders.c.id == order_id)).scalar_one()
        finally:
            trans.rollback()
    return derived, stored, len(statements)


@pytest.mark.parametrize("case", list(CASES))
def test_the_shortcut_derives_what_the_full_derivation_does(delivered: Any, case: str) -> None:
    hub, order_id = delivered
    change, likely, fraction, expected, shortcut = CASES[case]
    full = _derive(hub, order_id, change, fraction, None)
    short = _derive(hub, order_id, change, fraction, likely)
    assert full[:2] == (expected, expected), full
    assert short[:2] == (expected, expected), short
    if shortcut == "taken":
        assert short[2] == 1 < full[2], (short, full)  # one guarded UPDATE instead of a read and an UPDATE
    else:  # derived in full, after a guarded UPDATE that wrote nothing or without one
        assert short[2] == full[2] + (shortcut == "tried"), (short, full)
