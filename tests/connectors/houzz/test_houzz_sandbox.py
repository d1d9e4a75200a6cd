"""The Houzz sandbox over HTTP, as a client other than ours would see it."""

from __future__ import annotations

import re
import time
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from houzz_support import Admin, order_body

from orderbridge.connectors.houzz.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp

HTTP = httpx.Client(timeout=10)  # one client: building one per call costs more than the call


def headers(acc: dict[str, str], **override: str) -> dict[str, str]:
    h = {"X-HOUZZ-API-APP-NAME": acc["app_id"], "X-HOUZZ-API-USER-NAME": acc["username"],
         "X-HOUZZ-API-SSL-TOKEN": acc["token"]}
    h.update(override)
    return h


def get(url: str, acc: dict[str, str], method: str, fmt: str = "json", **params: Any) -> httpx.Response:
    return HTTP.get(url + "/api", params={"format": fmt, "method": method, **params}, headers=headers(acc))


def post(url: str, acc: dict[str, str], method: str, body: str) -> httpx.Response:
    return HTTP.post(url + "/api", params={"format": "xml", "method": method}, content=body, headers=headers(acc))


def xml(resp: httpx.Response) -> ET.Element:
    return ET.fromstring(resp.content)


def update(url: str, acc: dict[str, str], oid: str, action: str, **extra: str) -> ET.Element:
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    body = f"<UpdateOrderRequest><OrderId>{oid}</OrderId><Action>{action}</Action>{fields}</UpdateOrderRequest>"
    return xml(post(url, acc, "updateOrder", body))


def error_code(root: ET.Element) -> str:
    return root.findtext("Errors/Error/ErrorCode") or ""


def test_envelope_in_json_and_xml(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])
    data = get(url, acc, "getOrders").json()
    assert data["Ack"] == "Success" and data["Version"] == "149"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\dZ", data["Timestamp"])
    assert data["TotalOrderCount"] == "1" and data["Orders"][0]["OrderId"] == oid
    item = data["Orders"][0]["OrderItems"][0]
    assert item["Quantity"] == "2" and item["Price"] == "100.00" and "Cost" in item  # numbers as strings
    assert data["Orders"][0]["OrderTotal"] == "226.00"  # 2*100 + 2*(5+8) + 0 flat shipping
    root = xml(get(url, acc, "getOrders", fmt="xml"))
    assert root.tag == "GetOrdersResponse" and root.findtext("Ack") == "Success"
    assert root.findtext("Orders/Order/OrderItems/OrderItem/SKU") == "SOFA-1"
    assert xml(get(url, acc, "getOrder", fmt="xml", OrderId=oid)).tag == "GetOrderResponse"


def test_names_and_status_values_are_case_insensitive(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])
    admin.set_status(acc["acct"], oid, "InProduction")
    for status in ("InProduction", "in production", "PROCESSING", "in_production"):
        resp = HTTP.get(url + "/api", params={"FORMAT": "json", "Method": "GETORDERS", "status": status,
                                               "numberofitems": "5"}, headers=headers(acc))
        assert resp.json()["TotalOrderCount"] == "1", status
    assert get(url, acc, "getOrders", Status="Charged").json()["TotalOrderCount"] == "0"
    assert get(url, acc, "getOrders", Status="Active").json()["TotalOrderCount"] == "1"
    assert get(url, acc, "getOrders", Status="Bogus").json()["Errors"][0]["ErrorCode"] == "InvalidParameter"


@pytest.mark.parametrize(("header", "words"), [
    ("X-HOUZZ-API-APP-NAME", "Application ID"), ("X-HOUZZ-API-USER-NAME", "User name"),
    ("X-HOUZZ-API-SSL-TOKEN", "token"),
])
def test_each_wrong_credential_is_refused(url: str, admin: Admin, header: str, words: str) -> None:
    acc = admin.account()
    resp = HTTP.get(url + "/api", params={"format": "json", "method": "getOrders"},
                     headers=headers(acc, **{header: "wrong"}))
    assert resp.status_code == 200
    err = resp.json()["Errors"][0]
    assert resp.json()["Ack"] == "Error" and err["ErrorCode"] == "InvalidCredentials"
    assert words in err["LongMessage"]
    missing = HTTP.get(url + "/api", params={"format": "json", "method": "getOrders"})
    assert missing.json()["Errors"][0]["ErrorCode"] == "InvalidCredentials"


def test_auth_failures_can_answer_401() -> None:
    with ServedApp(create_app({"auth_failure_status": 401, "accounts": []})) as s:
        acc = Admin(s.url).account(scopes=["inventory"])
        bad = HTTP.get(s.url + "/api", params={"format": "xml", "method": "getOrders"},
                        headers=headers(acc, **{"X-HOUZZ-API-SSL-TOKEN": "nope"}))
        assert bad.status_code == 401 and error_code(xml(bad)) == "InvalidCredentials"
        denied = get(s.url, acc, "getOrders")
        assert denied.status_code == 403 and denied.json()["Errors"][0]["ErrorCode"] == "PermissionDenied"


def test_scopes_gate_methods(url: str, admin: Admin) -> None:
    inventory_only = admin.account(scopes=["inventory"])
    admin.listings(inventory_only["acct"], "A")
    err = get(url, inventory_only, "getOrders").json()["Errors"][0]
    assert err["ErrorCode"] == "PermissionDenied" and "List and process orders" in err["LongMessage"]
    assert get(url, inventory_only, "getListings").json()["Ack"] == "Success"
    orders_only = admin.account(scopes=["orders"])
    assert get(url, orders_only, "getListings").json()["Errors"][0]["ErrorCode"] == "PermissionDenied"


def test_unknown_method_and_other_paths(url: str, admin: Admin) -> None:
    acc = admin.account()
    assert get(url, acc, "getWidgets").json()["Errors"][0]["ErrorCode"] == "UnknownMethod"
    assert HTTP.get(url + "/v2/orders", headers=headers(acc)).status_code == 404
    resp = HTTP.get(url + "/api", params={"format": "yaml", "method": "getOrders"}, headers=headers(acc))
    assert error_code(xml(resp)) == "InvalidParameter"


def test_paging_reports_the_total_and_caps_the_page() -> None:
    with ServedApp(create_app({"max_page_size": 7, "accounts": [], "rate_limit": False})) as s:
        admin = Admin(s.url)
        acc = admin.account()
        ids = set(admin.bulk(acc["acct"], 25))
        seen: list[str] = []
        start = 0
        while True:
            data = get(s.url, acc, "getOrders", Start=start, NumberOfItems=1000).json()
            assert data["TotalOrderCount"] == "25"
            page = data["Orders"]
            assert len(page) <= 7
            if not page:
                break
            seen += [o["OrderId"] for o in page]
            start += len(page)
        assert len(seen) == len(set(seen)) == 25 and set(seen) == ids  # no repeats, nothing lost
        created = [get(s.url, acc, "getOrder", OrderId=o).json()["Order"]["Created"] for o in seen]
        assert created == sorted(created)


def test_from_and_to_filter_on_created(url: str, admin: Admin) -> None:
    acc = admin.account()
    a = admin.order(acc["acct"], Created="2026-03-01 23:30:00")
    b = admin.order(acc["acct"], Created="2026-03-02 08:00:00")
    admin.order(acc["acct"], Created="2026-03-03 00:00:01")

    def ids(**params: str) -> list[str]:
        return [o["OrderId"] for o in get(url, acc, "getOrders", **params).json()["Orders"]]

    assert ids(From="2026-03-01", To="2026-03-02") == [a, b]  # a date-only To is the whole day
    assert ids(From="2026-03-02 08:00:00", To="2026-03-03 00:00:00+00:00") == [b]
    assert ids(From="2026-03-02T07:00:00-01:00", To="2026-03-02T08:00:00Z") == [b]
    assert get(url, acc, "getOrders", From="yesterday").json()["Errors"][0]["ErrorCode"] == "InvalidParameter"


# Seller state machine: (status before, action, extra fields) -> new status, or the error code.
TABLE = [
    ("Placed", "Process", {}, "InProduction"), ("Placed", "Charge", {}, "InvalidStateTransition"),
    ("Placed", "Ship", {"ShippingMethod": "UPS", "TrackingNumber": "1Z"}, "InvalidStateTransition"),
    ("Placed", "Cancel", {"CancelCode": "1"}, "Canceled"),
    ("InProduction", "Process", {}, "InProduction"), ("InProduction", "Charge", {}, "Charged"),
    ("InProduction", "Ship", {"ShippingMethod": "UPS", "TrackingNumber": "1Z"}, "InvalidStateTransition"),
    ("Charged", "Process", {}, "Charged"), ("Charged", "Charge", {}, "Charged"),
    ("Charged", "Ship", {"ShippingMethod": "UPS", "TrackingNumber": "1Z"}, "Shipped"),
    ("Charged", "Cancel", {"CancelCode": "2"}, "Canceled"),
    ("FailedToCharge", "Process", {}, "InvalidStateTransition"), ("FailedToCharge", "Charge", {}, "Charged"),
    ("FailedToCharge", "Ship", {"ShippingMethod": "UPS", "TrackingNumber": "1Z"}, "InvalidStateTransition"),
    ("Shipped", "Process", {}, "InvalidStateTransition"), ("Shipped", "Charge", {}, "InvalidStateTransition"),
    ("Shipped", "Cancel", {"CancelCode": "1"}, "InvalidStateTransition"),
    ("Canceled", "Process", {}, "InvalidStateTransition"), ("Canceled", "Charge", {}, "InvalidStateTransition"),
    ("Canceled", "Ship", {"ShippingMethod": "UPS", "TrackingNumber": "1Z"}, "InvalidStateTransition"),
    ("Canceled", "Cancel", {"CancelCode": "1"}, "Canceled"),
]


@pytest.mark.parametrize(("before", "action", "extra", "expected"), TABLE)
def test_seller_state_machine(url: str, admin: Admin, before: str, action: str, extra: dict[str, str],
                              expected: str) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])
    admin.set_status(acc["acct"], oid, before)
    root = update(url, acc, oid, action, **extra)
    if expected == "InvalidStateTransition":
        assert root.findtext("Ack") == "Error" and error_code(root) == expected
        assert admin.status(acc["acct"], oid) == before
    else:
        assert root.findtext("Ack") == "Success", ET.tostring(root)
        assert root.findtext("Status") == expected and admin.status(acc["acct"], oid) == expected
    last = admin.state(acc["acct"], oid)["history"][-1]
    assert last["action"] == action and last["result"] in ("ok", "noop", "error")


def test_ship_on_shipped_order_is_idempotent_only_with_the_same_tracking(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    assert update(url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1ZA").findtext("Ack") == "Success"
    assert update(url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1ZA").findtext("Ack") == "Success"
    assert error_code(update(url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1ZB")) == \
        "InvalidStateTransition"
    ships = admin.actions(acc["acct"], "Ship")
    assert [a["result"] for a in ships] == ["ok", "noop", "error"]
    assert ships[0]["ShippingMethod"] == "UPS" and ships[0]["tracking_list"] == ["1ZA"]


def test_update_order_validation(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    assert error_code(update(url, acc, oid, "Cancle", CancelCode="1")) == "InvalidAction"
    assert error_code(update(url, acc, oid, "Cancel", CancelCode="soon")) == "InvalidParameter"
    assert error_code(update(url, acc, oid, "Ship", ShippingMethod="UPS")) == "MissingParameter"
    assert error_code(update(url, acc, "0000-0000-0000-0000", "Process")) == "OrderNotFound"
    assert error_code(xml(post(url, acc, "updateOrder", "<UpdateOrderRequest><OrderId>"))) == "InvalidParameter"
    dtd = '<!DOCTYPE x [<!ENTITY a "b">]><UpdateOrderRequest><OrderId>&a;</OrderId></UpdateOrderRequest>'
    assert error_code(xml(post(url, acc, "updateOrder", dtd))) == "InvalidParameter"
    assert error_code(xml(post(url, acc, "updateOrder", '{"OrderId": "1"}'))) == "InvalidParameter"
    wrong_root = f"<UpdateInventoryRequest><OrderId>{oid}</OrderId></UpdateInventoryRequest>"
    assert error_code(xml(post(url, acc, "updateOrder", wrong_root))) == "InvalidParameter"
    assert get(url, acc, "updateOrder").json()["Errors"][0]["ErrorCode"] == "InvalidParameter"  # GET on a write
    cdata = f"<UpdateOrderRequest><OrderId><![CDATA[{oid}]]></OrderId><Action>Cancel</Action>" \
            "<CancelCode>4</CancelCode><Comments>bad address</Comments></UpdateOrderRequest>"
    assert xml(post(url, acc, "updateOrder", cdata)).findtext("Status") == "Canceled"
    shown = get(url, acc, "getOrder", OrderId=oid).json()["Order"]
    assert shown["CancelCode"] == "4" and shown["CancelComments"] == "bad address"


def test_strict_tracking_and_length_options() -> None:
    with ServedApp(create_app({"strict_tracking": True, "tracking_max_length": 10, "accounts": []})) as s:
        admin = Admin(s.url)
        acc = admin.account()
        oid = admin.order(acc["acct"], Status="Charged")
        assert error_code(update(s.url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1Z1,1Z2")) == \
            "InvalidParameter"
        assert error_code(update(s.url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1Z" * 6)) == \
            "InvalidParameter"
        assert update(s.url, acc, oid, "Ship", ShippingMethod="UPS", TrackingNumber="1Z1").findtext("Ack") == \
            "Success"


def test_vendor_orders_arrive_charged_and_refuse_process_and_charge(url: str, admin: Admin) -> None:
    acc = admin.account("vendor")
    oid = admin.order(acc["acct"], OrderItems=[{"SKU": "V1", "Quantity": "1", "Cost": "40.00"}])
    order = get(url, acc, "getOrder", OrderId=oid).json()["Order"]
    assert order["Status"] == "Charged" and "Allowance" in order and "Commission" not in order
    assert "Price" not in order["OrderItems"][0]
    generated = admin.bulk(acc["acct"], 3)
    items = get(url, acc, "getOrder", OrderId=generated[0]).json()["Order"]["OrderItems"]
    assert all("Cost" in i and "Price" not in i for i in items)
    for action in ("Process", "Charge"):
        assert error_code(update(url, acc, oid, action)) == "InvalidAction"
    assert update(url, acc, oid, "Ship", ShippingMethod="FedEx", TrackingNumber="7700").findtext("Status") == "Shipped"


def test_charge_failure_reason_and_retry(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="InProduction")
    admin.fail_charge(acc["acct"], oid, "Card expired")
    root = update(url, acc, oid, "Charge")
    assert error_code(root) == "ChargeFailed" and root.findtext("Errors/Error/LongMessage") == "Card expired"
    assert root.findtext("Status") == "FailedToCharge"
    assert update(url, acc, oid, "Charge").findtext("Status") == "Charged"


def test_admin_cancellations(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])
    assert admin.cancel(acc["acct"], oid, by="buyer").status_code == 200
    order = get(url, acc, "getOrder", OrderId=oid).json()["Order"]
    assert order["Status"] == "Canceled" and order["CancelCode"] == "2"
    late = admin.order(acc["acct"], Created="2020-01-01 00:00:00")
    assert admin.cancel(acc["acct"], late, by="buyer").status_code == 409  # past the 30-minute window
    assert admin.cancel(acc["acct"], late, by="houzz", code=6, reason="fraud").status_code == 200
    shipped = admin.order(acc["acct"], Status="Shipped")
    assert admin.cancel(acc["acct"], shipped).status_code == 409
    assert [h["by"] for h in admin.state(acc["acct"], late)["history"]] == ["houzz"]


def test_inventory_and_listings(url: str, admin: Admin) -> None:
    acc = admin.account()
    admin.listings(acc["acct"], *[f"SKU-{i}" for i in range(12)])

    def inv(body: str) -> ET.Element:
        return xml(post(url, acc, "updateInventory", f"<UpdateInventoryRequest>{body}</UpdateInventoryRequest>"))

    ok = inv("<SKU>SKU-3</SKU><Action>update</Action><Quantity>9</Quantity>")
    assert ok.tag == "UpdateInventoryResponse" and ok.findtext("SKU") == "SKU-3" and ok.findtext("ProductId")
    assert error_code(inv("<SKU>NOPE</SKU><Action>update</Action><Quantity>1</Quantity>")) == "SkuNotFound"
    assert error_code(inv("<SKU>SKU-3</SKU><Action>update</Action><Quantity>-1</Quantity>")) == "InvalidParameter"
    assert error_code(inv("<SKU>SKU-3</SKU><Action>update</Action><Quantity>2.5</Quantity>")) == "InvalidParameter"
    assert error_code(inv("<SKU>SKU-3</SKU><Action>set</Action><Quantity>1</Quantity>")) == "InvalidAction"
    listing = admin.listing(acc["acct"], "SKU-3")
    assert listing["Quantity"] == "9" and [h["Quantity"] for h in listing["history"]] == ["9"]
    page = get(url, acc, "getListings", Start=10, NumberOfItems=5).json()
    assert page["TotalListingCount"] == "12" and [x["SKU"] for x in page["Listings"]] == ["SKU-10", "SKU-11"]
    by_product = get(url, acc, "getListing", productId=listing["ProductId"]).json()
    assert by_product["Listing"]["SKU"] == "SKU-3"


def test_rate_limit_is_on_by_default_per_application() -> None:
    with ServedApp(create_app({"accounts": []})) as s:
        admin = Admin(s.url)
        busy, other = admin.account(), admin.account()
        with httpx.Client() as http:
            codes = [http.get(s.url + "/api", params={"format": "json", "method": "getOrders"},
                              headers=headers(busy)).status_code for _ in range(60)]
            assert set(codes) == {200}
            limited = http.get(s.url + "/api", params={"format": "json", "method": "getOrders"}, headers=headers(busy))
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert limited.json()["Ack"] == "Error" and limited.json()["Errors"][0]["ErrorCode"] == "RateLimited"
            xml_limited = http.get(s.url + "/api", params={"format": "xml", "method": "getOrders"},
                                   headers=headers(busy))
            assert xml(xml_limited).tag == "GetOrdersResponse" and error_code(xml(xml_limited)) == "RateLimited"
            assert get(s.url, other, "getOrders").status_code == 200
        assert admin.http.get("/rate_limit").json() == {"enabled": True, "calls": 60, "period": 60.0}


def test_auto_authorisation_clock_and_authorisation_expiry() -> None:
    with ServedApp(create_app({"accounts": [], "rate_limit": False})) as s:
        admin = Admin(s.url)
        acc = admin.account(mode="auto_accept")
        ok, declined = admin.order(acc["acct"]), admin.order(acc["acct"])
        admin.fail_charge(acc["acct"], declined, "Insufficient funds")
        assert get(s.url, acc, "getOrders").json()["TotalOrderCount"] == "0"  # not released yet
        assert get(s.url, acc, "getOrder", OrderId=ok).json()["Errors"][0]["ErrorCode"] == "OrderNotFound"
        admin.clock(31 * 60)
        assert [o["OrderId"] for o in get(s.url, acc, "getOrders").json()["Orders"]] == [ok]
        assert admin.status(acc["acct"], ok) == "Charged" and admin.status(acc["acct"], declined) == "AuthFailed"
        admin.clock(7 * 24 * 3600 + 60)
        assert get(s.url, acc, "getOrder", OrderId=ok).json()["Order"]["Status"] == "InProduction"
        assert admin.state(acc["acct"], ok)["history"][-1]["action"] == "AuthorizationExpired"


def test_spelling_options() -> None:
    opts = {"accounts": [], "new_status_label": "New", "canceled_spelling": "Cancelled",
            "canceled_filter": "Cancelled"}
    with ServedApp(create_app(opts)) as s:
        admin = Admin(s.url)
        acc = admin.account()
        new, gone = admin.order(acc["acct"]), admin.order(acc["acct"])
        admin.cancel(acc["acct"], gone)
        assert get(s.url, acc, "getOrder", OrderId=new).json()["Order"]["Status"] == "New"
        assert get(s.url, acc, "getOrder", OrderId=gone).json()["Order"]["Status"] == "Cancelled"
        assert get(s.url, acc, "getOrders", Status="Cancelled").json()["TotalOrderCount"] == "1"
        assert get(s.url, acc, "getOrders", Status="Canceled").json()["Errors"][0]["ErrorCode"] == "InvalidParameter"


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown houzz sandbox options"):
        create_app({"rate_limits": False})


def test_bulk_seeding_and_queries_are_fast(url: str, admin: Admin) -> None:
    acc = admin.account()
    started = time.perf_counter()
    ids = admin.bulk(acc["acct"], 10_000, created_from="2026-01-01", created_to="2026-01-31")
    assert len(set(ids)) == 10_000 and time.perf_counter() - started < 10
    half = ids[:5000]
    for oid in half[:50]:
        admin.set_status(acc["acct"], oid, "Charged")
    started = time.perf_counter()
    data = get(url, acc, "getOrders", Status="Active", Start=5000, NumberOfItems=1000).json()
    assert data["TotalOrderCount"] == "10000" and len(data["Orders"]) == 1000
    assert get(url, acc, "getOrders", Status="Charged").json()["TotalOrderCount"] == "50"
    window = get(url, acc, "getOrders", Status="New", From="2026-01-10", To="2026-01-10").json()
    assert 0 < int(window["TotalOrderCount"]) < 10_000
    assert all(o["Created"].startswith("2026-01-10") for o in window["Orders"])
    assert time.perf_counter() - started < 3


def test_seeding_keeps_houzz_format(admin: Admin, url: str) -> None:
    acc = admin.account()
    body = order_body(OrderId="1656-9927-9120-7805", Created="2026-02-02T10:00:00Z", Comments="Leave at door",
                      OrderItems=[{"SKU": "A", "Quantity": "1", "Price": "10"},
                                  {"Type": "Coupon", "SKU": "SAVE5", "Price": "-5.00"}])
    assert admin.raw_order(acc["acct"], body) == "1656-9927-9120-7805"
    order = get(url, acc, "getOrder", OrderId="1656-9927-9120-7805").json()["Order"]
    assert order["Created"] == "2026-02-02 10:00:00" and order["Comments"] == "Leave at door"
    assert order["OrderTotal"] == "5.00" and order["Status"] == "Placed"
    dup = admin.http.post(f"/accounts/{acc['acct']}/orders", json=body)
    assert dup.status_code == 409


def test_listing_status_filter_follows_updates(url: str, admin: Admin) -> None:
    acc = admin.account()
    admin.listings(acc["acct"], "A", "B", "C")
    body = ("<UpdateInventoryRequest><SKU>B</SKU><Action>update</Action><Status>Inactive</Status>"
            "</UpdateInventoryRequest>")
    assert xml(post(url, acc, "updateInventory", body)).findtext("Ack") == "Success"
    active = get(url, acc, "getListings", Status="Active").json()
    assert active["TotalListingCount"] == "2" and [x["SKU"] for x in active["Listings"]] == ["A", "C"]
    assert [x["SKU"] for x in get(url, acc, "getListings", Status="inactive").json()["Listings"]] == ["B"]
    assert get(url, acc, "getListings").json()["TotalListingCount"] == "3"
