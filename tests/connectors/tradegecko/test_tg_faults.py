"""Faults and rate limits: whatever the wire does, an order is created exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tg_support import TG, delivery

from orderbridge.connectors.base import Window
from orderbridge.connectors.errors import RateLimited, TransientError
from orderbridge.connectors.http import LocalBudget, RateSpec
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.connector import TradeGeckoConnector
from orderbridge.connectors.tradegecko.sandbox import create_app

FAULT_KINDS = ["500", "502", "503", "429", "timeout", "timeout_after", "malformed", "reset"]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_one_fault_on_create_still_makes_one_order(stocked: TG, kind: str) -> None:
    ref = f"FAULT-{kind}"
    stocked.faults(next=[{"kind": kind, "count": 1}], match="/orders", hang_seconds=1.0)
    oid = stocked.run(lambda c: c.create_order(delivery(ref), f"key-{ref}"), timeout=0.5)
    assert stocked.counts()["by_reference_number"] == {ref: 1}
    assert str(stocked.orders(ref)[0]["id"]) == oid
    faulted = [c for c in stocked.calls() if c["fault"] == kind and c["path"] == "/orders"]
    assert faulted, f"the {kind} fault was injected"


@pytest.mark.parametrize("kind", ["timeout_after", "malformed", "503"])
def test_persistent_faults_resolve_by_lookup(stocked: TG, kind: str) -> None:
    """More failures than in-call retries: the engine retries later and looks the order up first."""
    ref = f"LOOK-{kind}"
    stocked.faults(next=[{"kind": kind, "count": 3}], match="/orders", hang_seconds=1.0)
    with pytest.raises(TransientError):
        stocked.run(lambda c: c.create_order(delivery(ref), f"key-{ref}"), timeout=0.5)

    async def engine_retry(c: TradeGeckoConnector) -> str:
        found = await c.find_order(delivery(ref))
        return found or await c.create_order(delivery(ref), f"key-{ref}")

    oid = stocked.run(engine_retry)
    expected = 0 if kind == "503" else 1  # a 503 answers before anything is done
    assert stocked.counts()["by_reference_number"].get(ref, 0) == 1
    assert str(stocked.orders(ref)[0]["id"]) == oid
    assert sum(1 for c in stocked.calls() if c["path"] == "/orders" and c["fault"] == kind) >= expected


def test_faults_on_reads_are_retried(stocked: TG) -> None:
    stocked.run(lambda c: c.create_order(delivery("READ"), "key-READ"))
    stocked.ship("READ", [{"tracking_number": "T-READ"}])
    stocked.faults(rates={"500": 0.3, "malformed": 0.2, "reset": 0.1}, hang_seconds=1.0)

    async def read(c: TradeGeckoConnector) -> tuple[int, int]:
        for _ in range(5):
            try:
                shipments = [s async for s in c.shipments(Window(None, datetime.now(UTC) + timedelta(seconds=5)))]
                levels = await c.stock_levels()
                return len(shipments), len(levels)
            except TransientError:
                continue
        raise AssertionError("never got through")

    assert stocked.run(read, timeout=0.5) == (1, 2)


# ------------------------------------------------------------------------------ rate limits


class RecordingBudget(LocalBudget):
    """The real in-process budget, noting which account keys and limits it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: Counter[tuple[str, RateSpec]] = Counter()

    async def acquire(self, key: str, spec: RateSpec) -> None:
        self.asked[(key, spec)] += 1
        await super().acquire(key, spec)


@pytest.fixture
def limited() -> Iterator[TG]:
    with ServedApp(create_app({"rate_calls": 20, "rate_period": 2, "demo_account": False})) as served:
        acct = TG(served.url)
        acct.variants({"sku": "SKU-1", "stock": {str(acct.location): 1000}},
                      {"sku": "SKU-2", "stock": {str(acct.location): 1000}})
        yield acct


def test_burst_through_the_budget_stays_under_the_limit(limited: TG) -> None:
    budget = RecordingBudget()
    scaled = RateSpec(20, 2.0)  # the documented 300 per 300 s, scaled down like the sandbox's window

    async def burst(c: TradeGeckoConnector) -> list[str]:
        ids = await asyncio.gather(*(c.create_order(delivery(f"B{i}", email=f"b{i}@example.com"), f"k-B{i}")
                                     for i in range(14)))
        await c.stock_levels()
        return list(ids)

    ids = limited.run(burst, budget=budget, rate=scaled, settings={"variant_cache_seconds": 0})
    assert len(set(ids)) == 14 and limited.counts()["total"] == 14
    [(key, spec)] = budget.asked
    assert key.startswith("tradegecko:") and spec == scaled
    calls = [c for c in limited.calls() if not c["path"].startswith("/__sandbox__")]
    assert len(calls) >= 40  # enough to cross several windows
    assert [c for c in calls if c["status"] == 429] == []
    per_window = Counter(int(c["at"] // 2) for c in calls)
    assert max(per_window.values()) <= 20


def test_429s_are_waited_out_when_the_budget_is_too_generous(limited: TG) -> None:
    async def burst(c: TradeGeckoConnector) -> list[str | None]:
        return list(await asyncio.gather(*(c.find_order(delivery(f"N{i}")) for i in range(45))))

    assert limited.run(burst) == [None] * 45
    statuses = Counter(c["status"] for c in limited.calls() if c["path"] == "/orders")
    assert statuses[429] > 0 and statuses[200] == 45


def test_429_without_a_known_reset_is_reported_for_later() -> None:
    period = 3600
    with ServedApp(create_app({"rate_calls": 1, "rate_period": period, "demo_account": False})) as served:
        acct = TG(served.url)
        if period - time.time() % period < 20:  # too close to the window's end: the client would wait it out
            time.sleep(period - time.time() % period + 0.1)

        async def twice(c: TradeGeckoConnector) -> None:
            await c.find_order(delivery("X"))
            await c.find_order(delivery("Y"))

        with pytest.raises(RateLimited) as err:
            acct.run(twice)
        assert err.value.retry_after is not None and 15 < err.value.retry_after <= period
