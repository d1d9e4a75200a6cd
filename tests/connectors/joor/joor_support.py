"""Helpers for the JOOR tests: an admin client for the sandbox and connectors built against it."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.sandbox_fixtures import SandboxAdmin

from orderbridge.connectors.base import Window
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.joor.connector import JoorConnector
from orderbridge.connectors.registry import build_connector

_ids = itertools.count(1)
FAST = RateSpec(calls=1000, period=1.0)


class Admin(SandboxAdmin):

    def account(self, **spec: Any) -> dict[str, Any]:
        n = next(_ids)
        body = {"id": f"brand{n}", "token": f"joor-token-{n:04d}", "warehouses": ["MAIN", "WEST"], **spec}
        return dict(self._ok(self.http.post("/accounts", json=body)))

    def orders(self, acct: str, *specs: dict[str, Any]) -> list[str]:
        made = self._ok(self.http.post(f"/accounts/{acct}/orders", json=list(specs) or [{}]))
        return [str(o["order_id"]) for o in made]

    def generate(self, acct: str, count: int, **spec: Any) -> list[str]:
        made = self._ok(self.http.post(f"/accounts/{acct}/orders/generate", json={"count": count, **spec}))
        return [str(i) for i in made["order_ids"]]

    def states(self, acct: str, export_state: str | None = None) -> dict[str, dict[str, Any]]:
        params = {"export_state": export_state} if export_state else {}
        return {str(o["order_id"]): o for o in self._ok(self.http.get(f"/accounts/{acct}/orders", params=params))}

    def order(self, acct: str, oid: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/accounts/{acct}/orders/{oid}")))

    def set_status(self, acct: str, oid: str, status: str) -> None:
        self._ok(self.http.post(f"/accounts/{acct}/orders/{oid}/status", json={"status": status}))

    def catalog(self, acct: str) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get(f"/accounts/{acct}/catalog")))

    def inventory(self, acct: str) -> dict[str, dict[str, Any]]:
        return {p["upc"]: p for p in self._ok(self.http.get(f"/accounts/{acct}/inventory"))}

    def faults(self, **plan: Any) -> None:
        self._ok(self.http.post("/faults", json=plan))

    def clear_faults(self) -> None:
        self._ok(self.http.delete("/faults"))

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get("/calls", params={"since": since})))

    def last_seq(self) -> int:
        calls = self.calls()
        return int(calls[-1]["seq"]) if calls else 0


@contextlib.asynccontextmanager
async def opened(url: str, token: str, settings: dict[str, Any] | None = None, *, test_mode: bool = True,
                 base_url: str | None = None, http_timeout: float = 5.0) -> AsyncIterator[JoorConnector]:
    conn = build_connector("joor", name="joor-test", settings={"warehouse_code": "MAIN", **(settings or {})},
                           credentials={"api_token": token}, base_url=url if base_url is None else base_url,
                           test_mode=test_mode, rate=FAST, timeout=http_timeout)
    assert isinstance(conn, JoorConnector)
    try:
        yield conn
    finally:
        await conn.aclose()



def window(minutes: float = 60) -> Window:
    now = datetime.now(UTC) + timedelta(seconds=1)
    return Window(since=now - timedelta(minutes=minutes), until=now)
