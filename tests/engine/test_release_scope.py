"""Steps a dead run left in flight are returned to pending for one connection's rows only: its
orders' (a source), or those naming it (a backend's deliveries); SQLite and PostgreSQL."""

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
        assert conn.execute(sa.update(d).where(d.c.cust_ref.like("%R1%")).values(state=steps.DONE)).rowcount == 1
        assert steps.release(conn, d, wms.id) == 0  # no order comes from the backend
        assert steps.release(conn, d, shop.id, by="backend_id") == 0  # nothing is delivered to the shop
        assert steps.release(conn, d, shop.id) == 2  # the shop's two in flight; the one done stays
        assert sorted(conn.execute(sa.select(d.c.state)).scalars()) == [steps.DONE, steps.PENDING, steps.PENDING]
        assert conn.execute(sa.update(d).values(state=steps.IN_FLIGHT)).rowcount == 3
        assert steps.release(conn, d, wms.id, by="backend_id") == 3  # by the deliveries' own column
        assert set(conn.execute(sa.select(d.c.state)).scalars()) == {steps.PENDING}
    hub.db.dispose()
