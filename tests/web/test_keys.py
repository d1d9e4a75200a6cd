"""The API keys page, in a real browser: a merchant's user creates a cart key (its secret shown once),
the key works against /v1 over HTTP, the user revokes it in the browser and the API refuses it.
A merchant's user sees and manages only that merchant's keys; warehouse keys are for administrators."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from orderbridge.api.keys import create_key
from orderbridge.ledger import schema as t
from tests.api.api_support import order
from tests.web.conftest import csrf_of, http_login, login
from tests.web.world import two_merchants_with_api


def _v1(served: Any, key: tuple[str, str]) -> httpx.Client:
    return httpx.Client(base_url=served.server.url + "/v1", auth=key, timeout=10)


def test_create_use_and_revoke_a_key_in_the_browser(browser: Any, serve: Any, shots: Path) -> None:
    app = serve(two_merchants_with_api(), users={"admin": None, "ann": "acme"})
    theirs = create_key(app.hub.db, "cart", connections=["globex-cart"], label="globex storefront")
    warehouse = create_key(app.hub.db, "warehouse", connections=["acme-api-wms", "globex-api-wms"], label="3PL")
    page = browser.new_page()
    login(page, app.url, "ann")
    page.get_by_role("link", name="API keys").click()
    assert page.url == app.url + "/keys"
    text = page.inner_text("main")
    assert "No API keys yet." in text  # globex's key and the warehouse key are not ann's to see
    assert theirs.info.api_user not in text and warehouse.info.api_user not in text
    assert page.locator("#level option").all_inner_texts() == ["cart", "merchant"]
    assert "globex" not in page.inner_text("#key-form")

    page.select_option("#level", "cart")
    page.get_by_label("acme-cart").check()
    page.fill("#label", "storefront")
    page.get_by_role("button", name="Create key").click()
    text = page.inner_text("main")
    assert "Copy the API key now" in text and "will never show it again" in text
    api_user, api_key = page.input_value("#new-api-user"), page.input_value("#new-api-key")
    assert api_user.startswith("obc_") and len(api_key) >= 40
    page.screenshot(path=str(shots / "api-keys.png"), full_page=True)

    with _v1(app, (api_user, api_key)) as v1:  # the key works over plain HTTP
        created = v1.post("/cart/orders/cartrover", json=order("K-1", ("ACME-1", 1))).json()
        assert created["success_code"] is True, created
        listed = v1.get("/cart/orders/list/any").json()
        assert listed["success_code"] is True and [o["cust_ref"] for o in listed["response"]] == ["K-1"]

    page.goto(app.url + "/keys")  # shown once: a reload no longer holds the secret
    assert api_key not in page.content()
    row = page.locator("table.keys tbody tr", has_text=api_user)
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["cart", "acme", "acme-cart", "storefront"] and cells[6] != "-" and cells[7] == "-", cells

    page.get_by_role("button", name=f"Revoke {api_user}").click()
    assert f"Revoked the key {api_user}" in page.inner_text("main")
    assert page.locator("table.keys tbody tr", has_text=api_user).locator("td").nth(7).inner_text() != "-"
    with _v1(app, (api_user, api_key)) as v1:
        refused = v1.get("/cart/orders/list/any").json()
    assert refused["success_code"] is False and "revoked" in refused["message"], refused
    page.close()


def test_a_merchants_user_manages_only_that_merchants_keys(serve: Any) -> None:
    app = serve(two_merchants_with_api(), users={"admin": None, "ann": "acme"})
    theirs = create_key(app.hub.db, "merchant", merchant="globex", label="globex erp")
    ann = http_login(app.url, "ann")
    token = csrf_of(ann.get("/keys").text)

    def refused(data: dict[str, Any], expected: str) -> None:
        r = ann.post("/keys/new", data={"csrf_token": token, "label": "sneaky", **data})
        assert expected in html.unescape(r.text), (data, r.text[:2000])

    refused({"level": "warehouse", "connection": "acme-api-wms"}, "only an administrator creates them")
    refused({"level": "cart", "connection": "globex-cart"}, "no connection named 'globex-cart'")
    refused({"level": "merchant", "connection": "globex-api-wms"}, "no connection named 'globex-api-wms'")
    assert ann.post(f"/keys/{theirs.info.id}/revoke", data={"csrf_token": token}).status_code == 404
    # A merchant key without a connection is ann's own merchant's, whatever merchant the form names.
    r = ann.post("/keys/new", data={"csrf_token": token, "level": "merchant", "merchant": "globex", "label": "erp"})
    assert "Your new merchant key" in r.text
    with app.hub.db.connect() as conn:
        k, m = t.api_keys, t.merchants
        rows = conn.execute(sa.select(k.c.label, m.c.name, k.c.revoked_at).join(m, m.c.id == k.c.merchant_id)
                            .order_by(k.c.id)).all()
    assert [(r.label, r.name, r.revoked_at) for r in rows] == [("globex erp", "globex", None), ("erp", "acme", None)]

    admin = http_login(app.url)
    page = html.unescape(admin.get("/keys").text)
    assert theirs.info.api_user in page and "globex erp" in page and "warehouse" in page
    token = csrf_of(page)
    r = admin.post("/keys/new", data={"csrf_token": token, "level": "warehouse", "label": "3PL",
                                      "connection": ["acme-api-wms", "globex-api-wms"]})
    assert "Your new warehouse key" in r.text and "acme-api-wms, globex-api-wms" in r.text
    assert admin.post(f"/keys/{theirs.info.id}/revoke", data={"csrf_token": token}).status_code == 200
    with app.hub.db.connect() as conn:
        assert conn.execute(sa.select(k.c.revoked_at).where(k.c.id == theirs.info.id)).scalar() is not None
