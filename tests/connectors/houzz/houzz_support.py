"""Helpers for the Houzz tests: an admin client for the sandbox and connectors built against it."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from tests.support.sandbox_fixtures import SandboxAdmin

from orderbridge.connectors.base import SourceConnector
from orderbridge.connectors.http import LocalBudget, RateSpec
from orderbridge.connectors.registry import build_connector

_ids = itertools.count(1)


class ScaledBudget:
    """The connector's own budget with time compressed by ``factor`` (tests cannot wait minutes)."""

    def __init__(self, factor: float) -> None:
        self.inner = LocalBudget()
        self.factor = factor

    async def acquire(self, key: str, spec: RateSpec) -> None:
        await self.inner.acquire(key, spec.scaled(self.factor))


class Admin(SandboxAdmin):

    def account(self, program: str = "seller", **spec: Any) -> dict[str, str]:
        n = next(_ids)
        body = {"id": f"acct{n}", "app_name": f"app-{n}", "user_name": f"user-{n}",
                "token": f"dG9rZW4tMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw{n:06d}=", "program": program, **spec}
        self._ok(self.http.post("/accounts", json=body))
        return {"acct": body["id"], "app_id": body["app_name"], "username": body["user_name"], "token": body["token"]}

    def listings(self, acct: str, *skus: str, quantity: int = 5) -> None:
        self._ok(self.http.post(f"/accounts/{acct}/listings", json=[{"SKU": s, "Quantity": quantity} for s in skus]))

    def order(self, acct: str, **fields: Any) -> str:
        return str(self._ok(self.http.post(f"/accounts/{acct}/orders", json=order_body(**fields)))[0]["OrderId"])

    def raw_order(self, acct: str, body: dict[str, Any]) -> str:
        return str(self._ok(self.http.post(f"/accounts/{acct}/orders", json=body))[0]["OrderId"])

    def bulk(self, acct: str, count: int, **spec: Any) -> list[str]:
        created = self._ok(self.http.post(f"/accounts/{acct}/orders/bulk", json={"count": count, **spec}))
        return list(created["order_ids"])

    def state(self, acct: str, oid: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/accounts/{acct}/orders/{oid}")))

    def status(self, acct: str, oid: str) -> str:
        return str(self.state(acct, oid)["status"])

    def set_status(self, acct: str, oid: str, status: str) -> None:
        self._ok(self.http.post(f"/accounts/{acct}/orders/{oid}/status", json={"status": status}))

    def actions(self, acct: str, action: str | None = None) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get(f"/accounts/{acct}/actions", params={"action": action} if action else {})))

    def cancel(self, acct: str, oid: str, **body: Any) -> httpx.Response:
        return self.http.post(f"/accounts/{acct}/orders/{oid}/cancel", json=body)

    def fail_charge(self, acct: str, oid: str, reason: str, count: int = 1) -> None:
        self._ok(self.http.post(f"/accounts/{acct}/orders/{oid}/fail_next_charge",
                                json={"reason": reason, "count": count}))

    def listing(self, acct: str, sku: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/accounts/{acct}/listings/{sku}")))

    def faults(self, **plan: Any) -> None:
        self._ok(self.http.post("/faults", json=plan))

    def clear_faults(self) -> None:
        self._ok(self.http.delete("/faults"))

    def rate_limit(self, **cfg: Any) -> None:
        self._ok(self.http.post("/rate_limit", json=cfg))

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get("/calls", params={"since": since})))

    def last_seq(self) -> int:
        calls = self.calls()
        return int(calls[-1]["seq"]) if calls else 0

    def clock(self, advance_seconds: float) -> None:
        self._ok(self.http.post("/clock", json={"advance_seconds": advance_seconds}))


def order_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerName": "Jane Q Doe",
        "Address": {"Address": "1 Main St", "Address1": "Apt 2", "City": "Springfield", "State": "Illinois",
                    "Zip": "62701", "Country": "", "Phone": "555-0100"},
        "OrderItems": [{"Type": "Product", "SKU": "SOFA-1", "ProductId": "500001", "Title": "Sofa",
                        "Quantity": "2", "Price": "100.00", "Shipping": "5.00", "Tax": "8.00"}],
    }
    body.update(fields)
    return body


def creds_of(account: dict[str, str]) -> dict[str, str]:
    return {k: account[k] for k in ("app_id", "username", "token")}


@contextlib.asynccontextmanager
async def opened(url: str, account: dict[str, str], settings: dict[str, Any] | None = None, *,
                 kind: str = "houzz_seller", http_timeout: float = 5.0, factor: float = 200.0
                 ) -> AsyncIterator[Any]:
    conn = build_connector(kind, name="houzz-test", settings=settings or {}, credentials=creds_of(account),
                           base_url=url, test_mode=True, budget=ScaledBudget(factor), timeout=http_timeout)
    assert isinstance(conn, SourceConnector)
    try:
        yield conn
    finally:
        await conn.aclose()



def now() -> datetime:
    return datetime.now(UTC)
