"""Tenants: through every dashboard route (enumerated from the route table), a user of merchant acme
tries to read and change merchant globex's orders, connections, mappings, inventory and API keys,
with GET and with POST carrying a valid form token of acme's own session. acme's user gets nothing
of globex's, and every row of globex's in the ledger is unchanged afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from orderbridge.api.keys import create_key
from orderbridge.engine.provision import upsert_ship_method
from orderbridge.ledger import schema as t
from tests.support.routes import fill, merchant_rows, route_table
from tests.web.conftest import csrf_of, http_login
from tests.web.world import add_orders, add_stock, two_merchants_with_api

NOT_DATA = {"/dashboard/login": "signs in whoever knows the password", "/dashboard/logout": "ends one's own session",
            "/dashboard/static/{path}": "the stylesheet"}
ERROR = ("unknown_sku", "SKU GLOBEX-LOST is unknown to the WMS")


def _globex(app: Any) -> dict[str, Any]:
    """globex's data, and the strings that would show it (none of which acme's user ever sends)."""
    add_orders(app.hub, "globex-shop", 2, prefix="GLOBEX-PO-", sku="GLOBEX-STOCK", customer="Gus", status="error")
    add_orders(app.hub, "globex-cart", 1, prefix="GLOBEX-PO-API-", sku="GLOBEX-STOCK", customer="Gus")
    add_stock(app.hub, "globex-wms", {"GLOBEX-STOCK": 9})
    with app.hub.db.begin() as conn:
        o, c, m = t.orders, t.connections, t.merchants
        conn.execute(o.update().where(o.c.status == "error").values(error_code=ERROR[0], error_message=ERROR[1]))
        upsert_ship_method(conn, conn.execute(sa.select(m.c.id).where(m.c.name == "globex")).scalar_one(),
                           "Globex Express", "GLOBEXCARRIER", "GLOBEXSVC")
        orders = [str(i) for i in conn.execute(sa.select(o.c.id).join(c, c.c.id == o.c.connection_id).where(
            c.c.name.like("globex-%")).order_by(o.c.id)).scalars()]
    keys = [create_key(app.hub.db, "cart", connections=["globex-cart"], label="globex-key-label"),
            create_key(app.hub.db, "merchant", connections=["globex-api-wms"], label="globex-key-label"),
            create_key(app.hub.db, "warehouse", connections=["acme-api-wms", "globex-api-wms"],
                       label="globex-key-label")]
    return {"orders": orders, "keys": [str(k.info.id) for k in keys],
            "connections": ["globex-shop", "globex-wms", "globex-cart", "globex-api-wms"],
            "markers": ["Gus ", "GLOBEX-PO-", "GLOBEX-STOCK", "GLOBEXCARRIER", "GLOBEXSVC", "globex-key-label",
                        *(k.info.api_user for k in keys)]}


def _forms(token: str, g: dict[str, Any]) -> list[dict[str, Any]]:
    """Forms naming globex's things in every field a dashboard form has."""
    common = {"csrf_token": token, "merchant": "globex", "type": "test_shop", "credentials.token": "x",
              "code": ERROR[0], "message": ERROR[1], "alias": "GLOBEX-OLD", "sku": "ANN-SKU",
              "source_method": "Globex Express", "carrier": "ANN", "service": "ANN", "what": "enabled",
              "value": "off", "level": "cart", "label": "ann", "order_id": "1", "days": "1"}
    return [{**common, "name": "globex-shop", "route": "globex-wms", "connection": "globex-cart"},
            {**common, "name": "ann-new", "route": "globex-wms", "connection": "globex-api-wms", "level": "merchant"},
            {**common, "merchant": "", "name": "ann-wh", "connection": "globex-api-wms", "level": "warehouse"}]


CSV = (b"merchant,alias,sku,source_method,carrier,service\n"
       b"globex,GLOBEX-OLD,ANN-SKU,Globex Express,ANN,ANN\n")


def test_a_merchants_user_gets_and_changes_nothing_of_another_merchant(serve: Any) -> None:
    app = serve(two_merchants_with_api(), users={"admin": None, "ann": "acme"})
    add_orders(app.hub, "acme-shop", 2, prefix="ACME-PO-", sku="ACME-1", customer="Ada")
    g = _globex(app)
    table = [ep for ep in route_table(app.server.server.config.app) if ep.mount == "/dashboard"]
    ann = http_login(app.url, "ann")
    assert "ACME-PO-1" in ann.get("/orders").text  # ann does see her own merchant's orders
    before = merchant_rows(app.hub.db, "globex")
    assert sum(len(rows) for rows in before.values()) > 20
    values = {"name": g["connections"], "oid": g["orders"], "kid": g["keys"]}
    query = {"connection": "globex-shop", "merchant": "globex", "status": "error", "type": "test_shop", "q": "GLOBEX",
             "alias": "GLOBEX-OLD"}
    tried: dict[str, int] = {"GET": 0, "POST": 0}
    covered = set()
    for ep in table:
        rel = ep.path.removeprefix("/dashboard")
        if ep.path in NOT_DATA:
            continue
        covered.add((ep.path, ep.method))
        param = ep.params[0] if ep.params else None
        for value in values[param] if param else [""]:
            url = fill(rel, {param: value}) if param else rel
            if ep.method == "GET":
                answers = [ann.get(url), ann.get(url, params=query)]
            else:
                token = csrf_of(ann.get("/keys").text)
                answers = [ann.post(url, data=form, files={"file": ("m.csv", CSV, "text/csv")})
                           for form in _forms(token, g)]
            for r in answers:
                tried[ep.method] += 1
                leaked = [m for m in g["markers"] if m in r.text]
                assert not leaked, (ep.method, url, leaked)
                if param:  # globex's connection, order or key: the same answer as one that does not exist
                    assert r.status_code == 404, (ep.method, url, r.status_code)
                else:
                    assert r.status_code in (200, 404, 422), (ep.method, url, r.status_code)
    print(f"tenant isolation: {len(covered)} dashboard routes, {tried} requests")
    assert covered == {(ep.path, ep.method) for ep in table if ep.path not in NOT_DATA} and len(covered) >= 26
    after = merchant_rows(app.hub.db, "globex")
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not changed, changed

    # The snapshot does see a change of globex's: the administrator switches a connection off.
    admin = http_login(app.url)
    token = csrf_of(admin.get("/").text)
    r = admin.post("/connections/globex-shop/switch", data={"csrf_token": token, "what": "enabled", "value": "off"})
    assert r.status_code == 200
    assert merchant_rows(app.hub.db, "globex")["connections"] != before["connections"]


# Tables that hold nothing of a merchant's, each for the reason given.
NO_MERCHANT_DATA = {"rate_buckets"}  # call-budget counters per external account: no orders, no settings


def test_the_ledger_snapshot_covers_every_table(serve: Any) -> None:
    """Every table has rows a merchant owns (found through foreign keys): none escapes the comparison."""
    app = serve(two_merchants_with_api())
    assert set(merchant_rows(app.hub.db, "globex")) == {tb.name for tb in t.metadata.sorted_tables} - NO_MERCHANT_DATA
    with httpx.Client(base_url=app.server.url) as anon:
        assert anon.get("/health").status_code == 200
