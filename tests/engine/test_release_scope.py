"""Steps a dead run left in flight are returned to pending for one source's orders only (SQLite
and PostgreSQL)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from orderbridge.engine import steps
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from orderbridge.runners.embedded import sync_once
from tests.conftest import ShopAdmin, shop_config


def test_release_touches_the_in_flight_steps_of_that_sources_orders_only(db_url: str, admin: ShopAdmin) -> None:
    for ref in ("R1", "R2", "R3"):
        admin.order(ref)
    cfg = shop_config(admin.url)
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    asyncio.run(sync_once(hub))
    d = t.deliveries
    with hub.db.begin() as conn:
        shop, wms = hub.connection(conn, "shop"), hub.connection(conn, "wms")
        assert conn.execute(sa.update(d).values(state=steps.IN_FLIGHT)).rowcount == 3
        assert steps.release(conn, d, steps.of_source(d, wms.id)) == 0  # no order comes from the backend
        assert steps.release(conn, d, sa.and_(steps.of_source(d, shop.id), d.c.cust_ref.like("%R1%"))) == 1
        assert steps.release(conn, d, steps.of_source(d, shop.id)) == 2  # the other two; pending ones stay
        assert set(conn.execute(sa.select(d.c.state)).scalars()) == {steps.PENDING}
    hub.db.dispose()
