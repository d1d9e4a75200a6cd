"""Who gets in and what they see: login required, wrong passwords, forged forms, expiring sessions,
and a merchant's user limited to that merchant (in the browser, and by direct requests)."""

from __future__ import annotations

import html
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Mount, Route

from orderbridge.engine.users import set_password
from orderbridge.ledger import schema as t
from tests.support.routes import fill
from tests.web.conftest import PASSWORD, csrf_of, http_login, login
from tests.web.world import add_orders, add_stock, two_merchants


@pytest.fixture
def world(serve: Any) -> Any:
    app = serve(two_merchants(), users={"admin": None, "ann": "acme"})
    add_orders(app.hub, "acme-shop", 3, prefix="ACME-", sku="ACME-1", customer="Ada")
    add_orders(app.hub, "globex-shop", 2, prefix="GLOBEX-", sku="GLOBEX-1", customer="Gus", status="error")
    add_stock(app.hub, "acme-wms", {"ACME-1": 7})
    add_stock(app.hub, "globex-wms", {"GLOBEX-1": 9})
    return app


def test_login_required_and_wrong_password(browser: Any, world: Any) -> None:
    page = browser.new_page()
    for path in ("/", "/orders", "/connections/acme-shop", "/mappings/aliases.csv"):
        page.goto(world.url + path)
        assert page.url.startswith(world.url + "/login"), path
    login(page, world.url, "ann", "not-the-password")
    assert "Wrong user name or password." in page.inner_text("main")
    login(page, world.url, "nobody", PASSWORD)
    assert "Wrong user name or password." in page.inner_text("main")
    page.goto(world.url + "/orders?status=at_wms")
    assert page.url.startswith(world.url + "/login")
    login(page, world.url, "ann", here=True)  # the login form kept ?next=: back to the page asked for
    assert page.url == world.url + "/orders?status=at_wms"
    assert "3 order(s) match" in page.inner_text("main")

    # A new password ends the sessions opened with the old one.
    set_password(world.hub.db, "ann", "a-brand-new-password")
    page.goto(world.url + "/orders")
    assert page.url.startswith(world.url + "/login")
    with httpx.Client(base_url=world.server.url) as anon:
        assert anon.get("/health").status_code == 200  # /health stays open
        assert anon.post("/webhooks/acme-shop", content=b"{}").status_code != 303  # so does the webhook intake
    page.close()


def test_forms_without_the_session_token_are_rejected(browser: Any, world: Any) -> None:
    page = browser.new_page()
    login(page, world.url)
    page.goto(world.url + "/mappings")
    page.fill("#alias", "FORGED")
    page.fill("#sku", "ACME-1")
    page.evaluate("document.querySelector('#alias-form input[name=csrf_token]').value = 'forged'")
    page.get_by_role("button", name="Save alias").click()
    assert "Form rejected" in page.inner_text("main")
    with world.hub.db.connect() as conn:
        assert conn.execute(sa.select(t.sku_aliases).where(t.sku_aliases.c.alias == "FORGED")).first() is None
    page.close()

    # Every POST of the dashboard, logged in, without the token or with another session's token: 403.
    mount = next(r for r in world.server.server.config.app.routes if isinstance(r, Mount))
    posts = [r.path for r in mount.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert len(posts) >= 15
    admin, other = http_login(world.url), http_login(world.url, "ann")
    foreign = csrf_of(other.get("/").text)
    for path in posts:
        url = fill(path, {"name": "acme-shop", "oid": "1", "kid": "1"})
        for data in ({}, {"csrf_token": foreign}):
            r = admin.post(url, data=data, follow_redirects=False)
            assert r.status_code == 403, (path, data, r.status_code)
    good = csrf_of(admin.get("/mappings").text)
    r = admin.post("/mappings/alias", data={"csrf_token": good, "merchant": "acme", "alias": "REAL", "sku": "ACME-1"})
    assert "Alias REAL → ACME-1 saved" in r.text


def test_sessions_expire(browser: Any, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_SESSION_MAX_AGE", "2")
    app = serve(two_merchants())
    page = browser.new_page()
    login(page, app.url)
    page.goto(app.url + "/orders")
    assert page.url == app.url + "/orders"
    time.sleep(2.5)  # idle longer than the session's max age
    page.goto(app.url + "/orders")
    assert page.url.startswith(app.url + "/login")
    page.close()


def test_a_merchants_user_sees_only_that_merchant(browser: Any, world: Any) -> None:
    with world.hub.db.connect() as conn:
        globex_order = conn.execute(sa.select(t.orders.c.id).where(t.orders.c.cust_po_no == "GLOBEX-1")).scalar()
    page = browser.new_page()
    login(page, world.url, "ann")
    page.goto(world.url + "/connections")
    text = page.inner_text("main")
    assert "acme-shop" in text and "acme-wms" in text and "globex" not in text
    page.goto(world.url + "/orders")
    text = page.inner_text("main")
    assert "3 order(s) match" in text and "ACME-1" in text and "GLOBEX" not in text
    page.goto(world.url + "/orders?q=GLOBEX-1")
    assert "0 order(s) match" in page.inner_text("main")
    for path in (f"/orders/{globex_order}", "/connections/globex-shop", "/connections/globex-wms/edit"):
        response = page.goto(world.url + path)
        assert response.status == 404, path
    page.goto(world.url + "/errors")
    assert "GLOBEX" not in page.inner_text("main") and "0 order(s) in error" in page.inner_text("main")
    page.goto(world.url + "/inventory")
    text = page.inner_text("main")
    assert "ACME-1" in text and "GLOBEX" not in text
    page.goto(world.url + "/mappings")
    text = page.inner_text("main")
    assert "ACME-OLD" in text and "GLOBEX" not in text
    page.goto(world.url + "/")
    assert "3 in all" in page.inner_text("main")
    page.close()

    ann = http_login(world.url, "ann")
    assert "GLOBEX" not in ann.get("/mappings/aliases.csv").text
    token = csrf_of(ann.get("/mappings").text)
    r = ann.post("/mappings/alias", data={"csrf_token": token, "merchant": "globex", "alias": "X", "sku": "Y"})
    assert "you cannot change mappings of merchant 'globex'" in html.unescape(r.text)
    r = ann.post(f"/orders/{globex_order}/retry", data={"csrf_token": token})
    assert r.status_code == 404
    r = ann.post("/connections/globex-shop/switch", data={"csrf_token": token, "what": "enabled", "value": "off"})
    assert r.status_code == 404
    r = ann.post("/connections/new", data={"csrf_token": token, "type": "test_wms", "name": "sneaky",
                                           "merchant": "globex", "credentials.token": "x"})
    with world.hub.db.connect() as conn:
        sneaky = conn.execute(sa.select(t.connections.c.merchant_id, t.merchants.c.name).join(
            t.merchants, t.merchants.c.id == t.connections.c.merchant_id).where(
            t.connections.c.name == "sneaky")).first()
        enabled = conn.execute(sa.select(t.connections.c.enabled).where(t.connections.c.name == "globex-shop")).scalar()
    assert sneaky is not None and sneaky.name == "acme"  # a merchant's user creates for their own merchant only
    assert enabled is True

    admin = http_login(world.url)
    assert "GLOBEX-OLD" in admin.get("/mappings/aliases.csv").text
    assert "5 order(s) match" in admin.get("/orders").text
