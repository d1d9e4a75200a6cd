"""The API as a source and as a backend of the engine, against the TradeGecko and Houzz sandboxes over
HTTP: a cart's order reaches TradeGecko and the cart reads its tracking; a warehouse pulls Houzz orders
through the merchant level, acknowledges and ships them (confirmed at Houzz) and pushes stock to Houzz."""

from __future__ import annotations

from typing import Any

from orderbridge.config import AppConfig
from orderbridge.connectors.houzz.sandbox import create_app as houzz_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.sandbox import create_app as tg_app
from tests.api.api_support import order, serve
from tests.api.test_flow import ok
from tests.flows.flow_support import Admin, connection, orders
from tests.support.engine import sync


def _config(conns: list[dict[str, Any]], routes: list[dict[str, Any]]) -> AppConfig:
    return AppConfig.model_validate({"runner": {"concurrency": 4, "lease_seconds": 30}, "merchants": [{"name": "acme"}],
                                     "connections": conns, "routes": routes})


def test_cart_order_reaches_tradegecko_and_tracking_comes_back(make_hub: Any) -> None:
    with ServedApp(tg_app({"rate_limit": False})) as served:
        tg = Admin(served.url)
        made = tg.call("POST", "/accounts", {"name": "Cart store"})
        aid, loc = made["account"]["id"], made["account"]["primary_location_id"]
        tg.call("POST", f"/accounts/{aid}/variants", [
            {"sku": "CHAIR-1", "name": "Chair", "retail_price": "40", "stock": {str(loc): 10}}])
        hub = make_hub(_config([
            {"name": "cart", "merchant": "acme", "type": "cartrover_cart"},
            connection("tg", "tradegecko", served.url, {"access_token": made["privileged_token"]})],
            [{"source": "cart", "backend": "tg"}]))
        for api in serve(hub):
            api.key("cart", "cart", connections=["cart"])
            with api.client("cart") as cart:
                assert cart.post("/cart/orders/cartrover", json=order("WEB-1001", ("CHAIR-1", 2))).json()[
                    "success_code"] is True
                sync(hub, times=2)
                ref = orders(hub)["WEB-1001"].cust_ref
                [tg_order] = tg.call("GET", f"/accounts/{aid}/orders", reference_number=ref)
                assert ok(cart.get("/cart/orders/status/WEB-1001"))["order_status"] == "at_wms"
                tg.call("POST", f"/accounts/{aid}/ship", {"reference_number": ref, "finalize": True, "packages": [
                    {"lines": [{"sku": "CHAIR-1", "quantity": 2}], "tracking_company": "UPS",
                     "tracking_number": "1ZCARTTG"}]})
                sync(hub, times=2)
                status = ok(cart.get("/cart/orders/status/WEB-1001"))
                assert status["order_status"] == "shipped"
                assert [(s["tracking_no"], s["carrier"]) for s in status["shipments"]] == [("1ZCARTTG", "UPS")]
                [shipped] = ok(cart.get("/cart/orders/list/shipped"))
                assert shipped["cust_ref"] == "WEB-1001" and shipped["num_shipped"] == "2"
                ok(cart.post("/cart/orders/update/WEB-1001", json={"order_status": "confirmed",
                                                                   "shipments": [{"tracking_no": "1ZCARTTG"}]}))
                assert ok(cart.get("/cart/orders/status/WEB-1001"))["order_status"] == "confirmed"
        counts = tg.call("GET", f"/accounts/{aid}/orders/counts")
        assert counts["total"] == 1 and not counts.get("duplicates") and tg_order["id"]


def test_warehouse_pulls_houzz_orders_ships_them_and_pushes_stock(make_hub: Any) -> None:
    with ServedApp(houzz_app({"rate_limit": False, "accounts": []})) as served:
        houzz = Admin(served.url)
        acct = {"id": "wh1", "app_name": "wh-app", "user_name": "wh-user",
                "token": "dG9rZW4td2gtMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMQ==", "program": "seller"}
        houzz.call("POST", "/accounts", acct)
        houzz.call("POST", "/accounts/wh1/listings", [{"SKU": "SOFA-1", "Quantity": 5}, {"SKU": "LAMP-2",
                                                                                        "Quantity": 5}])
        ids = []
        for sku in ("SOFA-1", "LAMP-2"):
            made = houzz.call("POST", "/accounts/wh1/orders", {
                "CustomerName": "Jane Q Doe", "Address": {"Address": "1 Main St", "City": "Springfield",
                                                          "State": "Illinois", "Zip": "62701", "Phone": "555-0100"},
                "OrderItems": [{"Type": "Product", "SKU": sku, "Title": sku, "Quantity": "1", "Price": "100.00"}]})
            ids.append(str(made[0]["OrderId"]))
        hub = make_hub(_config([
            connection("houzz", "houzz_seller", served.url, {"app_id": acct["app_name"],
                                                             "username": acct["user_name"], "token": acct["token"]}),
            {"name": "wms", "merchant": "acme", "type": "cartrover_wms"}], [{"source": "houzz", "backend": "wms"}]))
        for api in serve(hub):
            api.key("wms", "merchant", connections=["wms"])
            sync(hub, times=2)
            with api.client("wms") as wms:
                pulled = ok(wms.get("/merchant/orders/list/new", params={"limit": 1}))
                pulled += ok(wms.get("/merchant/orders/list/new", params={"limit": 1, "page": 2}))
                assert sorted(o["items"][0]["item"] for o in pulled) == ["LAMP-2", "SOFA-1"]
                for o in pulled:
                    ok(wms.post(f"/merchant/orders/update/{o['cust_ref']}", json={"order_status": "at_wms"}))
                assert len(ok(wms.get("/merchant/orders/list/at_wms"))) == 2
                for n, o in enumerate(pulled):
                    ok(wms.post(f"/merchant/orders/update/{o['cust_ref']}", json={
                        "order_status": "shipped", "shipments": [{"carrier": "UPS", "tracking_no": f"1ZWH{n}",
                                                                  "items": [{"item": o["items"][0]["item"],
                                                                             "quantity": 1}]}]}))
                ok(wms.post("/merchant/inventory", json=[{"sku": "SOFA-1", "qty_available": 7, "qty_on_hand": 8}]))
                sync(hub, times=3)
                assert {ok(wms.get(f"/merchant/orders/status/{o['cust_ref']}"))["order_status"] for o in pulled} == {
                    "confirmed"}
        ships = [a for a in houzz.call("GET", "/accounts/wh1/actions", action="Ship") if a.get("result", "ok") == "ok"]
        assert sorted(a["OrderId"] for a in ships) == sorted(ids)
        assert "1ZWH0" in str(ships) and "1ZWH1" in str(ships)
        assert all(orders(hub)[i].status == "confirmed" for i in ids)
        updates = houzz.call("GET", "/accounts/wh1/inventory_updates")
        assert [(u["SKU"], u["Quantity"]) for u in updates if u["SKU"] == "SOFA-1"][-1] == ("SOFA-1", "7")
