"""JOOR -> TradeGecko end to end, through the engine and both sandboxes (each in its own process) over
real HTTP, with the JOOR connection in Test Mode: wholesale orders downloaded and acknowledged, booked
in TradeGecko exactly once, a bad order and an unknown UPC in error until fixed, a shipment picked up,
and TradeGecko's stock pushed back to the JOOR warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.support.engine import sync

from orderbridge.config import AppConfig
from orderbridge.demo.sandboxes import SandboxProcess, running
from orderbridge.engine.hub import Hub
from orderbridge.engine.operations import add_alias
from orderbridge.ledger import schema as t

TOKEN = "joor-brand-token"
ORPHAN_UPC = "000111222333"  # in JOOR's style library, unknown to TradeGecko


@pytest.fixture
def sandboxes() -> Iterator[tuple[SandboxProcess, SandboxProcess]]:
    with running(SandboxProcess("joor", {"accounts": [{"id": "brand", "token": TOKEN, "warehouses": ["MAIN"]}],
                                         "seed": 5}),
                 SandboxProcess("tradegecko", {"rate_limit": False, "demo_account": False})) as (joor, tg):
        yield joor, tg


def orders(hub: Hub) -> dict[str, Any]:
    with hub.db.connect() as conn:
        return {r.external_id: r for r in conn.execute(
            sa.select(t.orders.c.external_id, t.orders.c.status, t.orders.c.cust_ref, t.orders.c.error_message))}


def test_joor_to_tradegecko_end_to_end(make_hub: Any, sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    joor, tg = sandboxes
    with joor.admin() as j, tg.admin() as g:
        ids = [str(i) for i in j.post("/accounts/brand/orders/generate", json={"count": 4}).json()["order_ids"]]
        catalog = j.get("/accounts/brand/catalog").json()
        j.post("/accounts/brand/catalog", json={"upc": ORPHAN_UPC, "style_number": "SS26-X900",
                                                 "color_code": "001", "size": "M"}).raise_for_status()
        no_address, orphan = (str(o["order_id"]) for o in j.post("/accounts/brand/orders", json=[
            {"omit": ["shipping_address"]},
            {"line_items": [{"line_id": "1", "style_number": "SS26-X900", "color_code": "001", "size": "M",
                             "upc": ORPHAN_UPC, "quantity": 6, "price": "41.00"}]}]).json())
        made = g.post("/accounts", json={"name": "Brand", "token": "tg-brand-token"}).json()
        tg_acct = made["account"]["id"]
        g.post(f"/accounts/{tg_acct}/variants", json=[
            {"sku": c["upc"], "name": f"{c['style_name']} {c['color_name']} {c['size']}",
             "stock": {"Main Warehouse": 500}} for c in catalog]).raise_for_status()
    cfg = AppConfig.model_validate({
        "runner": {"concurrency": 4, "lease_seconds": 30},
        "merchants": [{"name": "m"}],
        "connections": [
            {"name": "joor", "merchant": "m", "type": "joor", "test_mode": True,  # no base_url: the sandbox host
             "rate_limit": {"calls": 100, "period": 1}, "credentials": {"api_token": TOKEN},
             "settings": {"sandbox_url": joor.url, "production_url": "http://127.0.0.1:9",
                          "warehouse_code": "MAIN"}},
            {"name": "tg", "merchant": "m", "type": "tradegecko", "test_mode": True, "base_url": tg.url,
             "rate_limit": {"calls": 100, "period": 1}, "credentials": {"access_token": made["privileged_token"]}},
        ],
        "routes": [{"source": "joor", "backend": "tg"}],
    })
    hub = make_hub(cfg)
    hub.http_timeout = 5

    sync(hub)
    st = orders(hub)
    assert sorted(st) == sorted([*ids, no_address, orphan])
    assert all(st[o].status == "at_wms" for o in ids), {k: (v.status, v.error_message) for k, v in st.items()}
    assert st[no_address].status == "error" and "shipping address" in st[no_address].error_message
    assert st[orphan].status == "error" and ORPHAN_UPC in st[orphan].error_message
    with joor.admin() as j:
        flags = {str(o["order_id"]): o for o in j.get("/accounts/brand/orders").json()}
    assert all(f["export_state"] == "success" and f["export_count"] == 1 for f in flags.values())

    # The merchant maps the orphan UPC to a TradeGecko SKU; the warehouse ships an order.
    add_alias(hub, "m", ORPHAN_UPC, catalog[0]["upc"])
    sync(hub)
    with tg.admin() as g:
        g.post(f"/accounts/{tg_acct}/ship", json={"reference_number": orders(hub)[ids[0]].cust_ref, "packages": [
            {"tracking_company": "UPS", "tracking_number": "1ZJOOR0001"}]}).raise_for_status()
    sync(hub)
    st = orders(hub)
    assert st[orphan].status == "at_wms"
    assert st[ids[0]].status == "shipped"  # JOOR takes no shipment upload: the order ends here
    with tg.admin() as g:
        counts = g.get(f"/accounts/{tg_acct}/orders/counts").json()
    assert counts["duplicates"] == {} and counts["total"] == 5

    # Stock went back to JOOR's MAIN warehouse, as the ledger computed it, for every SKU.
    with hub.db.connect() as conn:
        pushed = {r.sku: r.pushed_quantity for r in conn.execute(
            sa.select(t.inventory_pushes.c.sku, t.inventory_pushes.c.pushed_quantity))}
        s = t.stock_levels
        available = {r.sku: int(r.total) for r in conn.execute(
            sa.select(s.c.sku, sa.func.sum(s.c.available).label("total")).group_by(s.c.sku))}
    with joor.admin() as j:
        held = {p["upc"]: p for p in j.get("/accounts/brand/inventory").json()}
    assert set(held) == {c["upc"] for c in catalog} | {ORPHAN_UPC}
    assert all(p["warehouse"] == "MAIN" and p["inventory"] == pushed[upc] for upc, p in held.items())
    # Once aliased, a backend SKU is pushed under its alias (the engine's rule): the rest match TradeGecko.
    rest = [c["upc"] for c in catalog[1:]]
    assert {u: held[u]["inventory"] for u in rest} == {u: available[u] for u in rest}  # nothing undelivered
    assert held[ORPHAN_UPC]["inventory"] == available[catalog[0]["upc"]]
    assert any(v < 500 for v in available.values())  # delivered orders took stock in TradeGecko
