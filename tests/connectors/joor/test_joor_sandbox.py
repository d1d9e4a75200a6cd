"""The JOOR sandbox over real HTTP: auth, the orders filters, sync/export flags, paging, bulk inventory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from joor_support import Admin

from orderbridge.connectors.joor.client import auth_header, wire_time


def api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": auth_header(token)}, timeout=10)


def test_bad_or_missing_token_is_401_in_joors_error_envelope(url: str, admin: Admin) -> None:
    acct = admin.account()
    assert api(url, acct["token"]).get("/v2/orders", params={"sync": 0}).status_code == 200
    for headers in ({}, {"Authorization": auth_header("wrong")}, {"Authorization": "OAuth2 not*base64"},
                    {"Authorization": f"Bearer {acct['token']}"}):
        resp = httpx.get(url + "/v2/orders", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["errors"][0]["status"] == "401"
        assert resp.json()["errors"][0]["message"]


def test_filters_validate_their_values(url: str, admin: Admin) -> None:
    c = api(url, admin.account()["token"])
    for params in ({"order_type": 9}, {"export_status": 0}, {"sync": 2}, {"count": 0},
                   {"date_start": wire_time(datetime.now(UTC))}, {"date_start": "yesterday", "date_end": "today"}):
        resp = c.get("/v2/orders", params=params)
        assert resp.status_code == 400, params
        assert resp.json()["errors"][0]["message"]


def test_sync_marks_exported_and_export_status_selects(url: str, admin: Admin) -> None:
    acct = admin.account()
    c = api(url, acct["token"])
    ids = admin.generate(acct["id"], 5)
    admin.set_status(acct["id"], ids[4], "Pending")
    peek = c.get("/v2/orders", params={"sync": 0, "order_type": 6}).json()
    assert peek["total"] == 4 and all(o["export_status"] == "Not Exported" for o in peek["orders"])
    first = c.get("/v2/orders", params={"order_type": 6, "count": 3}).json()  # sync=1 by default
    assert [str(o["order_id"]) for o in first["orders"]] == ids[:3]
    assert c.get("/v2/orders", params={"order_type": 6}).json()["orders"][0]["order_id"] == int(ids[3])
    assert c.get("/v2/orders", params={"order_type": 6}).json()["orders"] == []  # nothing left to export
    done = c.get("/v2/orders", params={"sync": 0, "order_type": 6, "export_status": 3}).json()
    assert done["total"] == 4
    states = admin.states(acct["id"])
    assert [states[i]["export_count"] for i in ids] == [1, 1, 1, 1, 0]
    # Modified after export: export_status 4 finds it; 2 does not.
    admin.http.post(f"/accounts/{acct['id']}/orders/{ids[0]}/modify", json={"notes": "ship early"})
    assert [o["order_id"] for o in c.get("/v2/orders", params={"sync": 0, "order_type": 6, "export_status": 4})
            .json()["orders"]] == [int(ids[0])]
    assert c.get("/v2/orders", params={"sync": 0, "order_type": 3, "export_status": 2}).json()["total"] == 1


def test_date_range_filters_on_modification_and_paging_reports_the_next_start(url: str, admin: Admin) -> None:
    acct = admin.account()
    c = api(url, acct["token"])
    old = admin.orders(acct["id"], {"modified_date": "2025-01-01T00:00:00Z", "order_date": "2025-01-01T00:00:00Z"})
    new = admin.generate(acct["id"], 7)
    now = datetime.now(UTC)
    rng = {"date_start": wire_time(now - timedelta(hours=1)), "date_end": wire_time(now + timedelta(minutes=1))}
    got: list[int] = []
    start: Any = 0
    while start is not None:
        page = c.get("/v2/orders", params={"sync": 0, "order_type": 6, "count": 3, "start_from": start, **rng}).json()
        assert page["total"] == 7
        got += [o["order_id"] for o in page["orders"]]
        start = page["next_start_from"]
    assert got == [int(i) for i in new] and int(old[0]) not in got


def test_sync_check_fails_orders_missing_required_fields(url: str, admin: Admin) -> None:
    acct = admin.account()
    c = api(url, acct["token"])
    good, bad = admin.orders(acct["id"], {}, {"customer_code": ""})
    assert [o["order_id"] for o in c.get("/v2/orders", params={"order_type": 6}).json()["orders"]] == [int(good)]
    state = admin.states(acct["id"])[bad]
    assert state["export_state"] == "failed" and "customer_code" in state["export_message"]
    assert c.get("/v2/orders", params={"sync": 0, "order_type": 6, "export_status": 2}).json()["total"] == 1


def item(**fields: Any) -> dict[str, Any]:
    return fields


def test_bulk_inventory_passes_and_fails_item_by_item(url: str, admin: Admin) -> None:
    acct = admin.account()
    c = api(url, acct["token"])
    admin.generate(acct["id"], 1)
    entry = admin.catalog(acct["id"])[0]
    body = {"inventory_items": {"inventory_item": [
        item(upc=entry["upc"], inventory=12, warehouse="MAIN"),
        item(style_number=entry["style_number"], color_code=entry["color_code"], size=entry["size"], inventory=3,
             warehouse="WEST", inventory_date="12-01-2026"),
        item(upc="000000000000", inventory=1, warehouse="MAIN"),
        item(upc=entry["upc"], inventory="many", warehouse="MAIN"),
        item(upc=entry["upc"], inventory=1, warehouse="NOWHERE"),
        item(inventory=1),
    ]}}
    resp = c.post("/v2/bulk-inventory", json=body)
    assert resp.status_code == 200
    data = resp.json()
    assert data["sku_count"] == 2
    assert [e["status"] for e in data["inventory_log"]] == ["pass", "pass", "fail", "fail", "fail", "fail"]
    assert "style library" in data["inventory_log"][2]["message"]
    assert "integer" in data["inventory_log"][3]["message"]
    assert "Order Settings" in data["inventory_log"][4]["message"]
    held = {(p["warehouse"], p["upc"]): p["inventory"] for p in admin.http.get(
        f"/accounts/{acct['id']}/inventory").json()}
    assert held == {("MAIN", entry["upc"]): 12, ("WEST", entry["upc"]): 3}


def test_bulk_inventory_refuses_a_malformed_body_whole(url: str, admin: Admin) -> None:
    c = api(url, admin.account()["token"])
    for body in ({}, {"inventory_items": {"inventory_item": []}}, {"inventory_items": "x"}):
        resp = c.post("/v2/bulk-inventory", json=body)
        assert resp.status_code == 400
        assert "inventory_item" in resp.json()["errors"][0]["message"]
    assert c.put("/v2/bulk-inventory", content=b"{not json").status_code == 400
