"""No route of the web app answers an anonymous caller with data: every route of the full route table
(top level, the dashboard and the /v1 API, enumerated from the app objects) is tried without a login,
without a session's form token, with a wrong and with a revoked API key. Only the routes named in
PUBLIC are open, each for the reason given."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from orderbridge.api.keys import create_key, revoke_key
from orderbridge.ledger import schema as t
from tests.api.api_support import order
from tests.support.routes import Endpoint, fill, merchant_rows, route_table
from tests.web.conftest import csrf_of
from tests.web.world import add_orders, add_stock, two_merchants_with_api

PUBLIC = {
    ("/health", "GET"): "liveness probe for load balancers: says only ok, runner and failing job count",
    ("/webhooks/{connection}", "POST"): "webhook intake: every event is checked against its connection's signature",
    ("/dashboard/login", "GET"): "the login form",
    ("/dashboard/login", "POST"): "the login itself (rate limited, see test_login_limits.py)",
    ("/dashboard/static/{path}", "GET"): "the stylesheet",
    ("/v1/openapi.json", "GET"): "the API's description, public like CartRover's documentation",
}
MARKERS = ("Ada ", "ACME-OLD", "ACME-STOCK", "acme-label", "globex", "CART-")


@pytest.fixture
def world(serve: Any) -> Any:
    app = serve(two_merchants_with_api(), users={"admin": None, "ann": "acme"})
    add_orders(app.hub, "acme-shop", 2, prefix="ACME-", sku="ACME-1", customer="Ada", status="error")
    add_orders(app.hub, "acme-cart", 2, prefix="CART-", sku="ACME-1", customer="Ada")
    add_stock(app.hub, "acme-wms", {"ACME-STOCK": 7})
    app.keys = {level: create_key(app.hub.db, level, connections=[conn], label="acme-label")
                for level, conn in (("cart", "acme-cart"), ("merchant", "acme-api-wms"), ("warehouse", "acme-api-wms"))}
    return app


def _no_data(r: httpx.Response, where: Any) -> None:
    leaked = [m for m in MARKERS if m in r.text]
    assert not leaked, (where, leaked, r.text[:1000])


def _ledger(app: Any) -> dict[str, Any]:
    return {m: merchant_rows(app.hub.db, m) for m in ("acme", "globex")}


def test_every_route_refuses_anonymous_callers(world: Any) -> None:
    table = route_table(world.server.server.config.app)
    with world.hub.db.connect() as conn:
        oid = conn.execute(sa.select(sa.func.min(t.orders.c.id))).scalar_one()
    values = {"name": "acme-shop", "oid": str(oid), "kid": str(world.keys["cart"].info.id), "connection": "acme-shop",
              "cust_ref": "CART-1", "sku": "ACME-1", "status": "any", "path": "dashboard.css"}
    revoked = create_key(world.hub.db, "cart", connections=["acme-cart"])
    revoke_key(world.hub.db, revoked.info.api_user)
    wrong = (world.keys["cart"].info.api_user, "not-the-key")
    before = _ledger(world)
    checked: dict[str, int] = {"public": 0, "dashboard": 0, "api": 0, "top": 0}
    anon = httpx.Client(base_url=world.server.url, timeout=10)
    session = httpx.Client(base_url=world.server.url, timeout=10)  # an anonymous session with a form token
    form = {"merchant": "acme", "name": "acme-shop", "alias": "X", "sku": "Y", "level": "cart",
            "connection": "acme-cart", "what": "enabled", "value": "off", "code": "unknown_sku", "message": "m"}
    for ep in table:
        url = fill(ep.path, values)
        where = (ep.method, ep.path)
        if (ep.path, ep.method) in PUBLIC:
            checked["public"] += 1
            continue
        if ep.mount == "/v1":
            for auth in (None, wrong, (revoked.info.api_user, revoked.api_key)):
                r = anon.request(ep.method, url, auth=auth, json=order("ANON-1") if ep.method == "POST" else None)
                answer = r.json()
                assert r.status_code == 200 and answer["success_code"] is False, (where, auth, answer)
                expected = ("Missing credentials" if auth is None else "Invalid credentials")
                assert answer["message"].startswith(expected) and "response" not in answer, (where, auth, answer)
                _no_data(r, where)
            checked["api"] += 1
        elif (ep.path, ep.method) == ("/metrics", "GET"):  # for a scraper with the bearer token only
            for headers in ({}, {"Authorization": "Bearer guess"}):
                r = anon.get(url, headers=headers)
                assert r.status_code == 401 and "orderbridge_orders" not in r.text, (where, r.status_code)
            checked["top"] += 1
        elif ep.method == "GET":  # dashboard pages and the top-level redirect: the login page, nothing else
            r = anon.get(url, follow_redirects=False)
            assert r.status_code in (303, 307), (where, r.status_code)
            r = anon.get(url, follow_redirects=True)
            assert r.status_code == 200 and r.url.path == "/dashboard/login", where
            assert "Log in to orderbridge" in r.text, where
            _no_data(r, where)
            checked["dashboard" if ep.mount else "top"] += 1
        else:
            r = anon.post(url, data=form, follow_redirects=False)  # no token at all: the form is refused
            assert r.status_code == 403 and "Form rejected" in r.text, (where, r.status_code)
            _no_data(r, where)
            token = csrf_of(session.get("/dashboard/login").text)  # afresh: /logout clears the session
            r = session.post(url, data={**form, "csrf_token": token}, follow_redirects=False)  # a token, no login
            assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login"), (where, r.status_code)
            checked["dashboard"] += 1
    assert {(ep.path, ep.method) for ep in table} >= set(PUBLIC), "a public route is gone: update PUBLIC"
    print(f"anonymous access refused on {sum(checked.values()) - checked['public']} routes {checked}")
    assert sum(checked.values()) == len(table) and checked["public"] == len(PUBLIC)
    assert checked["dashboard"] >= 29 and checked["api"] >= 19 and checked["top"] >= 1
    assert _ledger(world) == before

    # The public routes give nothing away either.
    health = anon.get("/health")
    assert health.status_code == 200 and set(health.json()) == {"ok", "runner", "failing_jobs"}
    hook = anon.post("/webhooks/acme-shop", content=json.dumps({"id": "1"}).encode())
    assert hook.status_code in (400, 401), hook.status_code
    assert anon.get("/dashboard/static/dashboard.css").headers["content-type"].startswith("text/css")
    for r in (health, hook, anon.get("/v1/openapi.json"), anon.get("/dashboard/login")):
        _no_data(r, r.url)


def test_the_route_table_walk_sees_every_mount(world: Any) -> None:
    """The walk reaches into both mounted apps: a route added to either is checked above."""
    table: list[Endpoint] = route_table(world.server.server.config.app)
    mounts = {ep.mount for ep in table}
    assert mounts == {"", "/dashboard", "/dashboard/static", "/v1"}
    assert ("/dashboard/keys/{kid:int}/revoke", "POST") in {(ep.path, ep.method) for ep in table}
    assert ("/v1/merchant/inventory/{sku:path}", "GET") in {(ep.path, ep.method) for ep in table}
