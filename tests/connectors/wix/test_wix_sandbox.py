"""The Wix sandbox's own behaviour: auth, search semantics, errors, state machine, catalog."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from wix_support import WixAdmin


def api(url: str, site: dict[str, Any], **headers: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, headers={"Authorization": site["apiKey"],
                                                           "wix-site-id": site["siteId"], **headers})


def search(client: httpx.Client, **search: Any) -> Any:
    r = client.post("/ecom/v1/orders/search", json={"search": search})
    return r.json() if r.status_code == 200 else r


def test_auth_errors(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    body = {"search": {}}
    assert httpx.post(wix_url + "/ecom/v1/orders/search", json=body).status_code == 401
    no_site = httpx.post(wix_url + "/ecom/v1/orders/search", json=body, headers={"Authorization": site["apiKey"]})
    assert no_site.status_code == 400 and no_site.json()["details"]["applicationError"]["code"] == "MISSING_SITE_ID"
    both = api(wix_url, site, **{"wix-account-id": "acc"}).post("/ecom/v1/orders/search", json=body)
    assert both.status_code == 400
    unknown = api(wix_url, {**site, "siteId": "nope"}).post("/ecom/v1/orders/search", json=body)
    assert unknown.status_code == 404 and unknown.json()["details"]["applicationError"]["code"] == "SITE_NOT_FOUND"
    limited = admin.site(permissions=["orders.read"])
    refused = api(wix_url, limited).post("/ecom/v1/orders/fake/cancel", json={})
    assert refused.status_code == 403
    assert refused.json()["details"]["applicationError"]["data"] == {"missingPermission": "orders.manage"}
    shared = admin.site(apiKey=site["apiKey"])  # one account, two sites, one key
    assert api(wix_url, shared).post("/ecom/v1/orders/search", json=body).status_code == 200


def test_sites_are_isolated(wix_url: str, admin: WixAdmin) -> None:
    a, b = admin.site(), admin.site()
    oa = admin.order(a)
    assert [o["id"] for o in search(api(wix_url, a))["orders"]] == [oa["id"]]
    assert search(api(wix_url, b))["orders"] == []
    assert api(wix_url, b).get(f"/ecom/v1/orders/{oa['id']}").status_code == 404


def test_filters_sort_and_validation(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    client = api(wix_url, site)
    first = admin.order(site, paymentStatus="NOT_PAID", buyer={"email": "zoe@example.com"})
    second = admin.order(site, paymentStatus="PAID")
    hidden = admin.order(site, status="INITIALIZED", paymentStatus="NOT_PAID")
    default = search(client)["orders"]
    assert [o["id"] for o in default] == [second["id"], first["id"]]  # createdDate DESC; never INITIALIZED
    assert client.get(f"/ecom/v1/orders/{hidden['id']}").status_code == 200  # Get Order still sees it
    by_pay = search(client, filter={"paymentStatus": {"$in": ["NOT_PAID"]}})["orders"]
    assert [o["id"] for o in by_pay] == [first["id"]]
    by_mail = search(client, filter={"buyerInfo.email": {"$startsWith": "zoe"}})["orders"]
    assert [o["id"] for o in by_mail] == [first["id"]]
    by_number = search(client, filter={"$and": [{"number": {"$gte": int(first["number"])}},
                                                {"number": {"$lt": int(second["number"])}}]},
                       sort=[{"fieldName": "number", "order": "ASC"}])["orders"]
    assert [o["id"] for o in by_number] == [first["id"]]
    sku = search(client, filter={"lineItems.catalogReference.catalogItemId": {
        "$hasSome": [first["lineItems"][0]["catalogReference"]["catalogItemId"]]}})["orders"]
    assert len(sku) == 2
    for bad in ({"filter": {"nope": 1}}, {"filter": {"id": {"$gt": "a"}}}, {"cursorPaging": {"limit": 101}},
                {"sort": [{"fieldName": "id"}]}, {"filter": {"createdDate": {"$gt": "yesterday"}}},
                {"cursorPaging": {"cursor": "garbage!"}}):
        r = search(client, **bad)
        assert r.status_code == 400 and "fieldViolations" in r.json()["details"]["validationError"], bad


def test_cursor_is_stable_while_orders_change(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site()
    client = api(wix_url, site)
    admin.post(f"/sites/{site['siteId']}/orders/generate", {"count": 30, "paidRatio": 0})
    flt = {"updatedDate": {"$gte": "2000-01-01T00:00:00Z"}}
    page = search(client, filter=flt, sort=[{"fieldName": "updatedDate", "order": "ASC"}],
                  cursorPaging={"limit": 10})
    seen = [o["id"] for o in page["orders"]]
    admin.act(site, seen[0], "pay")  # moves to the end of the updatedDate order
    while page["metadata"]["hasNext"]:
        assert page["metadata"]["count"] == len(page["orders"])
        page = search(client, cursorPaging={"limit": 10, "cursor": page["metadata"]["cursors"]["next"]})
        seen += [o["id"] for o in page["orders"]]
    assert len(seen) == 31 and len(set(seen)) == 30 and seen[-1] == seen[0]  # seen again, after its change


def test_state_machine_and_stock_holding(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    before = admin.inventory(site)["MUG-1"]["quantity"]
    o = admin.order(site, status="PENDING", paymentStatus="NOT_PAID")
    assert admin.inventory(site)["MUG-1"]["quantity"] == before  # not approved yet
    paid = admin.act(site, o["id"], "pay")
    assert (paid["status"], paid["paymentStatus"]) == ("APPROVED", "PAID")
    assert paid["balanceSummary"]["balance"]["amount"] == "0.00"
    assert admin.inventory(site)["MUG-1"]["quantity"] == before - 2
    client = api(wix_url, site)
    cancelled = client.post(f"/ecom/v1/orders/{o['id']}/cancel", json={"restockAllItems": True}).json()["order"]
    assert cancelled["status"] == "CANCELED" and cancelled["paymentStatus"] == "PAID"
    assert admin.inventory(site)["MUG-1"]["quantity"] == before
    again = client.post(f"/ecom/v1/orders/{o['id']}/cancel", json={})
    assert again.status_code == 400 and again.json()["details"]["applicationError"]["code"] == "ORDER_ALREADY_CANCELED"
    history = admin.get(f"/sites/{site['siteId']}/inventory/history")
    assert [h["via"] for h in history][-2:] == [f"order {o['number']} approved",
                                                f"order {o['number']} canceled (restock)"]


def test_fulfillment_rules(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site)
    client = api(wix_url, site)
    line = o["lineItems"][0]["id"]
    path = f"/ecom/v1/fulfillments/orders/{o['id']}/create-fulfillment"
    too_many = client.post(path, json={"fulfillment": {"lineItems": [{"id": line, "quantity": 3}]}})
    assert too_many.status_code == 400 and too_many.json()["details"]["applicationError"]["code"] == "QUANTITY_EXCEEDED"
    usps = {"trackingNumber": "9400", "shippingProvider": "usps"}
    ok = client.post(path, json={"fulfillment": {"lineItems": [{"id": line}], "trackingInfo": usps}})
    assert ok.status_code == 200 and ok.json()["fulfillmentId"]
    fulfilled = ok.json()["orderWithFulfillments"]["fulfillments"][0]
    assert fulfilled["lineItems"] == [{"id": line, "quantity": 2}]
    assert "usps.com" in fulfilled["trackingInfo"]["trackingLink"]
    listed = client.get(f"/ecom/v1/fulfillments/orders/{o['id']}").json()["orderWithFulfillments"]["fulfillments"]
    assert [f["id"] for f in listed] == [fulfilled["id"]]
    assert client.get(f"/ecom/v1/orders/{o['id']}").json()["order"]["fulfillmentStatus"] == "FULFILLED"
    fid = fulfilled["id"]
    patched = client.patch(f"/ecom/v1/fulfillments/{fid}/orders/{o['id']}",
                           json={"fulfillment": {"trackingInfo": {**usps, "trackingNumber": "9401"}}})
    assert patched.status_code == 200
    assert client.delete(f"/ecom/v1/fulfillments/{fid}/orders/{o['id']}").status_code == 200
    assert client.get(f"/ecom/v1/orders/{o['id']}").json()["order"]["fulfillmentStatus"] == "NOT_FULFILLED"
    by_ids = client.post("/ecom/v1/fulfillments/list-by-ids", json={"orderIds": [o["id"]]}).json()
    assert by_ids["ordersWithFulfillments"][0]["fulfillments"] == []


@pytest.mark.parametrize("catalog", ["V1_CATALOG", "V3_CATALOG"])
def test_catalog_versions(wix_url: str, admin: WixAdmin, catalog: str) -> None:
    site = admin.site(catalogVersion=catalog)
    client = api(wix_url, site)
    v1 = client.post("/stores/v1/products/query", json={"query": {"filter": '{"sku": "MUG-1"}'}})
    v3 = client.post("/stores/v3/products/query-variants", json={"query": {"cursorPaging": {"limit": 2}}})
    if catalog == "V1_CATALOG":
        assert v1.status_code == 200 and [p["sku"] for p in v1.json()["products"]] == ["MUG-1"]
        assert v3.status_code == 428
        assert v3.json()["details"]["applicationError"]["code"] == "CATALOG_V1_SITE_CALLING_CATALOG_V3_API"
        pid = v1.json()["products"][0]["id"]
        variants = client.post(f"/stores/v2/inventoryItems/product/{pid}/getVariants", json={}).json()
        assert variants["inventoryItem"]["variants"][0]["quantity"] == 50
        client.post("/stores/v2/inventoryItems/decrement",
                    json={"decrementData": [{"productId": pid, "variantId": "00000000-0000-0000-0000-000000000000",
                                             "decrementBy": 5}]})
        assert admin.inventory(site)["MUG-1"]["quantity"] == 45
    else:
        assert v1.status_code == 428 and v3.status_code == 200
        page = v3.json()
        assert len(page["variants"]) == 2 and page["pagingMetadata"]["hasNext"]
        rest = client.post("/stores/v3/products/query-variants", json={"query": {"cursorPaging": {
            "limit": 2, "cursor": page["pagingMetadata"]["cursors"]["next"]}}}).json()
        assert {v["sku"] for v in page["variants"] + rest["variants"]} == {"MUG-1", "TEE-M", "TEE-L"}
        item = admin.inventory(site)["TEE-M"]
        stale = client.patch(f"/stores/v3/inventory-items/{item['inventoryItemId']}",
                             json={"inventoryItem": {"revision": "0", "quantity": 3}})
        assert stale.status_code == 409
        fresh = client.patch(f"/stores/v3/inventory-items/{item['inventoryItemId']}",
                             json={"inventoryItem": {"revision": item["revision"], "quantity": 3}})
        assert fresh.json()["inventoryItem"]["quantity"] == 3


def test_bulk_generation_is_fast(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site()
    started = time.monotonic()
    admin.post(f"/sites/{site['siteId']}/orders/generate", {"count": 3000})
    client = api(wix_url, site)
    page = search(client, filter={"updatedDate": {"$gte": "2000-01-01T00:00:00Z"}},
                  sort=[{"fieldName": "updatedDate", "order": "ASC"}], cursorPaging={"limit": 100})
    timings = []
    for _ in range(5):
        t = time.monotonic()
        page = search(client, cursorPaging={"limit": 100, "cursor": page["metadata"]["cursors"]["next"]})
        timings.append(time.monotonic() - t)
    assert time.monotonic() - started < 15 and max(timings) < 0.5
    assert len(admin.get(f"/sites/{site['siteId']}/orders")) == 3000
