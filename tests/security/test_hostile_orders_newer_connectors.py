"""Hostile orders from the newer connectors through the engine, on SQLite and PostgreSQL: a malformed
JOOR order (downloaded from the JOOR sandbox over HTTP) and a malformed order a cart pushes to the
CartRover-compatible API land in error or skipped with their reason, and the others are imported and
delivered as usual. Each hostile order here broke its batch before: a crashed download job (so no JOOR
order came in at all), an HTTP 500 for a whole batch, or an order lost because PostgreSQL refused it."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.api.settings import ApiSettings
from orderbridge.config import AppConfig
from orderbridge.connectors.base import DownloadedOrder, SkippedOrder
from orderbridge.connectors.errors import TransientError
from orderbridge.connectors.houzz.mapping import Program, Rules, Status, classify
from orderbridge.connectors.joor.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix import mapping as wix
from orderbridge.engine.hub import Hub
from orderbridge.engine.intake import store_items
from orderbridge.ledger import schema as t
from tests.api.api_support import order, serve, standard_keys, two_merchants
from tests.conftest import ShopAdmin, shop_config
from tests.connectors.joor.joor_support import Admin, opened
from tests.security.test_hostile_input import HOUZZ_ORDER, WIX_ORDER
from tests.support import shop
from tests.support.engine import sync

TOKEN = "joor-hostile-token"


@pytest.fixture
def joor() -> Iterator[Admin]:
    with ServedApp(create_app({"accounts": [{"id": "brand", "token": TOKEN, "warehouses": ["MAIN"]}],
                               "seed": 3})) as served:
        admin = Admin(served.url)
        yield admin
        admin.http.close()


def joor_to_wms(joor_url: str, wms_url: str) -> AppConfig:
    return AppConfig.model_validate({
        "runner": {"concurrency": 4, "lease_seconds": 30},
        "merchants": [{"name": "m"}],
        "connections": [
            {"name": "joor", "merchant": "m", "type": "joor", "test_mode": True, "base_url": joor_url,
             "rate_limit": {"calls": 1000, "period": 1}, "credentials": {"api_token": TOKEN},
             "settings": {"warehouse_code": "MAIN", "inventory_enabled": False}},
            {"name": "wms", "merchant": "m", "type": "test_wms", "base_url": wms_url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}},
        ],
        "routes": [{"source": "joor", "backend": "wms"}],
    })


def ledger(hub: Hub) -> tuple[dict[str, Any], dict[str, Any]]:
    with hub.db.connect() as conn:
        orders = {r.external_id: r for r in conn.execute(sa.select(
            t.orders.c.external_id, t.orders.c.status, t.orders.c.error_message, t.orders.c.error_fix,
            t.orders.c.customer_name, t.orders.c.cust_ref))}
        skipped = {r.external_id: r for r in conn.execute(sa.select(
            t.skipped_orders.c.external_id, t.skipped_orders.c.reason, t.skipped_orders.c.final))}
    return orders, skipped


def test_hostile_joor_orders_land_in_error_or_skipped_and_the_rest_flows(make_hub: Any, admin: ShopAdmin,
                                                                          joor: Admin) -> None:
    good = joor.generate("brand", 2)
    edge_date, nul_text, huge_qty, no_customer, odd_status, nul_id = joor.orders(
        "brand",
        {"verbatim": {"order_date": "0001-01-01T00:00:00+14:00"}},  # crashed the download job: nothing came in
        {"notes": "gate\x00code 12", "shipping_address": {"name": "Nina\x00", "address_1": "215 King St",
                                                          "city": "Charleston", "country": "US"}},  # lost on PG
        {"line_items": [{"upc": "0123", "quantity": "1e999999999", "price": "9e999999"}]},
        {"customer_code": ""},
        {"verbatim": {"status": "Drafted"}},
        {"verbatim": {"order_id": "A\x00B"}},  # an id the ledger cannot key on
    )
    hub = make_hub(joor_to_wms(joor.url, admin.url))
    sync(hub)
    orders, skipped = ledger(hub)
    status = {k: r.status for k, r in orders.items()}
    assert status == {**dict.fromkeys(good, "at_wms"), nul_text: "at_wms", edge_date: "error", huge_qty: "error"}
    assert orders[nul_text].customer_name == "Nina"
    assert "out of range" in orders[edge_date].error_message and orders[edge_date].error_fix
    assert "quantity" in orders[huge_qty].error_message and orders[huge_qty].error_fix
    assert "customer code" in skipped[no_customer].reason
    assert "'Drafted' is unknown" in skipped[odd_status].reason
    unidentified = [r for k, r in skipped.items() if k.startswith("joor-unidentified-")]
    assert len(unidentified) == 1 and "order_id" in unidentified[0].reason and nul_id not in skipped
    assert sorted(admin.state()["wms"]["creates"]) == sorted(orders[o].cust_ref for o in [*good, nul_text])
    # every order JOOR listed was acknowledged (exported) in the same runs: none is left behind
    assert all(s["export_state"] == "success" for s in joor.states("brand").values())


def test_a_joor_answer_nested_too_deeply_is_retried_not_a_crash() -> None:
    async def deep(request: Request) -> Response:
        return Response("[" * 100_000, media_type="application/json")

    async def go(url: str) -> None:
        async with opened(url, TOKEN) as c:
            with pytest.raises(TransientError, match="unreadable body"):
                await c.client.read_orders({"sync": 0, "count": 1})

    with ServedApp(Starlette(routes=[Route("/v2/orders", deep)])) as served:
        asyncio.run(go(served.url))


def test_hostile_cart_orders_land_in_error_or_are_refused_and_the_rest_flows(make_hub: Any) -> None:
    hub = make_hub(two_merchants())
    for api in serve(hub, ApiSettings(bucket_size=100, leak_seconds=0.6)):
        standard_keys(api)
        cart = api.client("acme-cart")
        line = {"item": "SKU-1", "quantity": 1, "price": "10.00"}
        batch = [order("G1"), order("OVER", items=[{**line, "discount": "9e999999"}]),  # decimal.Overflow: HTTP 500
                 order("EDGE", order_date="0001-01-01T00:00:00+14:00"),  # OverflowError: HTTP 500
                 order("HUGE", items=[{**line, "quantity": "1e99999"}]),  # seconds of CPU per line
                 order("N\x00UL"),  # PostgreSQL refused the reference: HTTP 500
                 order("CITY", ship_city="Spring\x00field"), order("G2")]
        result = cart.post("/cart/orders/batch", json=batch).json()
        assert result["success_code"] is True, result
        assert [s["cust_ref"] for s in result["response"]["success"]] == ["G1", "CITY", "G2"]
        failed = {f["cust_ref"]: f["message"] for f in result["response"]["failed"]}
        assert "plausible amount" in failed["OVER"] and "order_date" in failed["EDGE"]
        assert "quantity" in failed["HUGE"] and "control characters" in failed["N\x00UL"]

        # A form with a line index int() refuses (a superscript two): HTTP 500 before.
        form = "cust_ref=FORM&ship_address_1=1+Main+St&ship_city=Springfield&items[%C2%B2][item]=SKU-1&" \
               "items[%C2%B2][quantity]=2"
        answer = cart.post("/cart/orders/cartrover", content=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
        assert answer["success_code"] is True and answer["cust_ref"] == "FORM", answer
        # A lone surrogate escape: refused with the API's envelope (HTTP 500 before, on SQLite too).
        r = cart.post("/cart/orders/cartrover", content=b'{"cust_ref": "S\\ud800", "items": [{"item": "A"}]}',
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["success_code"] is False and "surrogate" in r.json()["message"]

        sync(api.hub)
        delivered = api.client("acme-wms").get("/merchant/orders/list/new").json()["response"]
        assert sorted(o["cust_ref"] for o in delivered) == ["FORM", "PO-CITY", "PO-G1", "PO-G2"]
        assert next(o for o in delivered if o["cust_ref"] == "PO-CITY")["ship_city"] == "Springfield"
        orders, _ = ledger(api.hub)
        assert sorted(orders) == ["CITY", "EDGE", "FORM", "G1", "G2", "HUGE", "OVER"]
        assert {k for k, r in orders.items() if r.status == "error"} == {"EDGE", "HUGE", "OVER"}
        assert all(orders[k].error_message and orders[k].error_fix for k in ("OVER", "EDGE", "HUGE"))
        listed = cart.get("/cart/orders/list/error").json()["response"]
        assert sorted(o["cust_ref"] for o in listed) == ["EDGE", "HUGE", "OVER"]
        assert all(o["error_msg"] for o in listed)


def test_nul_and_lone_surrogates_from_any_connector_never_lose_an_order(make_hub: Any, admin: ShopAdmin) -> None:
    """A NUL in an order's text made PostgreSQL refuse the whole order (and the download moved on
    without it). Houzz's and JOOR's field readers drop it; Wix maps text as it gets it, so the intake
    drops NUL from every connector's order text; an id it cannot key on is refused with an alert,
    like an over-long one."""
    hub = make_hub(shop_config(admin.url))
    with hub.db.connect() as conn:
        row = hub.connection(conn, "shop")
    rules = Rules(Program.SELLER, Status.NEW, None, UTC)
    houzz_nul = classify({**HOUZZ_ORDER, "OrderId": "H-NUL", "CustomerName": "Zo\x00e",
                          "OrderItems": [{**HOUZZ_ORDER["OrderItems"][0], "Title": "So\x00fa"}]}, rules)
    wix_raw = copy.deepcopy(WIX_ORDER)
    wix_raw["id"], wix_raw["buyerNote"] = "W-NUL", "ring\x00twice"
    wix_nul = wix.to_download_item(wix_raw, wix.Options())
    items = [houzz_nul, wix_nul,
             DownloadedOrder("E-NUL", {"id": "E-NUL"}, error="bad \x00 value \ud800", fix="fix\x00 it"),
             SkippedOrder("S-NUL", reason="status 'X\x00' \ud800", source_status="X\x00"),
             classify({**HOUZZ_ORDER, "OrderId": "16\x0056"}, rules),
             DownloadedOrder("U-\ud800", {"id": "x"}, error="e", fix="f"),
             classify({**HOUZZ_ORDER, "OrderId": "H-OK"}, rules)]
    assert isinstance(houzz_nul, DownloadedOrder) and houzz_nul.order is not None
    assert houzz_nul.order.ship_to.name == "Zoe"  # Houzz's field reader drops it
    assert isinstance(wix_nul, DownloadedOrder) and wix_nul.order is not None
    assert "\x00" in (wix_nul.order.notes or "")  # Wix's mapping lets it through: the intake must cope
    tally = store_items(hub, row, items, "poll")
    assert tally == {"new": 4, "skipped": 1, "refused": 2}, tally
    orders, skipped = ledger(hub)
    assert {k: r.status for k, r in orders.items()} == {"H-NUL": "new", "W-NUL": "new", "E-NUL": "error",
                                                         "H-OK": "new"}
    assert orders["H-NUL"].customer_name == "Zoe" and "\x00" not in orders["E-NUL"].error_message
    assert skipped["S-NUL"].reason.startswith("status 'X'")
    with hub.db.connect() as conn:
        notes = conn.execute(sa.select(t.orders.c.data).where(t.orders.c.external_id == "W-NUL")).scalar_one()
        alerts = [a.message for a in conn.execute(sa.select(t.alerts.c.message))]
    assert notes["notes"] == "ringtwice"
    assert len(alerts) == 2 and all("not imported" in a for a in alerts)
