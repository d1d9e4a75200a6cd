"""The API served over real HTTP against a ledger, with keys of every level for two merchants."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from orderbridge.api.keys import create_key
from orderbridge.api.settings import ApiSettings
from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t
from orderbridge.web.app import create_app


def two_merchants() -> AppConfig:
    """acme and beta, each with an API Access cart routed to a CartRover API warehouse."""
    connections, routes = [], []
    for m in ("acme", "beta"):
        connections += [{"name": f"{m}-cart", "merchant": m, "type": "cartrover_cart"},
                        {"name": f"{m}-wms", "merchant": m, "type": "cartrover_wms"}]
        routes.append({"source": f"{m}-cart", "backend": f"{m}-wms"})
    return AppConfig.model_validate({
        "runner": {"concurrency": 4, "lease_seconds": 30},
        "merchants": [{"name": "acme"}, {"name": "beta"}], "connections": connections, "routes": routes,
        "ship_methods": [{"merchant": "acme", "source": "Ground", "carrier": "UPS", "service": "03"}],
    })


@dataclass
class Served:
    hub: Hub
    url: str
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def client(self, key: str | tuple[str, str], **kw: Any) -> httpx.Client:
        auth = self.keys[key] if isinstance(key, str) else key
        return httpx.Client(base_url=self.url + "/v1", auth=auth, timeout=10, **kw)

    def key(self, name: str, level: str, **kw: Any) -> tuple[str, str]:
        made = create_key(self.hub.db, level, **kw)
        self.keys[name] = (made.info.api_user, made.api_key)
        return self.keys[name]

    def merchant_pk(self, name: str) -> int:
        with self.hub.db.connect() as conn:
            return int(conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == name)).scalar_one())


def serve(hub: Hub, settings: ApiSettings | None = None) -> Iterator[Served]:
    with ServedApp(create_app(hub, with_runner=False, api=settings)) as app:
        yield Served(hub=hub, url=app.url)


def standard_keys(s: Served) -> None:
    for m in ("acme", "beta"):
        s.key(f"{m}-cart", "cart", connections=[f"{m}-cart"])
        s.key(f"{m}-merchant", "merchant", merchant=m)
        s.key(f"{m}-wms", "merchant", connections=[f"{m}-wms"])
    s.key("warehouse", "warehouse", connections=["acme-wms", "beta-wms"])
    s.key("acme-warehouse", "warehouse", connections=["acme-wms"])


def order(cust_ref: str, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {"cust_ref": cust_ref, "cust_po_no": f"PO-{cust_ref}", "ship_first_name": "Ada",
            "ship_last_name": "Lovelace",
            "ship_address_1": "1 Main St", "ship_city": "Springfield", "ship_state": "IL", "ship_zip": "62701",
            "ship_country": "USA", "ship_code": "Ground", "sub_total": "20.00", "grand_total": "20.00",
            "items": [{"item": sku, "quantity": qty, "price": "10.00"} for sku, qty in (lines or [("SKU-1", 2)])],
            **extra}
