"""What the dashboard's buttons and forms do, checked in the ledger: bulk retry of an error group,
cancel sending, re-pull, connection switches, test and diagnosis, mappings by form and CSV."""

from __future__ import annotations

import html
import re
import threading
from typing import Any

import sqlalchemy as sa

from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from tests.conftest import shop_config
from tests.support.engine import sync
from tests.web.conftest import csrf_of, http_login


def sync_elsewhere(hub: Hub) -> None:
    """Run the jobs to idle in a thread of its own (Playwright holds an event loop in this one)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sync(hub)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)
    assert not errors, errors


def order_row(hub: Hub, external_id: str) -> Any:
    with hub.db.connect() as conn:
        return conn.execute(sa.select(t.orders).where(t.orders.c.external_id == external_id)).one()


def test_buttons_and_forms_change_the_ledger(serve: Any, admin: Any, shop_server: Any, db_url: str) -> None:
    admin.stock({"SKU-1": 10})
    admin.order("1", [("SKU-1", 1)])
    admin.order("2", [("OLD-1", 1)])
    admin.order("3", [("OLD-1", 2)])
    admin.order("4", [("GONE-9", 1)])
    app = serve(shop_config(shop_server.url))
    worker = Hub(db=open_ledger(db_url), runner=app.hub.runner, http_timeout=5)  # the runner, as a separate process
    sync_elsewhere(worker)
    assert order_row(app.hub, "2").status == "error"
    client = http_login(app.url)

    def post(path: str, data: dict[str, Any] | None = None, files: Any = None, page: str = "/") -> str:
        token = csrf_of(client.get(page).text)
        r = client.post(path, data={"csrf_token": token, **(data or {})}, files=files)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return html.unescape(r.text)

    # The error queue groups the two orders with the same unknown SKU; an alias, then a bulk retry.
    queue = html.unescape(client.get("/errors").text)
    assert "2 orders: SKU OLD-1 is unknown to the WMS" in queue and "1 order: SKU GONE-9" in queue
    assert "Add an alias for OLD-1" in queue
    admin.stock({"OLD-1": 5})  # the product is created at the WMS instead of an alias
    page = post("/errors/retry", {"merchant": "acme", "code": "unknown_sku",
                                  "message": "SKU OLD-1 is unknown to the WMS"})
    assert "2 order(s) will be retried" in page
    sync_elsewhere(worker)
    assert order_row(app.hub, "2").status == "at_wms" and order_row(app.hub, "3").status == "at_wms"

    # Cancel sending (only before delivery), retry and re-pull from the order's page.
    gone = order_row(app.hub, "4")
    assert "will not be sent to the backend" in post(f"/orders/{gone.id}/cancel")
    assert order_row(app.hub, "4").status == "canceled" and order_row(app.hub, "4").sending_canceled
    first = order_row(app.hub, "1")
    assert "was already sent to the backend" in post(f"/orders/{first.id}/cancel")
    page = post(f"/orders/{first.id}/repull")
    assert re.search(r"Re-pulled order PO-1 from shop: \w+", page), page
    assert "step(s) will run again" in post(f"/orders/{first.id}/retry")
    detail = html.unescape(client.get(f"/orders/{first.id}").text)
    assert "Order created in wms" in detail and "Retry: requested by admin in the dashboard" in detail
    assert '"number": "PO-1"' in detail  # the source payload is shown

    # Connection switches, the test button and the diagnosis.
    assert "Test passed" in post("/connections/shop/test")
    post("/connections/shop/switch", {"what": "enabled", "value": "off"})
    post("/connections/shop/switch", {"what": "test_mode", "value": "off"})
    with app.hub.db.connect() as conn:
        row = app.hub.connection(conn, "shop")
    assert (row.enabled, row.test_mode) == (False, False)
    post("/connections/shop/switch", {"what": "enabled", "value": "on"})
    post("/connections/shop/switch", {"what": "test_mode", "value": "on"})
    admin.order("5", [("SKU-1", 1)])
    diagnosis = post("/connections/shop/diagnose", {"days": "30"})
    assert "not_seen" in diagnosis and ">5<" in diagnosis

    # Mappings: a ship method by form; aliases by CSV (a bad file imports nothing), exported again.
    assert "mapped; 0 order(s) will be retried" in post("/mappings/ship-method", {
        "merchant": "acme", "source_method": "Express", "carrier": "UPS", "service": "Next Day"})
    bad = post("/mappings/aliases/import", files={"file": ("a.csv", b"merchant,alias,sku\nacme,A-1,\nnobody,B-1,B\n")})
    assert "nothing was imported: line 2: alias or sku is empty" in bad
    page = post("/mappings/aliases/import", files={"file": ("a.csv", b"merchant,alias,sku\nacme,A-1,SKU-1\n"
                                                                    b"acme,A-2,SKU-2\n")})
    assert "2 alias(es) imported" in page
    exported = client.get("/mappings/aliases.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == ["merchant,alias,sku", "acme,A-1,SKU-1", "acme,A-2,SKU-2"]
    assert client.get("/mappings/ship-methods.csv").text.splitlines()[1] == "acme,Express,UPS,Next Day"
    worker.db.dispose()
