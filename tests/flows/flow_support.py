"""Helpers for the cross-connector flows: sandbox admin clients, configs, and ledger queries."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from orderbridge.config import AppConfig
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t

RATE = {"calls": 50, "period": 1}
HOOKS = {"webhook_retry_delays": [0.05, 0.1], "webhook_timeout": 2.0, "demo_site": False,
         "rate_limit": {"enabled": False}}
LINE = {"sku": "MUG-1", "quantity": 2, "price": "12.00", "taxRate": "0.21"}


class Admin:
    """A JSON client of a sandbox's /__sandbox__ surface that fails loudly on any error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/__sandbox__", timeout=10)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.http.request(method, path, json=body, params=params)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


class Wix(Admin):
    def site(self, skus: dict[str, int]) -> dict[str, Any]:
        site = dict(self.call("POST", "/sites", {"siteId": str(uuid.uuid4())}))
        self.call("POST", f"/sites/{site['siteId']}/products", {"products": [
            {"name": sku, "sku": sku, "price": "12.00", "quantity": q} for sku, q in skus.items()]})
        return site

    def order(self, site: dict[str, Any], events: bool = True, **spec: Any) -> str:
        spec.setdefault("lines", [LINE])
        made = self.call("POST", f"/sites/{site['siteId']}/orders", spec, events=int(events))
        return str(made["order"]["id"])

    def act(self, site: dict[str, Any], oid: str, action: str) -> None:
        self.call("POST", f"/sites/{site['siteId']}/orders/{oid}/{action}", {})

    def fulfillments(self, site: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return dict(self.call("GET", f"/sites/{site['siteId']}/fulfillments"))

    def inventory(self, site: dict[str, Any]) -> dict[str, int]:
        return {i["sku"]: i["quantity"] for i in self.call("GET", f"/sites/{site['siteId']}/inventory")}

    def public_key(self) -> str:
        return str(self.call("GET", "/webhooks/public-key")["publicKey"])

    def deliveries(self, site: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/sites/{site['siteId']}/webhooks")["deliveries"])


class Holded(Admin):
    def account(self, products: list[dict[str, Any]], **seed: Any) -> str:
        key = f"flow-holded-{uuid.uuid4().hex[:12]}"
        self.call("POST", "/accounts", {"key": key, "name": key})
        self.call("POST", f"/accounts/{key}/seed", {"products": products, **seed})
        return key

    def docs(self, key: str, doc_type: str | None = None) -> list[dict[str, Any]]:
        params = {"type": doc_type} if doc_type else {}
        return list(self.call("GET", f"/accounts/{key}/documents", **params)["documents"])

    def stock(self, key: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/accounts/{key}/stock"))

    def units(self, key: str, sku: str, warehouse: str | None = None) -> float:
        data = self.stock(key)
        return float(data["by_sku"][sku][warehouse or data["default_warehouse"]])

    def send(self, key: str, doc_id: str, **body: Any) -> None:
        self.call("POST", f"/accounts/{key}/salesorders/{doc_id}/send", body)


def connection(name: str, kind: str, url: str, credentials: dict[str, Any],
               settings: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "merchant": "acme", "type": kind, "base_url": url, "test_mode": True,
            "credentials": credentials, "settings": settings or {}, "rate_limit": RATE}


def wix_connection(name: str, url: str, site: dict[str, Any], key: str = "") -> dict[str, Any]:
    creds = {"api_key": site["apiKey"], "site_id": site["siteId"]}
    if key:
        creds["webhook_public_key"] = key
    return connection(name, "wix", url, creds)


def config(connections: list[dict[str, Any]], routes: list[dict[str, Any]]) -> AppConfig:
    return AppConfig.model_validate({
        "runner": {"concurrency": 4, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}], "connections": connections, "routes": routes})



def orders(hub: Hub) -> dict[str, Any]:
    with hub.db.connect() as conn:
        return {r.external_id: r for r in conn.execute(sa.select(t.orders))}


def skipped(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return dict(conn.execute(sa.select(t.skipped_orders.c.external_id, t.skipped_orders.c.reason)).all())


def delivery_errors(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.external_id, t.deliveries.c.last_error).join(
            t.deliveries, t.deliveries.c.order_id == t.orders.c.id)).all()
    return {r.external_id: r.last_error or "" for r in rows}


