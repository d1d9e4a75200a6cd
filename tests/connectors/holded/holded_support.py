"""Helpers for the Holded tests: a sandbox admin client, orders, and connectors built against it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.support.sandbox_fixtures import SandboxAdmin

from orderbridge.connectors.base import DeliveryRequest
from orderbridge.connectors.errors import TransientError
from orderbridge.connectors.holded.connector import HoldedConnector, HoldedRouteOptions
from orderbridge.connectors.http import LocalBudget, RateSpec
from orderbridge.connectors.registry import build_connector
from orderbridge.domain.models import Address, Order, OrderLine, Totals

_ids = itertools.count(1)
ORDER_DATE = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


class ScaledBudget:
    """The connector's own budget with time compressed by ``factor`` (tests cannot wait minutes)."""

    def __init__(self, factor: float) -> None:
        self.inner = LocalBudget()
        self.factor = factor

    async def acquire(self, key: str, spec: RateSpec) -> None:
        await self.inner.acquire(key, spec.scaled(self.factor))


FAST = ScaledBudget(1000.0)


class Admin(SandboxAdmin):

    def reset(self) -> None:
        self._ok(self.http.delete("/faults"))
        self._ok(self.http.delete("/refusals"))
        self._ok(self.http.post("/quirks", json={
            "errors_on_http_200": True, "html_404": True, "auth_on_http_200": False, "custom_fields_quirk": True,
            "drafts_in_lists": False, "drafts_move_stock": True, "strict_designs": False, "page_size": 500}))

    def account(self, **seed: Any) -> str:
        key = f"test-holded-key-{next(_ids):06d}"
        self._ok(self.http.post("/accounts", json={"key": key, "name": key}))
        if seed:
            self.seed(key, **seed)
        return key

    def seed(self, key: str, **body: Any) -> dict[str, Any]:
        return dict(self._ok(self.http.post(f"/accounts/{key}/seed", json=body)))

    def info(self, key: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/accounts/{key}")))

    def default_warehouse(self, key: str) -> str:
        return str(self.stock(key)["default_warehouse"])

    def docs(self, key: str, doc_type: str | None = None, ref: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("type", doc_type), ("ref", ref)) if v}
        return list(self._ok(self.http.get(f"/accounts/{key}/documents", params=params))["documents"])

    def contacts(self, key: str) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get(f"/accounts/{key}/contacts")))

    def stock(self, key: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/accounts/{key}/stock")))

    def units(self, key: str, sku: str, warehouse: str | None = None) -> float:
        data = self.stock(key)
        return float(data["by_sku"][sku][warehouse or data["default_warehouse"]])

    def movements(self, key: str) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get(f"/accounts/{key}/movements")))

    def send(self, key: str, doc_id: str, **body: Any) -> dict[str, Any]:
        return dict(self._ok(self.http.post(f"/accounts/{key}/salesorders/{doc_id}/send", json=body)))

    def faults(self, **plan: Any) -> None:
        self._ok(self.http.post("/faults", json=plan))

    def refuse(self, match: str, info: str, count: int = 1) -> None:
        self._ok(self.http.post("/refusals", json={"match": match, "info": info, "count": count}))

    def quirks(self, **values: Any) -> None:
        self._ok(self.http.post("/quirks", json=values))

    def calls(self) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get("/calls")))


def connector(url: str, key: str, settings: dict[str, Any] | None = None, *, timeout: float = 5.0,
              budget: Any = FAST, name: str = "holded") -> HoldedConnector:
    conn = build_connector("holded", name=name, settings=settings or {}, credentials={"api_key": key},
                           base_url=url, test_mode=True, budget=budget, timeout=timeout)
    assert isinstance(conn, HoldedConnector)
    return conn


def make_order(lines: list[tuple[str, int, str]] | None = None, *, number: str | None = None,
               customer_id: str = "cust-1", email: str = "ada@example.com", tax_id: str = "",
               name: str = "Ada Lovelace", company: str = "", shipping: str = "0", tax_rate: str = "0.21",
               date: datetime = ORDER_DATE, notes: str = "") -> Order:
    number = number or f"10{next(_ids):04d}"
    rate = Decimal(tax_rate)
    order_lines = [OrderLine(sku=sku, quantity=qty, unit_price=Decimal(price),
                             tax=(Decimal(price) * qty * rate).quantize(Decimal("0.01")), description=f"Item {sku}")
                   for sku, qty, price in (lines or [("SKU-1", 1, "10.00")])]
    ship = Decimal(shipping)
    tax = sum((ln.tax for ln in order_lines), Decimal("0")) + (ship * rate).quantize(Decimal("0.01"))
    subtotal = sum((ln.unit_price * ln.quantity for ln in order_lines), Decimal("0"))
    address = Address(name=name, company=company, address1="Carrer del Mar 1", city="Barcelona", zip="08001",
                      state="Barcelona", country="ES", email=email, phone="600000000")
    return Order(external_id=f"wix-{number}", cust_po_no=number, order_date=date, ship_to=address, bill_to=address,
                 lines=order_lines, shipping_method="Standard" if ship else "",
                 totals=Totals(subtotal=subtotal, shipping=ship, tax=tax, total=subtotal + ship + tax, currency="EUR"),
                 customer_id=customer_id, tax_id=tax_id, notes=notes)


def request(order: Order, options: dict[str, Any] | None = None, *, source: str = "wix-a",
            cust_ref: str | None = None) -> DeliveryRequest:
    return DeliveryRequest(order=order, cust_ref=cust_ref or f"W{order.cust_po_no}", cust_po_no=order.cust_po_no,
                           options=HoldedRouteOptions.model_validate(options or {}), source_connection=source)


async def deliver(conn: HoldedConnector, req: DeliveryRequest, attempts: int = 8) -> str:
    """What the engine does: create; after a transient failure, look up before creating again."""
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            if attempt:
                found = await conn.find_order(req)
                if found:
                    return found
            return await conn.create_order(req, f"idem-{req.cust_ref}")
        except TransientError as exc:
            last = exc
    raise AssertionError(f"not delivered after {attempts} attempts: {last}")
