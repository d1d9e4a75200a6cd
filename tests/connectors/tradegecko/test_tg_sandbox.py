"""The TradeGecko sandbox's wire behaviour, straight over HTTP (no connector)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from tg_support import TG

from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.sandbox import DEMO_TOKEN, create_app


def order_body(tg: TG, variant_id: int, ref: str = "R1", status: str = "active", qty: int = 2) -> dict[str, Any]:
    return {"order": {
        "company": {"name": "Ada", "company_type": "consumer", "email": f"{ref}@example.com"},
        "shipping_address": {"address1": "1 Main St", "label": "Home"}, "issued_at": "21-02-2026",
        "status": status, "reference_number": ref,
        "order_line_items": [{"variant_id": variant_id, "quantity": str(qty), "price": "12.5"}],
    }}


def seeded(tg: TG) -> int:
    [v] = tg.variants({"sku": "SKU-1", "retail_price": "9", "stock": {str(tg.location): 10}})
    return int(v["id"])


def test_envelopes_and_status_codes(tg: TG) -> None:
    vid = seeded(tg)
    created = tg.api.post("/orders", json=order_body(tg, vid))
    assert created.status_code == 201
    order = created.json()["order"]
    assert order["issued_at"] == "2026-02-21" and order["order_number"] == "SO0001" and order["total"] == "25.0"
    assert created.headers["content-type"].startswith("application/json")
    assert created.headers["x-request-id"]
    updated = tg.api.put(f"/orders/{order['id']}", json={"order": {"notes": "gift"}})
    assert updated.status_code == 204 and updated.content == b""
    assert tg.api.get(f"/orders/{order['id']}.json").json()["order"]["notes"] == "gift"
    address = tg.api.put(f"/addresses/{order['shipping_address_id']}/", json={"address": {"city": "Paris"}})
    assert address.status_code == 200 and address.json()["address"]["city"] == "Paris"
    assert tg.api.get("/orders/999999").status_code == 404
    assert tg.api.get("/orders/999999").json()["type"] == "Not Found"
    unwrapped = tg.api.post("/companies", json={"name": "Bare", "company_type": "business"})
    assert unwrapped.status_code == 201
    assert tg.api.delete(f"/companies/{unwrapped.json()['company']['id']}").status_code == 204


def test_validation_errors_have_the_documented_shape(tg: TG) -> None:
    r = tg.api.post("/orders", json={"order": {"status": "shipped", "order_line_items": [{"variant_id": 123456}]}})
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert errors["issued_at"] == ["can't be blank"]
    assert errors["company"] == ["can't be blank"] and errors["shipping_address"] == ["can't be blank"]
    assert errors["status"] == ["is not included in the list"]
    assert "order_line_items.variant" in errors and "order_line_items.quantity" in errors
    assert tg.api.post("/companies", json={"company": {"name": "X", "company_type": "alien"}}).json() == {
        "errors": {"company_type": ["is not included in the list"]}}
    assert tg.counts()["total"] == 0 and tg.counts()["companies"] == 0


def test_paging_headers_and_links(tg: TG) -> None:
    tg.variants(*({"sku": f"P-{i}"} for i in range(7)))
    r = tg.api.get("/variants", params={"limit": 3, "page": 2, "sku[]": [f"P-{i}" for i in range(7)]})
    meta = json.loads(r.headers["x-pagination"])
    assert meta == {"total_records": 7, "total_pages": 3, "first_page": False, "last_page": False,
                    "out_of_bounds": False, "offset": 3}
    assert [v["sku"] for v in r.json()["variants"]] == ["P-3", "P-2", "P-1"]  # newest first
    links = r.headers["link"]
    for rel, page in (("first", 1), ("prev", 1), ("next", 3), ("last", 3)):
        assert f'page={page}>; rel="{rel}"' in links
    assert "limit=3" in links
    last = tg.api.get("/variants", params={"limit": 3, "page": 3, "sku[]": [f"P-{i}" for i in range(7)]})
    assert json.loads(last.headers["x-pagination"])["last_page"] is True and 'rel="next"' not in last.headers["link"]
    beyond = tg.api.get("/variants", params={"limit": 3, "page": 9, "sku[]": [f"P-{i}" for i in range(7)]})
    assert beyond.json()["variants"] == [] and json.loads(beyond.headers["x-pagination"])["out_of_bounds"]
    count = tg.api.get("/variants", params={"limit": 0})
    assert count.json()["variants"] == [] and json.loads(count.headers["x-pagination"])["total_records"] == 7
    assert tg.api.get("/variants", params={"limit": 251}).status_code == 400
    assert len(tg.api.get("/variants").json()["variants"]) == 7
    assert len(tg.api.get("/variants", params={"order": "id asc", "limit": 2}).json()["variants"]) == 2


def test_filters(tg: TG) -> None:
    vid = seeded(tg)
    ids = [tg.api.post("/orders", json=order_body(tg, vid, f"F{i}")).json()["order"]["id"] for i in range(4)]
    assert [o["id"] for o in tg.api.get("/orders", params={"reference_number": "F2"}).json()["orders"]] == [ids[2]]
    by_ids = tg.api.get("/orders", params={"ids": f"{ids[0]},{ids[3]}"}).json()["orders"]
    assert sorted(o["id"] for o in by_ids) == [ids[0], ids[3]]
    time.sleep(0.01)
    tg.api.put(f"/orders/{ids[1]}", json={"order": {"notes": "changed"}})
    changed = tg.api.get(f"/orders/{ids[1]}").json()["order"]["updated_at"]
    recent = tg.api.get("/orders", params={"updated_at_min": changed}).json()["orders"]
    assert [o["id"] for o in recent] == [ids[1]]
    # A filter with an index and updated_at_min: whichever set is smaller, the same rows.
    for status, expected in (("active", [ids[1]]), ("draft", [])):
        both = tg.api.get("/orders", params={"status": status, "updated_at_min": changed}).json()["orders"]
        assert [o["id"] for o in both] == expected
    first = tg.api.get(f"/orders/{ids[0]}").json()["order"]["updated_at"]
    one = tg.api.get("/orders", params={"reference_number": "F1", "updated_at_min": first}).json()["orders"]
    assert [o["id"] for o in one] == [ids[1]]
    assert tg.api.get("/orders", params={"reference_number": "F0", "updated_at_min": changed}).json()["orders"] == []
    assert tg.api.get("/orders", params={"reference_number": ""}).json()["orders"]  # blank filters are ignored
    tg.api.delete(f"/orders/{ids[0]}")
    assert ids[0] not in [o["id"] for o in tg.api.get("/orders").json()["orders"]]
    deleted = tg.api.get("/orders", params={"status": "deleted"}).json()["orders"]
    assert [o["id"] for o in deleted] == [ids[0]]
    assert tg.api.get("/orders", params={"updated_at_min": "yesterday"}).status_code == 400


def test_idempotency_key_replays_the_first_answer(tg: TG) -> None:
    vid = seeded(tg)
    headers = {"Idempotency-Key": "abc-123"}
    first = tg.api.post("/orders", json=order_body(tg, vid, "I1"), headers=headers)
    again = tg.api.post("/orders", json=order_body(tg, vid, "I1"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = tg.api.post("/orders", json=order_body(tg, vid, "I1"), headers={"Idempotency-Key": "abc-124"})
    assert other.json()["order"]["id"] != first.json()["order"]["id"]
    rejected = tg.api.post("/orders", json={"order": {}}, headers={"Idempotency-Key": "bad-1"})
    assert rejected.status_code == 422
    fixed = tg.api.post("/orders", json=order_body(tg, vid, "I2"), headers={"Idempotency-Key": "bad-1"})
    assert fixed.status_code == 201  # a rejected request is not remembered
    assert tg.counts()["by_reference_number"] == {"I1": 2, "I2": 1}


def test_stock_follows_the_order_life_cycle(tg: TG) -> None:
    vid = seeded(tg)
    loc = tg.location

    def cell() -> tuple[str, str, str]:
        row = tg.stock("SKU-1")[loc]
        return row["stock_on_hand"], row["committed"], row["available"]

    draft = tg.api.post("/orders", json=order_body(tg, vid, "L1", status="draft", qty=3)).json()["order"]
    assert cell() == ("10.0", "0.0", "10.0")  # drafts commit nothing
    tg.api.put(f"/orders/{draft['id']}", json={"order": {"status": "active"}})
    assert cell() == ("10.0", "3.0", "7.0")
    variant = tg.api.get(f"/variants/{vid}").json()["variant"]
    assert (variant["committed_stock"], variant["available_stock"]) == ("3.0", "7.0")
    assert variant["locations"][0]["available"] == "7.0"
    pack = tg.api.post(f"/orders/{draft['id']}/actions/pack")
    assert pack.status_code == 422  # not finalized yet
    tg.api.put(f"/orders/{draft['id']}", json={"order": {"status": "finalized"}})
    back = tg.api.put(f"/orders/{draft['id']}", json={"order": {"status": "draft"}})
    assert back.status_code == 422
    lines = tg.api.get("/order_line_items", params={"order_id": draft["id"]}).json()["order_line_items"]
    ful = tg.api.post("/fulfillments", json={"fulfillment": {
        "order_id": draft["id"], "fulfillment_line_items": [{"order_line_item_id": lines[0]["id"], "quantity": 1}]}})
    assert ful.status_code == 201 and ful.json()["fulfillment"]["status"] == "packed"
    assert ful.json()["fulfillment_line_items"][0]["variant_sku"] == "SKU-1"
    assert cell() == ("9.0", "2.0", "7.0")  # packed: off the shelf, commitment released
    too_many = tg.api.post("/fulfillments", json={"fulfillment": {
        "order_id": draft["id"], "fulfillment_line_items": [{"order_line_item_id": lines[0]["id"], "quantity": 5}]}})
    assert too_many.status_code == 422
    void = tg.api.post(f"/orders/{draft['id']}/actions/void")
    assert void.status_code == 200 and void.json()["order"]["status"] == "void"
    assert cell() == ("10.0", "0.0", "10.0")  # packed units return; commitment released
    fid = ful.json()["fulfillment"]["id"]
    assert tg.api.get(f"/fulfillments/{fid}").json()["fulfillment"]["status"] == "void"
    assert tg.api.post(f"/orders/{draft['id']}/actions/void").status_code == 422


def test_fulfil_action_ships_everything_and_void_is_refused(tg: TG) -> None:
    vid = seeded(tg)
    order = tg.api.post("/orders", json=order_body(tg, vid, "A1", status="finalized", qty=2)).json()["order"]
    packed = tg.api.post(f"/orders/{order['id']}/actions/pack").json()["fulfillment"]
    assert packed["status"] == "packed"
    body = {"fulfillment": {"tracking_number": "1Z9", "tracking_company": "UPS"}}
    shipped = tg.api.post(f"/orders/{order['id']}/actions/fulfil", json=body)
    assert shipped.status_code == 201 and shipped.json()["fulfillment"]["status"] == "fulfilled"
    after = tg.api.get(f"/orders/{order['id']}").json()["order"]
    assert (after["status"], after["fulfillment_status"], after["packed_status"]) == ("fulfilled", "shipped", "packed")
    assert tg.api.post(f"/orders/{order['id']}/actions/fulfill").status_code == 422  # nothing left
    assert tg.api.post(f"/orders/{order['id']}/actions/void").status_code == 422
    assert tg.api.post(f"/orders/{order['id']}/actions/invoice").json()["invoice"]["invoice_number"] == "INV0001"
    assert tg.api.post(f"/orders/{order['id']}/actions/pay").status_code == 201
    assert tg.api.get(f"/orders/{order['id']}").json()["order"]["payment_status"] == "paid"
    assert tg.api.post(f"/orders/{order['id']}/actions/explode").status_code == 404
    assert tg.stock("SKU-1")[tg.location]["stock_on_hand"] == "8.0"
    include = tg.api.get(f"/orders/{order['id']}", params={"include": "order_line_items,company,shipping_address"})
    assert {"order", "order_line_items", "companies", "addresses"} <= set(include.json())


def test_deduct_at_fulfilled_setting(tg: TG) -> None:
    vid = seeded(tg)
    tg.settings(deduct_stock_at="fulfilled")
    order = tg.api.post("/orders", json=order_body(tg, vid, "DF", status="finalized", qty=2)).json()["order"]
    fid = tg.api.post(f"/orders/{order['id']}/actions/pack").json()["fulfillment"]["id"]
    assert tg.stock("SKU-1")[tg.location]["stock_on_hand"] == "10.0"
    assert tg.api.put(f"/fulfillments/{fid}", json={"fulfillment": {"status": "fulfilled"}}).status_code == 204
    row = tg.stock("SKU-1")[tg.location]
    assert (row["stock_on_hand"], row["committed"]) == ("8.0", "0.0")


def test_accounts_are_isolated(tg_server: ServedApp) -> None:
    one, two = TG(tg_server.url), TG(tg_server.url)
    vid = seeded(one)
    oid = one.api.post("/orders", json=order_body(one, vid)).json()["order"]["id"]
    assert two.api.get(f"/orders/{oid}").status_code == 404
    assert two.api.get("/variants").json()["variants"] == []
    assert two.api.post("/orders", json=order_body(two, vid)).status_code == 422  # not its variant


def test_oauth_authorization_code_and_refresh(tg_server: ServedApp) -> None:
    acct = TG(tg_server.url)
    app = acct.post("/apps", {"client_id": "oauth-test-app", "redirect_uri": "https://hub.example/cb"})
    r = httpx.get(tg_server.url + "/oauth/authorize", params={
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uri"],
        "account_id": acct.aid, "state": "xyz"})
    assert r.status_code == 302 and "state=xyz" in r.headers["location"]
    code = r.headers["location"].split("code=")[1].split("&")[0]
    form = {"grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": app["redirect_uri"]}
    tokens = httpx.post(tg_server.url + "/oauth/token", data=form).json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 7200 and tokens["scope"] == "public"
    assert httpx.post(tg_server.url + "/oauth/token", data=form).status_code == 400  # codes work once
    me = httpx.get(tg_server.url + "/accounts/current", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["account"]["id"] == acct.aid
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
               "client_id": app["client_id"], "client_secret": app["client_secret"]}
    new = httpx.post(tg_server.url + "/oauth/token", json=refresh)
    assert new.status_code == 200 and new.json()["refresh_token"] != tokens["refresh_token"]
    assert httpx.post(tg_server.url + "/oauth/token", json=refresh).status_code == 400
    wrong = httpx.post(tg_server.url + "/oauth/token", json={**refresh, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    acct.post("/tokens/expire", {"access_token": new.json()["access_token"]})
    expired = httpx.get(tg_server.url + "/orders", headers={"Authorization": f"Bearer {new.json()['access_token']}"})
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert "invalid_token" in expired.headers["www-authenticate"]


def test_rate_limit_headers_and_429() -> None:
    with ServedApp(create_app({"rate_calls": 5, "rate_period": 300})) as served:
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        answers = [httpx.get(served.url + "/locations", headers=headers) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [a.headers["x-rate-limit-remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
        assert all(a.headers["x-rate-limit-limit"] == "5" for a in answers)
        assert int(answers[0].headers["x-rate-limit-reset"]) % 300 == 0  # a fixed wall-clock window
        assert answers[-1].json()["type"] == "Too Many Requests" and "retry-after" not in answers[-1].headers
        other = httpx.post(served.url + "/__sandbox__/accounts", json={}).json()["privileged_token"]
        assert httpx.get(served.url + "/locations", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_admin_order_list_by_status_follows_each_change(tg: TG) -> None:
    """The warehouse's poll (``orders?status=active``) reads the status index: every change of
    status, whichever route makes it, moves the order between the lists."""
    vid = seeded(tg)
    made = {ref: tg.api.post("/orders", json=order_body(tg, vid, ref, qty=1)).json()["order"]["id"]
            for ref in ("S1", "S2", "S3", "S4")}

    def listed(status: str) -> list[str]:
        return [o["reference_number"] for o in tg.get(f"/accounts/{tg.aid}/orders", status=status)]

    assert listed("active") == ["S1", "S2", "S3", "S4"]
    tg.ship("S2", [{"tracking_number": "1Z1", "tracking_company": "UPS"}])
    assert tg.api.post(f"/orders/{made['S3']}/actions/void").status_code == 200
    assert tg.api.delete(f"/orders/{made['S4']}").status_code == 204
    assert listed("active") == ["S1"]
    assert listed("fulfilled") == ["S2"] and listed("void") == ["S3"] and listed("deleted") == ["S4"]
    assert [o["reference_number"] for o in tg.orders()] == ["S1", "S2", "S3", "S4"]  # no filter: every order
    assert [o["status"] for o in tg.orders("S2")] == ["fulfilled"]
    assert tg.get(f"/accounts/{tg.aid}/orders", reference_number="S2", status="active") == []
    assert len(tg.get(f"/accounts/{tg.aid}/orders", reference_number="S1", status="active")) == 1
