"""Any source feeds any backend: Wix, Houzz, TradeGecko and Holded through the real engine and ledger,
each against its sandbox over HTTP. Counts at the backends prove that no document is created twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orderbridge.connectors.holded.sandbox import create_app as holded_app
from orderbridge.connectors.houzz.sandbox import create_app as houzz_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.sandbox import create_app as tg_app
from orderbridge.connectors.wix.sandbox import create_app as wix_app
from orderbridge.web.app import create_app as web_app
from tests.flows.flow_support import (
    HOOKS,
    Admin,
    Holded,
    Wix,
    config,
    connection,
    delivery_errors,
    orders,
    skipped,
    wix_connection,
)
from tests.support.engine import sync, wait_for

MUG = [{"sku": "MUG-1", "name": "Mug", "price": 12, "stock": 20}]


@pytest.fixture(scope="module")
def wix() -> Iterator[Wix]:
    with ServedApp(wix_app(HOOKS)) as served:
        yield Wix(served.url)


@pytest.fixture(scope="module")
def holded() -> Iterator[Holded]:
    with ServedApp(holded_app({"rate_limit_enabled": False, "accounts": []})) as served:
        yield Holded(served.url)


def wix_holded(wix: Wix, site: dict[str, Any], holded: Holded, key: str, options: dict[str, Any],
               webhook_key: str = "") -> Any:
    return config([wix_connection("wix", wix.url, site, webhook_key),
                   connection("holded", "holded", holded.url, {"api_key": key})],
                  [{"source": "wix", "backend": "holded", "backend_options": options}])


def test_wix_to_holded_receipts_wait_for_payment(make_hub: Any, wix: Wix, holded: Holded) -> None:
    site = wix.site({"MUG-1": 20})
    key = holded.account(MUG)
    paid = wix.order(site)
    unpaid = wix.order(site, paymentStatus="NOT_PAID", status="PENDING")
    refunded = wix.order(site)
    wix.act(site, refunded, "refund")
    cancelled = wix.order(site)
    wix.act(site, cancelled, "cancel")
    hub = make_hub(wix_holded(wix, site, holded, key, {"document_type": "salesreceipt"}))
    sync(hub)
    [receipt] = holded.docs(key)
    assert receipt["docType"] == "salesreceipt"
    assert holded.units(key, "MUG-1") == 18  # a receipt moves stock at once
    held = orders(hub)
    assert held[paid].status == "at_wms" and held[unpaid].status != "at_wms"
    assert delivery_errors(hub)[unpaid] == "waiting for payment"
    reasons = skipped(hub)
    assert refunded in reasons and cancelled in reasons
    assert "refunded" in reasons[refunded] and "cancelled" in reasons[cancelled]
    assert refunded not in held and cancelled not in held

    wix.act(site, unpaid, "pay")
    sync(hub, times=2)
    docs = holded.docs(key)
    assert len(docs) == 2 and {d["docType"] for d in docs} == {"salesreceipt"}
    assert orders(hub)[unpaid].status == "at_wms" and holded.units(key, "MUG-1") == 16
    assert refunded not in orders(hub) and cancelled not in orders(hub)


def test_wix_to_holded_sales_order_ships_once_and_stock_returns(make_hub: Any, wix: Wix,
                                                                 holded: Holded) -> None:
    site = wix.site({"MUG-1": 99})
    key = holded.account([{"sku": "MUG-1", "name": "Mug", "price": 12, "stock": 10}])
    unpaid = wix.order(site, paymentStatus="NOT_PAID", status="PENDING")
    hub = make_hub(wix_holded(wix, site, holded, key, {"document_type": "salesorder"}))
    sync(hub)
    [doc] = holded.docs(key)
    assert doc["docType"] == "salesorder" and orders(hub)[unpaid].status == "at_wms"
    assert holded.units(key, "MUG-1") == 10  # a sales order moves stock on "Send units"
    assert wix.fulfillments(site) == {}
    holded.send(key, doc["id"], carrier="ups", tracking="1ZFLOW1")
    sync(hub, times=3)
    [fulfillment] = wix.fulfillments(site)[unpaid]
    assert fulfillment["trackingInfo"]["trackingNumber"] == "1ZFLOW1"
    assert orders(hub)[unpaid].status == "confirmed"
    assert holded.units(key, "MUG-1") == 8
    assert wix.inventory(site)["MUG-1"] == 8
    assert len(holded.docs(key)) == 1


def test_wix_webhook_and_poll_bring_one_document(make_hub: Any, wix: Wix, holded: Holded) -> None:
    site = wix.site({"MUG-1": 20})
    key = holded.account(MUG)
    cfg = wix_holded(wix, site, holded, key, {"document_type": "salesorder"}, wix.public_key())
    hub = make_hub(cfg)
    web_hub = make_hub(cfg)  # the web process: its own hub over the same ledger
    with ServedApp(web_app(web_hub, with_runner=False)) as web:
        wix.call("POST", f"/sites/{site['siteId']}/webhooks", {"url": f"{web.url}/webhooks/wix"})
        oid = wix.order(site)
        wait_for(lambda: any(d["state"] == "delivered" and d["entityId"] == oid for d in wix.deliveries(site)))
        assert oid in orders(hub)  # the webhook brought it
        sync(hub, times=2)  # and the poll reads it again
        assert [d["docType"] for d in holded.docs(key)] == ["salesorder"]
        assert list(orders(hub)) == [oid]

        quiet = wix.order(site, events=False)
        forged = wix.call("POST", f"/sites/{site['siteId']}/webhooks/forge", {"orderId": quiet,
                          "eventType": "wix.ecom.v1.order_created"})
        attempts = wait_for(lambda: [d["attempts"] for d in wix.deliveries(site)
                                     if d["id"] == forged["id"] and d["attempts"]])
        assert attempts[0][0]["status"] == 401
        assert quiet not in orders(hub) and len(holded.docs(key)) == 1


def test_two_wix_stores_into_one_holded_account(make_hub: Any, wix: Wix, holded: Holded) -> None:
    key = holded.account([])
    north = holded.call("POST", f"/accounts/{key}/seed", {"warehouses": [{"name": "North"}]})["warehouses"]["North"]
    main = holded.stock(key)["default_warehouse"]
    holded.call("POST", f"/accounts/{key}/seed", {"products": [
        {"sku": "MUG-1", "name": "Mug", "price": 12, "stock": {main: 20, north: 20}}]})
    shop_a, shop_b = wix.site({"MUG-1": 20}), wix.site({"MUG-1": 20})
    a_orders = [wix.order(shop_a) for _ in range(2)]
    b_orders = [wix.order(shop_b, lines=[{"sku": "MUG-1", "quantity": 3, "price": "12.00"}]) for _ in range(2)]
    cfg = config([wix_connection("wix-a", wix.url, shop_a), wix_connection("wix-b", wix.url, shop_b),
                  connection("holded", "holded", holded.url, {"api_key": key})],
                 [{"source": "wix-a", "backend": "holded", "backend_options": {"document_type": "salesreceipt"}},
                  {"source": "wix-b", "backend": "holded",
                   "backend_options": {"document_type": "salesorder", "warehouse_id": north}}])
    hub = make_hub(cfg)
    sync(hub, times=2)
    docs = holded.docs(key)
    assert sorted(d["docType"] for d in docs) == ["salesorder"] * 2 + ["salesreceipt"] * 2
    assert holded.units(key, "MUG-1", main) == 16 and holded.units(key, "MUG-1", north) == 20
    assert {o for o, row in orders(hub).items() if row.status == "at_wms"} == set(a_orders + b_orders)
    for doc in docs:
        if doc["docType"] == "salesorder":
            holded.send(key, doc["id"], carrier="ups", tracking=f"1Z{doc['id'][-6:]}")
    sync(hub, times=2)
    assert holded.units(key, "MUG-1", main) == 16 and holded.units(key, "MUG-1", north) == 14
    assert len(holded.docs(key)) == 4
    assert set(wix.fulfillments(shop_b)) == set(b_orders) and wix.fulfillments(shop_a) == {}


def test_wix_to_tradegecko_ships_back_once(make_hub: Any, wix: Wix) -> None:
    site = wix.site({"MUG-1": 20})
    with ServedApp(tg_app({"rate_limit": False})) as served:
        tg = Admin(served.url)
        made = tg.call("POST", "/accounts", {"name": "Flow store"})
        aid, loc = made["account"]["id"], made["account"]["primary_location_id"]
        tg.call("POST", f"/accounts/{aid}/variants", [
            {"sku": "MUG-1", "name": "Mug", "retail_price": "12", "stock": {str(loc): 10}}])
        oid = wix.order(site)
        hub = make_hub(config([wix_connection("wix", wix.url, site),
                               connection("tg", "tradegecko", served.url,
                                          {"access_token": made["privileged_token"]})],
                              [{"source": "wix", "backend": "tg"}]))
        sync(hub, times=2)
        ref = orders(hub)[oid].cust_ref
        [tg_order] = tg.call("GET", f"/accounts/{aid}/orders", reference_number=ref)
        tg.call("POST", f"/accounts/{aid}/ship", {"reference_number": ref, "finalize": True, "packages": [
            {"lines": [{"sku": "MUG-1", "quantity": 2}], "tracking_company": "UPS",
             "tracking_number": "1ZTGFLOW"}]})
        sync(hub, times=3)
        [fulfillment] = wix.fulfillments(site)[oid]
        assert fulfillment["trackingInfo"]["trackingNumber"] == "1ZTGFLOW"
        counts = tg.call("GET", f"/accounts/{aid}/orders/counts")
        assert counts["total"] == 1 and not counts.get("duplicates") and tg_order["id"]
        assert orders(hub)[oid].status == "confirmed"


def test_houzz_to_holded_ships_back_once(make_hub: Any, holded: Holded) -> None:
    key = holded.account([{"sku": "SOFA-1", "name": "Sofa", "price": 100, "stock": 5}])
    with ServedApp(houzz_app({"rate_limit": False, "accounts": []})) as served:
        houzz = Admin(served.url)
        acct = {"id": "flow1", "app_name": "flow-app", "user_name": "flow-user",
                "token": "dG9rZW4tZmxvdy0wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMQ==", "program": "seller"}
        houzz.call("POST", "/accounts", acct)
        houzz.call("POST", "/accounts/flow1/listings", [{"SKU": "SOFA-1", "Quantity": 5}])
        made = houzz.call("POST", "/accounts/flow1/orders", {
            "CustomerName": "Jane Q Doe", "Address": {"Address": "1 Main St", "City": "Springfield",
                                                      "State": "Illinois", "Zip": "62701", "Phone": "555-0100"},
            "OrderItems": [{"Type": "Product", "SKU": "SOFA-1", "Title": "Sofa", "Quantity": "1",
                            "Price": "100.00", "Shipping": "5.00", "Tax": "8.00"}]})
        oid = str(made[0]["OrderId"])
        hub = make_hub(config([connection("houzz", "houzz_seller", served.url, {
            "app_id": acct["app_name"], "username": acct["user_name"], "token": acct["token"]}),
            connection("holded", "holded", holded.url, {"api_key": key})],
            [{"source": "houzz", "backend": "holded", "backend_options": {"document_type": "salesorder"}}]))
        sync(hub, times=2)
        [doc] = holded.docs(key)
        assert orders(hub)[oid].status == "at_wms"
        holded.send(key, doc["id"], carrier="ups", tracking="1ZHOUZZ")
        sync(hub, times=3)
        ships = [a for a in houzz.call("GET", "/accounts/flow1/actions", action="Ship")
                 if a.get("result", "ok") == "ok"]
        assert len(ships) == 1 and ships[0]["OrderId"] == oid and "1ZHOUZZ" in str(ships[0])
        assert len(holded.docs(key)) == 1 and orders(hub)[oid].status == "confirmed"
