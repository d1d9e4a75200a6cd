"""Rate limits and injected faults: calls succeed after retries, or fail with a clean TransientError."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from houzz_support import Admin, now, opened
from tests.support.sandbox_fixtures import collect

from orderbridge.connectors.base import DownloadedOrder, StoredOrder, Window
from orderbridge.connectors.errors import RateLimited, TransientError
from orderbridge.connectors.houzz.connector import HouzzSellerConnector
from orderbridge.connectors.houzz.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.domain.models import Shipment

SCALE = 100.0  # the sandbox's 60 calls / 60 s and the connector's budget, both 100x faster


def test_budget_stays_under_the_sandbox_default() -> None:
    spec = HouzzSellerConnector.rate_spec(None)
    assert spec.calls / spec.period < 60 / 60  # "a bit under" the sandbox's documented default
    with ServedApp(create_app({"accounts": []})) as s:
        assert Admin(s.url).http.get("/rate_limit").json() == {"enabled": True, "calls": 60, "period": 60.0}


def test_a_burst_through_the_connector_never_hits_the_limit() -> None:
    opts = {"accounts": [], "rate_limit": {"calls": 60, "period": 60 / SCALE}}
    with ServedApp(create_app(opts)) as s:
        admin = Admin(s.url)
        acc = admin.account()

        async def go() -> float:
            async with opened(s.url, acc, factor=SCALE) as c:
                started = time.perf_counter()
                await asyncio.gather(*(c.client.read("getOrders", {"Status": "New"}) for _ in range(150)))
                return time.perf_counter() - started

        elapsed = asyncio.run(go())
        calls = admin.calls()
        assert len(calls) == 150 and {c["status"] for c in calls} == {200}
        assert elapsed > 150 / (60 / (60 / SCALE)) * 0.9  # it was throttled, not lucky


def test_an_injected_429_burst_is_waited_out(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])
    before = admin.last_seq()
    admin.faults(next=[{"kind": "429", "count": 1}])

    async def go() -> list[object]:
        async with opened(url, acc) as c:
            return await collect(c.download(Window(since=now() - timedelta(hours=1), until=now())))

    items = asyncio.run(go())
    assert [i.external_id for i in items] == [oid]
    statuses = [c["status"] for c in admin.calls(before)]
    assert statuses[:2] == [429, 200] and statuses.count(429) == 1


def test_a_long_429_burst_surfaces_as_rate_limited(url: str, admin: Admin) -> None:
    acc = admin.account()
    admin.faults(next=[{"kind": "429", "count": 3}])

    async def go() -> None:
        async with opened(url, acc) as c:
            with pytest.raises(RateLimited) as info:
                await c.fetch_order("0000-0000-0000-0001")
            assert info.value.retry_after is not None

    asyncio.run(go())


@pytest.mark.parametrize("kind", ["500", "502", "503", "timeout", "timeout_after", "reset", "malformed"])
def test_a_read_fault_is_retried(url: str, admin: Admin, kind: str) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    admin.faults(next=[{"kind": kind, "count": 1}], hang_seconds=1.0)

    async def go() -> object:
        async with opened(url, acc, http_timeout=0.4) as c:
            return await c.fetch_order(oid)

    item = asyncio.run(go())
    assert isinstance(item, DownloadedOrder) and item.order is not None


@pytest.mark.parametrize("kind", ["503", "timeout", "reset", "malformed"])
def test_a_persistent_read_fault_is_a_clean_transient_error(url: str, admin: Admin, kind: str) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    admin.faults(next=[{"kind": kind, "count": 10}], hang_seconds=1.0)

    async def go() -> None:
        async with opened(url, acc, http_timeout=0.3) as c:
            with pytest.raises(TransientError):
                await c.fetch_order(oid)

    asyncio.run(go())


def test_a_lost_ship_answer_is_resolved_by_is_confirmed(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    shipment = [Shipment(external_id="S1", order_ref="R1", carrier="UPS", tracking_numbers=["1Z1"])]

    async def go() -> bool | None:
        async with opened(url, acc, http_timeout=0.4) as c:
            item = await c.fetch_order(oid)
            assert isinstance(item, DownloadedOrder) and item.order
            order = StoredOrder(1, oid, oid, "R1", item.order, item.raw)
            admin.faults(next=[{"kind": "timeout_after", "count": 1}], hang_seconds=1.0, match="updateOrder")
            with pytest.raises(TransientError):
                await c.upload_shipments(order, shipment)
            admin.clear_faults()
            return await c.is_confirmed(order, shipment)

    assert asyncio.run(go()) is True
    assert len(admin.actions(acc["acct"], "Ship")) == 1
