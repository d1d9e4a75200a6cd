"""The Houzz Seller connector driven by the real engine: download, Process/Charge, delivery to the
test WMS, one Ship confirmation, inventory and cancellations, over HTTP against both sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from houzz_support import Admin, ScaledBudget, creds_of
from tests.conftest import ShopAdmin
from tests.support import shop
from tests.support.engine import sync

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger


@pytest.fixture
def wms() -> Iterator[ShopAdmin]:
    with ServedApp(shop.create_app()) as served:
        yield ShopAdmin(served.url)


def make_hub(tmp_path: Any, houzz_url: str, account: dict[str, str], wms_url: str,
             settings: dict[str, Any]) -> Hub:
    cfg = AppConfig.model_validate({
        "runner": {"concurrency": 4, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}],
        "connections": [
            {"name": "houzz", "merchant": "acme", "type": "houzz_seller", "base_url": houzz_url, "test_mode": True,
             "credentials": creds_of(account), "settings": settings},
            {"name": "wms", "merchant": "acme", "type": "test_wms", "base_url": wms_url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}, "settings": {}},
        ],
        "routes": [{"source": "houzz", "backend": "wms"}],
    })
    hub = Hub(db=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}"), runner=cfg.runner, http_timeout=5,
              budget=ScaledBudget(200))
    apply_config(hub, cfg)
    return hub



def orders(hub: Hub) -> dict[str, Any]:
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status, t.orders.c.cust_ref)).all()
    return {r.external_id: r for r in rows}


def test_orders_flow_through_the_engine(tmp_path: Any, url: str, admin: Admin, wms: ShopAdmin) -> None:
    acc = admin.account()
    a = acc["acct"]
    admin.listings(a, "SOFA-1", "LAMP-2")
    wms.stock({"SOFA-1": 7, "LAMP-2": 0})
    first = admin.order(a, OrderItems=[{"SKU": "SOFA-1", "Quantity": "1", "Price": "10"},
                                       {"SKU": "LAMP-2", "Quantity": "1", "Price": "5"}])
    declined = admin.order(a, Status="InProduction")
    admin.fail_charge(a, declined, "Card declined")
    shipped_before = admin.order(a, Status="Shipped")
    hub = make_hub(tmp_path, url, acc, wms.url, {"tracking_numbers": "joined"})

    sync(hub)
    held = orders(hub)
    assert held[first].status == "at_wms" and admin.status(a, first) == "Charged"
    assert held[declined].status == "error" and shipped_before not in held
    assert len(wms.state()["wms"]["creates"]) == 1
    assert [x["action"] for x in admin.actions(a) if x["OrderId"] == first] == ["Process", "Charge"]
    # 7 in stock minus the 2 of the declined order, held back until it is delivered.
    assert admin.listing(a, "SOFA-1")["Quantity"] == "5" and admin.listing(a, "LAMP-2")["Quantity"] == "0"

    ref = held[first].cust_ref
    wms.ship(ref, [("SOFA-1", 1)], carrier="UPS Ground", tracking="1ZFIRST")
    sync(hub)
    assert admin.actions(a, "Ship") == []  # waits until every line has shipped
    wms.ship(ref, [("LAMP-2", 1)], carrier="FedEx", tracking="7700SECOND")
    sync(hub)
    sync(hub)
    [ship] = admin.actions(a, "Ship")
    assert (ship["ShippingMethod"], ship["TrackingNumber"]) == ("UPS", "1ZFIRST,7700SECOND")
    assert orders(hub)[first].status == "confirmed"

    late = admin.order(a)
    admin.cancel(a, late, by="buyer")
    sync(hub)
    with hub.db.connect() as conn:
        skipped = dict(conn.execute(sa.select(t.skipped_orders.c.external_id, t.skipped_orders.c.reason)).all())
    assert "cancelled" in skipped[late] and "already shipped" in skipped[shipped_before]
    assert len(wms.state()["wms"]["creates"]) == 1


def test_one_workflow_run_takes_each_order_through_all_its_steps(tmp_path: Any, url: str, admin: Admin,
                                                                wms: ShopAdmin) -> None:
    import asyncio

    from orderbridge.engine.jobs import run_job

    acc = admin.account()
    a = acc["acct"]
    placed = [admin.order(a) for _ in range(5)]
    hub = make_hub(tmp_path, url, acc, wms.url, {})

    async def go() -> None:
        with hub.db.connect() as conn:
            row = next(r for r in hub.connections(conn) if r.name == "houzz")
        assert (await run_job(hub, row, "download")).status == "ok"
        run = await run_job(hub, row, "workflow")
        assert run.status == "ok" and run.processed == 10, run  # Process and Charge of each order
        await hub.aclose()

    asyncio.run(go())
    # Charged in that one run: the order's Charge did not wait for a later run.
    assert [admin.status(a, oid) for oid in placed] == ["Charged"] * 5
