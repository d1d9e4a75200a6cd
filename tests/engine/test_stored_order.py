"""An order as the steps read it: the order and the source's payload as the ledger's JSON text,
decoded on first use, equal to what the ledger's JSON columns hold (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from orderbridge.config import RouteOptions
from orderbridge.domain.models import Order
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.engine.rules import delivery_request, order_by_id, stored_order
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from orderbridge.ledger.prepared import ROW_ID
from orderbridge.runners.embedded import sync_once
from tests.conftest import ShopAdmin, shop_config


def test_orders_read_as_text_decode_to_what_the_ledger_holds(db_url: str, admin: ShopAdmin) -> None:
    admin.order("U1", [("SKU-1", 2), ("SKU-2", 1)], name="Zoë Łukasiewicz \"Ziggy\"", street="Straße 5 \\ Hof")
    admin.order("U2")
    cfg = shop_config(admin.url)
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    asyncio.run(sync_once(hub))
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders)).all()
        assert len(rows) == 2
        names: set[str] = set()
        for row in rows:
            text_row = conn.execute(order_by_id(), {ROW_ID: row.id}).one()
            assert isinstance(text_row.data, str) and isinstance(text_row.raw, str)
            stored = stored_order(text_row)
            assert stored.external_id == row.external_id and stored.order_id == row.id
            assert stored._order == text_row.data  # nothing decoded until asked for
            assert stored.order == Order.model_validate(row.data)
            assert dict(stored.raw) == row.raw
            request = delivery_request(conn, merchant_id=hub.connection(conn, "shop").merchant_id,
                                       order_row=text_row, route_options=RouteOptions(), backend_options=None,
                                       source_name="shop", backend_name="wms")
            assert request.order.lines == Order.model_validate(row.data).lines
            names.add(stored.order.ship_to.name)
    assert names == {"Zoë Łukasiewicz \"Ziggy\"", "Ada Lovelace"}
    hub.db.dispose()
