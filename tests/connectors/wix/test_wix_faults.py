"""Injected faults, the rate limit and 429 handling, over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from wix_support import PRODUCTS, WixAdmin, connector, run

from orderbridge.connectors.base import DownloadedOrder, StoredOrder, Window
from orderbridge.connectors.errors import RateLimited, TransientError
from orderbridge.connectors.http import LocalBudget, RateSpec
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix.connector import WixConnector, WixCredentials
from orderbridge.connectors.wix.sandbox import create_app
from orderbridge.domain.models import Shipment


def _download(url: str, site: dict[str, Any], **kw: Any) -> list[Any]:
    async def go(c: WixConnector) -> list[Any]:
        return [i async for i in c.download(Window(since=None, until=datetime.now(UTC)))]
    return list(run(connector(url, site, **kw), go))


@pytest.fixture
def seeded(fresh_url: str) -> tuple[WixAdmin, dict[str, Any]]:
    admin = WixAdmin(fresh_url)
    site = admin.site()
    admin.post(f"/sites/{site['siteId']}/orders/generate", {"count": 120})
    return admin, site


@pytest.mark.parametrize("kind", ["500", "502", "503", "429", "reset"])
def test_transient_answers_are_retried(fresh_url: str, seeded: Any, kind: str) -> None:
    admin, site = seeded
    admin.faults(next=[{"kind": kind, "count": 1}], match="orders/search")
    assert len(_download(fresh_url, site)) == 120
    faulted = [c for c in admin.calls("/ecom/v1/orders/search") if c["fault"] == kind]
    assert len(faulted) == 1


def test_timeouts(fresh_url: str, seeded: Any) -> None:
    admin, site = seeded
    admin.faults(next=[{"kind": "timeout", "count": 1}], hang_seconds=1.0, match="orders/search")
    assert len(_download(fresh_url, site, timeout=0.3)) == 120  # a search is a read: retried at once

    oid = admin.order(site)["id"]
    admin.faults(next=[{"kind": "timeout", "count": 1}], hang_seconds=1.0, match="create-fulfillment")
    shipment = Shipment(external_id="S1", order_ref="R", carrier="ups", tracking_numbers=["T1"],
                        lines=[{"sku": "MUG-1", "quantity": 1}])

    async def go(c: WixConnector) -> Any:
        item = await c.fetch_order(oid)
        assert isinstance(item, DownloadedOrder) and item.order is not None
        stored = StoredOrder(1, oid, item.order.cust_po_no, "R", item.order, item.raw)
        with pytest.raises(TransientError):  # a write is not repeated in the call: the engine decides
            await c.upload_shipments(stored, [shipment])
        assert await c.is_confirmed(stored, [shipment]) is False  # it hung before being processed
        return await c.upload_shipments(stored, [shipment])
    assert run(connector(fresh_url, site, timeout=0.3), go).note.startswith("1 Wix fulfillment")


def test_malformed_answer_is_transient(fresh_url: str, seeded: Any) -> None:
    admin, site = seeded
    oid = admin.order(site)["id"]
    admin.faults(next=[{"kind": "malformed", "count": 1}], match=oid)

    async def go(c: WixConnector) -> Any:
        with pytest.raises(TransientError, match="unreadable"):
            await c.fetch_order(oid)
        return await c.fetch_order(oid)
    assert isinstance(run(connector(fresh_url, site), go), DownloadedOrder)


def test_latency_and_random_rates(fresh_url: str, seeded: Any) -> None:
    admin, site = seeded
    admin.faults(latency_ms=20, rates={"503": 0.2}, match="orders/search")
    started = time.monotonic()
    assert len(_download(fresh_url, site)) == 120
    assert time.monotonic() - started >= 0.04


def test_persistent_429_raises_rate_limited(fresh_url: str, seeded: Any) -> None:
    admin, site = seeded
    admin.faults(next=[{"kind": "429", "count": 10}])
    with pytest.raises(RateLimited):
        _download(fresh_url, site)
    admin.faults(next=[{"kind": "429", "count": 1}])
    r = httpx.post(fresh_url + "/ecom/v1/orders/search", json={},
                   headers={"Authorization": site["apiKey"], "wix-site-id": site["siteId"]})
    assert r.status_code == 429  # in Wix's error format
    assert r.json()["details"]["applicationError"]["code"] == "TOO_MANY_REQUESTS"


def test_rate_spec_is_the_documented_limit(fresh_url: str) -> None:
    creds = WixCredentials(api_key="k", site_id="s")
    assert WixConnector.rate_spec(creds) == RateSpec(calls=200, period=60.0)
    assert WixAdmin(fresh_url).get("/rate_limit") == {"enabled": True, "calls": 200, "period": 60.0}
    other = WixCredentials(api_key="k", site_id="t")
    assert WixConnector.account_key(creds, "u") != WixConnector.account_key(other, "u")  # a budget per site


class Scaled:
    """The real budget with time compressed, so a minute's limit is exercised in a second."""

    def __init__(self, factor: float) -> None:
        self.inner, self.factor = LocalBudget(), factor

    async def acquire(self, key: str, spec: RateSpec) -> None:
        await self.inner.acquire(key, spec.scaled(self.factor))


def test_budget_keeps_under_the_limit(fresh_url: str) -> None:
    admin = WixAdmin(fresh_url)
    site = admin.site()
    oid = admin.order(site)["id"]
    admin.post("/rate_limit", {"enabled": True, "calls": 200, "period": 1.0})  # 200/min, 60 times faster

    async def go(c: WixConnector) -> None:
        for _ in range(260):
            assert await c.fetch_order(oid) is not None
    run(connector(fresh_url, site, budget=Scaled(60.0)), go)
    statuses = [c["status"] for c in admin.calls(f"/ecom/v1/orders/{oid}")]
    assert len(statuses) == 260 and 429 not in statuses


def test_429_with_retry_after_is_waited_out() -> None:
    options = {"rate_limit": {"calls": 5, "period": 1.0}, "retry_after": True, "demo_site": False}
    with ServedApp(create_app(options)) as served:
        admin = WixAdmin(served.url)
        site = admin.site(products=PRODUCTS)
        oid = admin.order(site)["id"]

        async def go(c: WixConnector) -> int:
            return sum([await c.fetch_order(oid) is not None for _ in range(8)])
        assert run(connector(served.url, site), go) == 8  # no client-side budget: the server says wait
        statuses = [c["status"] for c in admin.calls(f"/ecom/v1/orders/{oid}")]
        assert statuses.count(429) >= 1 and statuses.count(200) == 8
