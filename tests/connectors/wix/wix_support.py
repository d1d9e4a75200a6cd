"""Wix test helpers: an admin client of the sandbox, connector factories, a webhook receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.registry import build_connector
from orderbridge.connectors.wix.connector import WixConnector

FAST_HOOKS = {"webhook_retry_delays": [0.05, 0.1, 0.2], "webhook_timeout": 2.0, "demo_site": False}
PRODUCTS = [
    {"name": "Mug", "sku": "MUG-1", "price": "12.00", "quantity": 50},
    {"name": "T-shirt", "variants": [
        {"sku": "TEE-M", "choices": {"Size": "M"}, "quantity": 20},
        {"sku": "TEE-L", "choices": {"Size": "L"}, "quantity": 10},
    ]},
]


class NoBudget:
    """The call budget is tested on its own; elsewhere tests run at full speed."""

    async def acquire(self, key: str, spec: RateSpec) -> None:
        return None


class WixAdmin:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/__sandbox__", timeout=10)

    def _ok(self, r: httpx.Response) -> Any:
        assert r.status_code < 300, r.text
        return r.json()

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self._ok(self.http.post(path, json=body if body is not None else {}, params=params))

    def get(self, path: str, **params: Any) -> Any:
        return self._ok(self.http.get(path, params=params))

    def site(self, products: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
        site = self.post("/sites", {"siteId": str(uuid.uuid4()), **spec})
        if products is None:
            products = PRODUCTS
        if products:
            self.post(f"/sites/{site['siteId']}/products", {"products": products})
        return dict(site)

    def order(self, site: dict[str, Any], events: bool = True, **spec: Any) -> dict[str, Any]:
        spec.setdefault("lines", [{"sku": "MUG-1", "quantity": 2, "price": "12.00", "taxRate": "0.21"}])
        return dict(self.post(f"/sites/{site['siteId']}/orders", spec, events=int(events))["order"])

    def act(self, site: dict[str, Any], oid: str, action: str, **body: Any) -> dict[str, Any]:
        return dict(self.post(f"/sites/{site['siteId']}/orders/{oid}/{action}", body)["order"])

    def patch_order(self, site: dict[str, Any], oid: str, **fields: Any) -> dict[str, Any]:
        r = self.http.patch(f"/sites/{site['siteId']}/orders/{oid}", json=fields)
        return dict(self._ok(r)["order"])

    def fulfillments(self, site: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return dict(self.get(f"/sites/{site['siteId']}/fulfillments"))

    def inventory(self, site: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {i["sku"]: i for i in self.get(f"/sites/{site['siteId']}/inventory")}

    def deliveries(self, site: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.get(f"/sites/{site['siteId']}/webhooks")["deliveries"])

    def faults(self, **plan: Any) -> None:
        self.post("/faults", plan)

    def clear_faults(self) -> None:
        self.http.delete("/faults")

    def calls(self, path: str = "") -> list[dict[str, Any]]:
        return [c for c in self.get("/calls") if path in c["path"]]


def creds(site: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"api_key": site["apiKey"], "site_id": site["siteId"], **extra}


def connector(url: str, site: dict[str, Any], settings: dict[str, Any] | None = None, *,
              budget: Any = None, timeout: float = 5.0, **cred_extra: Any) -> WixConnector:
    c = build_connector("wix", name="wix-test", settings=settings or {}, credentials=creds(site, **cred_extra),
                        base_url=url, test_mode=True, budget=budget or NoBudget(), timeout=timeout)
    assert isinstance(c, WixConnector)
    return c


def run(c: WixConnector, fn: Callable[[WixConnector], Awaitable[Any]]) -> Any:
    """Drive one connector in one event loop (its HTTP pool belongs to that loop), then close it."""
    async def main() -> Any:
        try:
            return await fn(c)
        finally:
            await c.aclose()
    return asyncio.run(main())



class Receiver:
    """A webhook endpoint: keeps every body; answers 500 to the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self.seen = 0

        async def hook(request: Request) -> Response:
            self.seen += 1
            if self.seen <= self.fail_first:
                return PlainTextResponse("busy", status_code=500)
            self.bodies.append(await request.body())
            self.headers.append(dict(request.headers))
            return PlainTextResponse("ok")

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
