"""The whole loop through the API alone: a cart pushes orders, the hub delivers them to a CartRover API
warehouse, the warehouse pulls, acknowledges and ships them, the cart reads the tracking and confirms;
stock pushed by the warehouse comes back through the merchant level."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orderbridge.ledger import schema as t
from tests.api.api_support import Served, order
from tests.support.engine import sync


def ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success_code"] is True, body
    return body.get("response")


def fail(r: Any, code: str = "Invalid") -> str:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success_code"] is False and body["error_code"] == code, body
    assert body["status_message"] == body["message"]
    return str(body["message"])


def test_cart_to_api_warehouse_and_back(api: Served) -> None:
    cart, wms = api.client("acme-cart"), api.client("acme-wms")
    assert cart.post("/cart/orders/cartrover", json=order("A1", ("SKU-1", 2), ("SKU-2", 1))).json() == {
        "success_code": True, "cust_ref": "A1", "order_number": "PO-A1"}
    assert "OrderDuplicate" in fail(cart.post("/cart/orders/cartrover", json=order("A1")), "Failure")
    assert ok(cart.get("/cart/orders/status/A1"))["order_status"] == "new"
    assert ok(wms.get("/merchant/orders/list/new")) == []  # not delivered yet

    sync(api.hub)
    [pulled] = ok(wms.get("/merchant/orders/list/new"))
    assert pulled["cust_ref"] == "PO-A1" and pulled["order_status"] == "new"
    assert pulled["working_ship_code"] == "03" and pulled["orig_carrier"] == "UPS"  # the ship-method mapping
    assert [(i["item"], i["quantity"]) for i in pulled["items"]] == [("SKU-1", "2"), ("SKU-2", "1")]
    assert ok(cart.get("/cart/orders/status/A1"))["order_status"] == "new"  # until the warehouse has it

    assert ok(wms.post("/merchant/orders/update/PO-A1", json={"order_status": "at_wms"}))["order_status"] == "at_wms"
    assert ok(wms.get("/merchant/orders/list/new")) == []
    [at_wms] = ok(wms.get("/merchant/orders/list/at_wms"))
    assert at_wms["delivered_to_wms_date"]
    status = ok(cart.get("/cart/orders/status/A1"))
    assert status["order_status"] == "at_wms" and status["delivered_to_wms_date"] == at_wms["delivered_to_wms_date"]

    first = {"carrier": "UPS", "method": "03", "tracking_no": "1ZFIRST", "date": "2026-11-20T10:00:00+00:00",
             "items": [{"item": "SKU-1", "quantity": 2}]}
    assert ok(wms.post("/merchant/orders/update/PO-A1", json={"order_status": "shipped", "shipments": [first]}))[
        "shipments_added"] == 1
    # the same post again (a retry) adds nothing
    assert ok(wms.post("/merchant/orders/update/PO-A1", json={"order_status": "shipped", "shipments": [first]}))[
        "shipments_already_known"] == 1
    assert "not on order" in fail(wms.post("/merchant/orders/update/PO-A1", json={
        "order_status": "shipped", "shipments": [{"tracking_no": "X", "items": [{"item": "NOPE", "quantity": 1}]}]}))
    sync(api.hub)
    [partial] = ok(cart.get("/cart/orders/list/partial"))
    assert partial["num_shipped"] == "2" and partial["num_to_ship"] == "1"
    assert "only shipped orders" in fail(cart.post("/cart/orders/update/A1", json={"order_status": "confirmed"}),
                                         "Failure")

    wms.post("/merchant/orders/update/PO-A1", json={"order_status": "shipped", "shipments": [
        {"carrier": "FEDEX", "tracking_no": "7SECOND", "items": [{"item": "SKU-2", "quantity": "1"}]}]})
    sync(api.hub)
    status = ok(cart.get("/cart/orders/status/A1"))
    assert status["order_status"] == "shipped"
    assert [(s["carrier"], s["tracking_no"]) for s in status["shipments"]] == [("UPS", "1ZFIRST"), ("FEDEX", "7SECOND")]
    assert status["shipments"][0]["date"] == "2026-11-20T10:00:00+00:00"
    assert [o["cust_ref"] for o in ok(cart.get("/cart/orders/list/shipped"))] == ["A1"]

    assert cart.post("/cart/orders/update/A1", json={"order_status": "confirmed", "shipments": [
        {"tracking_no": "1ZFIRST"}, {"tracking_no": "7SECOND"}]}).json() == {"success_code": True}
    assert ok(cart.get("/cart/orders/status/A1"))["order_status"] == "confirmed"
    assert [o["cust_ref"] for o in ok(cart.get("/cart/orders/list/shipped_or_confirmed"))] == ["A1"]
    with api.hub.db.connect() as conn:
        kinds = list(conn.execute(sa.select(t.order_events.c.kind).order_by(t.order_events.c.id)).scalars())
    assert {"downloaded", "delivered", "acknowledged", "shipment", "confirmed"} <= set(kinds)


def test_stock_pushed_by_the_warehouse(api: Served) -> None:
    wms, merchant = api.client("acme-wms"), api.client("acme-merchant")
    assert ok(wms.post("/merchant/inventory", json=[
        {"sku": "SKU-1", "qty_available": 7, "qty_on_hand": 9, "warehouse": "EAST"},
        {"sku": "SKU-1", "qty_available": "3", "warehouse": "WEST"}, {"sku": "SKU-2", "qty_available": 0}]))[
        "updated"] == 3
    listed = ok(wms.get("/merchant/inventory"))
    assert [(r["sku"], r["qty_available"], r["qty_on_hand"]) for r in listed] == [("SKU-1", 10, 12), ("SKU-2", 0, 0)]
    one = ok(wms.get("/merchant/inventory/SKU-1"))
    assert one["qty_available"] == "10" and {w["warehouse"] for w in one["warehouses"].values()} == {"EAST", "WEST"}
    assert ok(merchant.get("/merchant/inventory")) == []  # the hub's snapshot: not picked up yet
    sync(api.hub)
    assert [(r["sku"], r["qty_available"]) for r in ok(merchant.get("/merchant/inventory"))] == [
        ("SKU-1", 10), ("SKU-2", 0)]
    assert ok(merchant.get("/merchant/product/SKU-1"))["sku"] == "SKU-1"
    assert "qty_available" in fail(wms.post("/merchant/inventory", json=[{"sku": "X", "qty_available": "many"}]))
    assert "not attached" in fail(merchant.post("/merchant/inventory", json=[{"sku": "X", "qty_available": 1}]))


def test_invalid_order_is_kept_in_error_and_corrected(api: Served) -> None:
    cart = api.client("acme-cart")
    bad = order("E1")
    bad["items"][0]["quantity"] = "0"
    assert "quantity" in fail(cart.post("/cart/orders/cartrover", json=bad))
    record = ok(cart.get("/cart/orders/E1"))
    assert record["order_status"] == "error" and "quantity" in record["error_msg"]
    assert [o["cust_ref"] for o in ok(cart.get("/cart/orders/list/error"))] == ["E1"]
    assert cart.post("/cart/orders/cartrover", json=order("E1")).json()["success_code"] is True
    assert ok(cart.get("/cart/orders/E1"))["order_status"] == "new"
    assert "cust_ref" in fail(cart.post("/cart/orders/cartrover", json={"items": [{"item": "A", "quantity": 1}]}))


def test_batch_reports_each_order(api: Served) -> None:
    cart = api.client("acme-cart")
    cart.post("/cart/orders/cartrover", json=order("D1"))
    result = ok(cart.post("/cart/orders/batch", json=[order("B1"), order("D1"), {"items": []}, order("B2")]))
    assert [s["cust_ref"] for s in result["success"]] == ["B1", "B2"]
    assert result["failed"][0]["cust_ref"] == "D1" and "OrderDuplicate" in result["failed"][0]["message"]
    assert result["failed"][1]["index_pos"] == 2 and "cust_ref" in result["failed"][1]["message"]


def test_cancels(api: Served) -> None:
    cart, wms = api.client("acme-cart"), api.client("acme-wms")
    for ref in ("C1", "C2", "C3"):
        cart.post("/cart/orders/cartrover", json=order(ref))
    assert ok(cart.get("/cart/orders/wms_cancel/C1")) == {"success": True,
                                                          "message": "The order will not be sent to the warehouse"}
    assert ok(cart.post("/cart/orders/cancel/cartrover", json={"cust_ref": "C2"}))["success"] is True
    sync(api.hub)
    assert [o["cust_ref"] for o in ok(cart.get("/cart/orders/list/canceled"))] == ["C1", "C2"]
    assert [o["cust_ref"] for o in ok(wms.get("/merchant/orders/list/new"))] == ["PO-C3"]
    assert "wms_cancel" in fail(cart.post("/cart/orders/cancel/cartrover", json={"cust_ref": "C3"}), "Failure")
    assert ok(cart.get("/cart/orders/wms_cancel/C3"))["success"] is True  # not acknowledged yet: withdrawn
    sync(api.hub)
    assert ok(cart.get("/cart/orders/status/C3"))["order_status"] == "canceled"
    assert ok(wms.get("/merchant/orders/status/PO-C3"))["order_status"] == "canceled"
    assert "canceled" in fail(wms.post("/merchant/orders/update/PO-C3", json={"order_status": "at_wms"}), "Failure")


def test_warehouse_key_acts_for_a_merchant(api: Served) -> None:
    for m in ("acme", "beta"):
        api.client(f"{m}-cart").post("/cart/orders/cartrover", json=order(f"{m}-1"))
    sync(api.hub)
    wh = api.client("warehouse")
    merchants = ok(wh.get("/wms/merchant/list"))
    assert [m["name"] for m in merchants] == ["acme", "beta"]
    assert "X-Merchant-Pk" in fail(wh.get("/merchant/orders/list/new"))
    pk = {m["name"]: m["merchant_pk"] for m in merchants}
    beta = ok(wh.get("/merchant/orders/list/new", headers={"X-Merchant-Pk": pk["beta"]}))
    assert [o["cust_ref"] for o in beta] == ["PO-beta-1"]
    ok(wh.post("/merchant/orders/update/PO-beta-1", json={"order_status": "at_wms"},
               headers={"X-Merchant-Pk": pk["beta"]}))
    assert ok(api.client("beta-cart").get("/cart/orders/status/beta-1"))["order_status"] == "at_wms"
    # a warehouse key serving one merchant needs no header
    assert [o["cust_ref"] for o in ok(api.client("acme-warehouse").get("/merchant/orders/list/new"))] == ["PO-acme-1"]
    methods = ok(api.client("acme-cart").get("/wms/shipmethod/list"))
    assert methods == [{"carrier": "UPS", "code": "03", "description": "UPS 03"}]
