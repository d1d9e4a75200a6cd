"""Helpers for the TradeGecko connector tests: a sandbox account with its clients, and orders to send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from orderbridge.connectors.base import DeliveryRequest
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.registry import build_connector
from orderbridge.connectors.tradegecko.connector import TradeGeckoConnector
from orderbridge.domain.models import Address, Order, OrderLine, Totals

T = TypeVar("T")


class NoBudget:
    """Tests run far faster than the API's 1 call/s; the rate tests use a real budget."""

    async def acquire(self, key: str, spec: RateSpec) -> None:
        return None


class TG:
    """One sandbox account, its API client and admin client, and connectors bound to it."""

    def __init__(self, url: str, spec: dict[str, Any] | None = None) -> None:
        self.url = url
        self.admin = httpx.Client(base_url=url + "/__sandbox__", timeout=10)
        created = self.post("/accounts", spec or {"name": "Test store"})
        self.created = created
        self.aid = created["account"]["id"]
        self.token = created["privileged_token"]
        self.location = created["account"]["primary_location_id"]
        self.api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def post(self, path: str, body: Any) -> Any:
        r = self.admin.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        r = self.admin.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    # -------------------------------------------------------------- admin shortcuts
    def variants(self, *items: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.post(f"/accounts/{self.aid}/variants", list(items)))

    def locations(self, *labels: str) -> list[int]:
        return [row["id"] for row in self.post(f"/accounts/{self.aid}/locations", [{"label": x} for x in labels])]

    def settings(self, **values: Any) -> None:
        self.post(f"/accounts/{self.aid}/settings", values)

    def orders(self, ref: str | None = None) -> list[dict[str, Any]]:
        return list(self.get(f"/accounts/{self.aid}/orders", **({"reference_number": ref} if ref else {})))

    def counts(self) -> dict[str, Any]:
        return dict(self.get(f"/accounts/{self.aid}/orders/counts"))

    def stock(self, sku: str) -> dict[int, dict[str, str]]:
        return {row["location_id"]: row for row in self.get(f"/accounts/{self.aid}/stock", sku=sku)}

    def ship(self, ref: str, packages: list[dict[str, Any]], finalize: bool = True) -> dict[str, Any]:
        return dict(self.post(f"/accounts/{self.aid}/ship",
                              {"reference_number": ref, "packages": packages, "finalize": finalize}))

    def faults(self, **plan: Any) -> None:
        self.post("/faults", plan)

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.get("/calls", since=since))

    def mark(self) -> int:
        """The sequence number of the last call so far (for ``calls(since=...)``)."""
        return max((c["seq"] for c in self.calls()), default=0)

    # ------------------------------------------------------------------ connectors
    def connector(
        self, settings: dict[str, Any] | None = None, credentials: dict[str, Any] | None = None,
        type_name: str = "tradegecko", timeout: float = 5.0, budget: Any = None, rate: RateSpec | None = None,
    ) -> TradeGeckoConnector:
        conn = build_connector(
            type_name, name="tg-test", settings=settings or {},
            credentials=credentials or {"access_token": self.token}, base_url=self.url, test_mode=True,
            budget=budget or NoBudget(), timeout=timeout, rate=rate,
        )
        assert isinstance(conn, TradeGeckoConnector)
        return conn

    def run(self, fn: Callable[[TradeGeckoConnector], Awaitable[T]], **kw: Any) -> T:
        """Run ``fn(connector)`` in a fresh event loop, with a connector made for it."""

        async def main() -> T:
            conn = self.connector(**kw)
            try:
                return await fn(conn)
            finally:
                await conn.aclose()

        return asyncio.run(main())


def delivery(
    ref: str = "R1",
    lines: list[tuple[str, int]] | None = None,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    street: str = "1 Main St",
    bill_to: Address | None = None,
    **order_extra: Any,
) -> DeliveryRequest:
    order = Order(
        external_id=ref, cust_po_no=f"HOUZZ-{ref}-0001", order_date=datetime(2026, 3, 4, 23, 30, tzinfo=UTC),
        ship_to=Address(name=name, address1=street, city="Springfield", state="IL", zip="62701", country="US",
                        email=email, phone="555-0100"),
        bill_to=bill_to or Address(),
        lines=[OrderLine(sku=s, quantity=q, unit_price=Decimal("10.50")) for s, q in (lines or [("SKU-1", 2)])],
        totals=Totals(shipping=Decimal("5"), currency="USD"), **order_extra,
    )
    return DeliveryRequest(order=order, cust_ref=ref, cust_po_no=order.cust_po_no, carrier="UPS", service="Ground",
                           source_connection="houzz")
