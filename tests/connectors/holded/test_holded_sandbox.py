"""The Holded sandbox speaks Holded's v1 API: paths, envelopes, paging, quirks, stock rules, accounts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from holded_support import ORDER_DATE, Admin

from orderbridge.connectors.holded.sandbox import DEFAULT_KEY, create_app
from orderbridge.connectors.sandbox_kit import ServedApp

DATE = int(ORDER_DATE.timestamp())


@pytest.fixture
def api(admin: Admin, url: str) -> Iterator[tuple[httpx.Client, str]]:
    key = admin.account(products=[{"sku": "A", "name": "Apron", "price": 10, "stock": 10}])
    with httpx.Client(base_url=url + "/api/invoicing/v1", headers={"key": key}, timeout=10) as http:
        yield http, key


def contact(http: httpx.Client, **body: Any) -> str:
    resp = http.post("/contacts", json={"name": "Ada", **body})
    assert resp.status_code == 201 and resp.json()["status"] == 1
    return str(resp.json()["id"])


def document(http: httpx.Client, doc_type: str = "invoice", **body: Any) -> dict[str, Any]:
    base = {"date": DATE, "contactId": contact(http), "items": [{"name": "Apron", "sku": "A", "units": 1,
                                                                  "subtotal": 10, "tax": 21}]}
    resp = http.post(f"/documents/{doc_type}", json={**base, **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_auth_is_the_key_header(url: str, admin: Admin) -> None:
    with httpx.Client(base_url=url + "/api/invoicing/v1") as http:
        assert http.get("/contacts").status_code == 401
        bad = http.get("/contacts", headers={"key": "wrong"})
        assert bad.status_code == 401 and bad.json() == {"status": 0, "info": "Invalid API key"}
        admin.quirks(auth_on_http_200=True)
        assert http.get("/contacts", headers={"key": "wrong"}).status_code == 200


def test_errors_come_as_status_0_on_http_200(api: tuple[httpx.Client, str], admin: Admin) -> None:
    http, _ = api
    resp = http.post("/documents/invoice", json={"date": DATE, "items": []})
    assert resp.status_code == 200 and resp.json() == {"status": 0, "info": "contactId needed"}
    one_sided = http.get("/documents/invoice", params={"starttmp": DATE})
    assert one_sided.json() == {"status": 0, "info": "Query params starttmp & endtmp are mandatory"}
    admin.quirks(errors_on_http_200=False)
    assert http.post("/documents/invoice", json={"date": DATE}).status_code == 400
    assert http.get("/contacts/" + "0" * 24).status_code == 404


def test_unknown_routes_answer_an_html_page_with_http_200(api: tuple[httpx.Client, str]) -> None:
    http, _ = api
    resp = http.get("/invoices")
    assert resp.status_code == 200 and resp.text.startswith("<!DOCTYPE html>")


def test_create_returns_the_documented_envelope_and_numbers_on_approval(api: tuple[httpx.Client, str]) -> None:
    http, _ = api
    draft = document(http, approveDoc=False)
    approved = document(http, approveDoc=True)
    assert set(approved) == {"status", "id", "invoiceNum", "contactId"} and approved["invoiceNum"] == "F260001"
    assert draft["invoiceNum"] == ""
    body = http.get(f"/documents/invoice/{approved['id']}").json()
    assert body["contact"] == approved["contactId"] and "contactId" not in body
    assert body["products"][0]["price"] == 10 and body["total"] == 12.1 and body["currency"] == "eur"
    paid = http.post(f"/documents/invoice/{draft['id']}/pay", json={"date": DATE, "amount": 5}).json()
    assert paid["status"] == 1 and paid["invoiceNum"] == "F260002"  # paying approves the draft
    after = http.get(f"/documents/invoice/{draft['id']}").json()
    assert after["status"] == 2 and after["paymentsPending"] == 7.1 and after["approvedAt"]
    refused = http.put(f"/documents/invoice/{draft['id']}", json={"notes": "x"}).json()
    assert refused == {"status": 0, "info": "Approved documents cannot be edited"}


def test_custom_fields_create_quirk(api: tuple[httpx.Client, str], admin: Admin) -> None:
    http, _ = api
    doc = document(http, customFields=[{"field": "ref", "value": "R-1"}, {"wixOrderId": "W-9"}])
    fields = http.get(f"/documents/invoice/{doc['id']}").json()["customFields"]
    assert fields == [{"field": "field", "value": "ref"}, {"field": "value", "value": "R-1"},
                      {"field": "wixOrderId", "value": "W-9"}]
    admin.quirks(custom_fields_quirk=False)
    doc = document(http, customFields=[{"field": "ref", "value": "R-2"}])
    assert http.get(f"/documents/invoice/{doc['id']}").json()["customFields"] == [{"field": "ref", "value": "R-2"}]


def test_lists_are_bare_arrays_paged_until_empty(api: tuple[httpx.Client, str], admin: Admin) -> None:
    http, _ = api
    made = [document(http, approveDoc=True)["id"] for _ in range(5)]
    hidden = document(http, approveDoc=False)["id"]
    admin.quirks(page_size=2)
    window = {"starttmp": DATE - 10, "endtmp": DATE + 10}
    pages = [http.get("/documents/invoice", params={**window, "page": n}).json() for n in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert [d["id"] for p in pages for d in p] == made  # drafts stay out of the plain list
    drafts = http.get("/documents/invoice", params={**window, "filter": "approved-0"}).json()
    assert [d["id"] for d in drafts] == [hidden]
    newest = http.get("/documents/invoice", params={"sort": "created-desc", "limit": 1}).json()
    assert [d["id"] for d in newest] == [made[-1]]
    outside = http.get("/documents/invoice", params={"starttmp": DATE + 100, "endtmp": DATE + 200}).json()
    assert outside == []


def test_contacts_by_custom_id(api: tuple[httpx.Client, str]) -> None:
    http, _ = api
    ours = contact(http, CustomId="shop:42", email="a@x.es")
    contact(http, CustomId="shop:43")
    assert [c["id"] for c in http.get("/contacts", params={"customId[]": "shop:42"}).json()] == [ours]
    got = http.get(f"/contacts/{ours}").json()
    assert got["customId"] == "shop:42" and "CustomId" not in got
    assert http.get("/contacts", params={"customId[]": "nobody"}).json() == []


def test_invoices_move_stock_and_orders_on_send(api: tuple[httpx.Client, str], admin: Admin) -> None:
    http, key = api
    document(http, "invoice")
    document(http, "salesreceipt", approveDoc=True)
    order = document(http, "salesorder", approveDoc=True, items=[
        {"name": "Apron", "sku": "A", "units": 3, "subtotal": 10}, {"name": "Delivery", "units": 1, "subtotal": 5}])
    assert admin.units(key, "A") == 8
    too_many = http.post(f"/documents/salesorder/{order['id']}/shipbylines",
                         json={"lines": [{"itemLinePosition": 0, "units": 4}]}).json()
    assert too_many["status"] == 0
    ok = http.post(f"/documents/salesorder/{order['id']}/shipbylines",
                   json={"lines": [{"itemLinePosition": 0, "units": 2}]})
    assert ok.json() == {"status": 1, "info": "Items Shipped"} and admin.units(key, "A") == 6
    assert http.post(f"/documents/salesorder/{order['id']}/shipall").json()["info"] == "Items Shipped"
    items = http.get(f"/documents/salesorder/{order['id']}/shippeditems").json()
    assert items == [{"name": "Apron", "sku": "A", "total": 3, "sent": 3, "pending": 0},
                     {"name": "Delivery", "sku": "", "total": 1, "sent": 1, "pending": 0}]
    assert admin.units(key, "A") == 5
    reasons = [m["reason"] for m in admin.movements(key) if m["sku"] == "A"]
    assert reasons == ["invoice created", "salesreceipt created", "units sent", "units sent"]


def test_product_stock_put_is_a_delta_and_ignores_bad_shapes(api: tuple[httpx.Client, str], admin: Admin) -> None:
    http, key = api
    [product] = http.get("/products").json()
    wh = admin.default_warehouse(key)
    assert http.put(f"/products/{product['id']}/stock", json={"stock": 5}).json()["info"] == "Updated"
    assert admin.units(key, "A") == 10
    http.put(f"/products/{product['id']}/stock", json={"stock": {wh: {product["id"]: -3}}})
    assert admin.units(key, "A") == 7 and http.get(f"/products/{product['id']}").json()["stock"] == 7
    [row] = http.get(f"/warehouses/{wh}/stock").json()["warehouse"]["products"]
    assert row["product_id"] == product["id"] and row["stock"] == 7


def test_series_channels_and_tracking(api: tuple[httpx.Client, str]) -> None:
    http, _ = api
    made = http.post("/numberingseries/salesorder", json={"name": "Web", "format": "W[YYYY]-%%", "last": 8})
    assert made.status_code == 201 and made.json()["msg"] == "Created"
    series = {s["name"]: s for s in http.get("/numberingseries/salesOrder").json()}
    assert series["Web"]["type"] == "salesOrder"
    channel = http.post("/saleschannels", json={"name": "Wix", "desc": "ignored", "accountNum": 7000001}).json()["id"]
    order = document(http, "salesorder", approveDoc=True, numSerieId=series["Web"]["id"], salesChannelId=channel)
    assert order["invoiceNum"] == "W2026-09"
    bad = http.post(f"/documents/salesorder/{order['id']}/updatetracking", json={"key": "pigeon", "num": "1"})
    assert bad.json()["status"] == 0
    good = http.post(f"/documents/salesorder/{order['id']}/updatetracking",
                     json={"key": "other", "name": "Paack", "num": "P1,P2", "pickUpDate": "21/11/2026"})
    assert good.json() == {"status": 1, "data": "Updated"}
    assert http.get(f"/documents/salesorder/{order['id']}").json()["tracking"]["num"] == "P1,P2"
    assert http.post("/documents/invoice", json={"date": DATE, "contactId": contact(http),
                                                 "numSerieId": series["Web"]["id"]}).json()["status"] == 0


def test_accounts_are_separate(url: str, admin: Admin) -> None:
    first, second = admin.account(), admin.account()
    with httpx.Client(base_url=url + "/api/invoicing/v1") as http:
        http.post("/contacts", json={"name": "Only in first"}, headers={"key": first})
        assert len(http.get("/contacts", headers={"key": first}).json()) == 1
        assert http.get("/contacts", headers={"key": second}).json() == []
    tags = {c["tag"] for c in admin.calls() if c["path"].endswith("/contacts")}
    assert {first, second} <= tags


def test_rate_limit_per_key_with_retry_after() -> None:
    app = create_app({"rate_limit_calls": 3, "rate_limit_period": 30,
                      "accounts": [{"key": DEFAULT_KEY}, {"key": "second-key-0001"}]})
    with ServedApp(app) as s, httpx.Client(base_url=s.url + "/api/invoicing/v1") as http:
        answers = [http.get("/warehouses", headers={"key": DEFAULT_KEY}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json() == {"status": 0, "info": "Too many requests"}
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 30
        assert http.get("/warehouses", headers={"key": "second-key-0001"}).status_code == 200
