"""A key never sees another merchant's data, on any route of the table; revoked keys are refused;
the OpenAPI description lists every route the app serves."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from orderbridge.api.app import ENDPOINTS, build_api
from orderbridge.api.keys import list_keys, revoke_key
from orderbridge.engine.provision import upsert_ship_method
from orderbridge.ledger import schema as t
from orderbridge.web.app import create_app
from tests.api.api_support import Served, order
from tests.api.test_flow import ok
from tests.support.engine import sync
from tests.support.routes import fill, route_table

MARKERS = ("beta-1", "BETA-SKU", "BETA-SVC", '"beta"')
A_KEYS = ("acme-cart", "acme-merchant", "acme-wms", "acme-warehouse")


def _bodies(path: str, ref: str) -> list[Any]:
    if path.startswith("/cart/orders/cartrover") or path == "/cart/orders/batch":
        return [[order("acme-x", ("ACME-SKU", 1))]]
    if path.startswith("/cart/orders/cancel"):
        return [{"cust_ref": ref}]
    if path.startswith("/cart/orders/update"):
        return [{"order_status": "confirmed"}]
    if path.startswith("/merchant/orders/update"):
        return [{"order_status": "at_wms"}, {"order_status": "shipped", "shipments": [
            {"tracking_no": "STOLEN", "items": [{"item": "BETA-SKU", "quantity": 1}]}]}]
    if path == "/merchant/inventory":
        return [[{"sku": "ACME-SKU", "qty_available": 999}]]
    return [None]


def beta_state(api: Served) -> dict[str, Any]:
    with api.client("beta-cart") as cart, api.client("beta-wms") as wms:
        return {"order": ok(cart.get("/cart/orders/status/beta-1")), "stock": ok(wms.get("/merchant/inventory")),
                "list": ok(wms.get("/merchant/orders/list/any"))}


def test_merchant_a_gets_nothing_of_merchant_b(api: Served) -> None:
    with api.client("beta-cart") as cart:
        ok(cart.post("/cart/orders/cartrover", json=order("beta-1", ("BETA-SKU", 1))))
    with api.client("beta-wms") as wms:
        ok(wms.post("/merchant/inventory", json=[{"sku": "BETA-SKU", "qty_available": 5}]))
    beta_pk = str(api.merchant_pk("beta"))
    with api.hub.db.begin() as conn:
        upsert_ship_method(conn, int(beta_pk), "Express", "BETACARRIER", "BETA-SVC")
    sync(api.hub)
    before = beta_state(api)
    calls = 0
    clients = {key: api.client(key) for key in A_KEYS}
    # Every /v1 route of the web app's route table (not the API's own list): a route added any other way is tried.
    table = [ep for ep in route_table(create_app(api.hub, with_runner=False)) if ep.mount == "/v1"]
    routes = [(ep.method, ep.path.removeprefix("/v1").replace(":path}", "}")) for ep in table
              if ep.path != "/v1/openapi.json"]
    assert {(ep.method, ep.path) for ep in ENDPOINTS} == set(routes) and len(routes) >= 19
    for method, template in routes:
        for ref in ("beta-1", "PO-beta-1"):
            path = fill(template, {"cust_ref": ref, "sku": "BETA-SKU", "status": "any"})
            for key in A_KEYS:
                for headers in ({}, {"X-Merchant-Pk": beta_pk}):
                    for body in _bodies(template, ref):
                        r = clients[key].request(method, path, json=body, headers=headers)
                        calls += 1
                        answer = r.json()
                        assert r.status_code == 200 and "success_code" in answer
                        if answer["success_code"]:
                            leaked = json.dumps(answer.get("response"))
                            assert not any(m in leaked for m in MARKERS), (method, path, key, headers, leaked)
    assert calls > 150
    after = beta_state(api)
    assert after == before and after["order"]["order_status"] == "new" and after["order"]["shipments"] == []
    assert after["stock"][0]["qty_available"] == 5


def test_revoked_keys_are_refused(api: Served) -> None:
    user, _ = api.keys["acme-cart"]
    with api.client("acme-cart") as cart:
        assert ok(cart.get("/cart/orders/list/any")) == []
        revoke_key(api.hub.db, user)
        r = cart.get("/cart/orders/list/any")
        assert r.json()["success_code"] is False and "revoked" in r.json()["message"]
        assert r.json()["error_code"] == "Invalid"
    assert user not in [k.api_user for k in list_keys(api.hub.db)]
    assert [k.revoked_at is not None for k in list_keys(api.hub.db, include_revoked=True) if k.api_user == user] == [
        True]
    with api.hub.db.connect() as conn:  # only the hash is stored
        stored = conn.execute(sa.select(t.api_keys.c.secret_hash).where(t.api_keys.c.api_user == user)).scalar_one()
    assert stored != api.keys["acme-cart"][1] and len(stored) == 64


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _walk_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _walk_refs(v)]
    return []


def test_openapi_lists_every_served_route(api: Served) -> None:
    app = build_api(api.hub)
    served = {(route.path.replace(":path", ""), m.lower()) for route in app.app.routes  # type: ignore[attr-defined]
              if isinstance(route, Route) for m in (route.methods or []) if m != "HEAD"}
    with api.client("acme-cart") as client:
        doc = client.get("/openapi.json").json()
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    names = set(doc["components"]["schemas"])
    assert {r.rsplit("/", 1)[1] for r in _walk_refs(doc)} <= names
    for path, ops in doc["paths"].items():
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path
