"""Inventory pushed from a backend's stock snapshot while deliveries go on: Houzz listings fed from a
QuickBooks Commerce (TradeGecko) account, both sandboxes over real HTTP. TradeGecko commits an
order's stock when the order is created, so between two stock reads the snapshot does not show the
orders delivered since."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from orderbridge.demo.sandboxes import SandboxProcess
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.domain.models import utcnow
from orderbridge.engine import inventory
from orderbridge.engine.context import read_cursor
from orderbridge.engine.hub import ConnectionRow
from orderbridge.engine.jobs import run_job
from orderbridge.ledger import schema as t
from tests.engine.houzz_tg_support import ACCT, houzz_to_tg, order

OPEN = {"calls": 1000, "period": 1}


def _ten_in_stock_four_ordered(houzz: SandboxProcess, tg: SandboxProcess) -> dict[str, Any]:
    """A Houzz listing of A-1, a TradeGecko variant A-1 with 10 in stock, an order of 4 at Houzz;
    returns TradeGecko's OAuth grant for the hub's configuration."""
    with houzz.admin() as h, tg.admin() as g:
        h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
        h.post(f"/accounts/{ACCT}/listings", json=[{"SKU": "A-1"}]).raise_for_status()
        made = g.post("/accounts", json={"name": "Shop", "oauth": {"expires_in": 3600}}).json()
        g.post(f"/accounts/{made['account']['id']}/variants",
               json=[{"sku": "A-1", "name": "A", "stock": {"Main Warehouse": 10}}]).raise_for_status()
        order(h, [("A-1", 4)])
    return dict(made["oauth"])


def _listed(houzz: SandboxProcess) -> int:
    with houzz.admin() as h:
        return int(h.get(f"/accounts/{ACCT}/listings/A-1").json()["Quantity"])


def test_an_order_delivered_since_the_stock_read_never_raises_a_listing(
        make_hub: Any, sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    houzz, tg = sandboxes
    hub = make_hub(houzz_to_tg(houzz.url, tg.url, _ten_in_stock_four_ordered(houzz, tg), concurrency=2,
                               houzz_rate=OPEN, tg_rate=OPEN))

    def listed() -> int:
        return _listed(houzz)

    async def run(row: ConnectionRow, *jobs: str) -> None:
        for job in jobs:
            result = await run_job(hub, row, job)
            assert result.status == "ok", (job, result)

    async def lifecycle() -> list[int]:
        seen = []
        try:
            with hub.db.connect() as conn:
                source, backend = hub.connection(conn, "houzz"), hub.connection(conn, "tg")
            await run(source, "download", "workflow")
            await run(backend, "stock")  # 10 available at TradeGecko
            await run(source, "inventory")
            seen.append(listed())  # 10 less the 4 in the order not yet delivered
            await run(backend, "deliver")  # TradeGecko commits the 4: 6 available there, not yet read
            await run(source, "inventory")
            seen.append(listed())
            await run(backend, "stock")  # now read
            await run(source, "inventory")
            seen.append(listed())
            return seen
        finally:
            await hub.aclose()

    assert asyncio.run(lifecycle()) == [6, 6, 6]


def test_a_read_a_delivery_straddled_is_settled_soon_after_the_deliveries_end(
        make_hub: Any, sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    houzz, tg = sandboxes
    hub = make_hub(houzz_to_tg(houzz.url, tg.url, _ten_in_stock_four_ordered(houzz, tg), concurrency=2,
                               houzz_rate=OPEN, tg_rate=OPEN))
    d, js = t.deliveries, t.job_state

    def listed() -> int:
        return _listed(houzz)

    def ledger(fn: Any) -> Any:
        with hub.db.begin() as conn:
            return fn(conn)

    def unsettled(conn: Any) -> Any:
        return read_cursor(conn, backend.id, inventory.UNSETTLED)

    def next_stock_read(conn: Any) -> Any:
        return conn.execute(sa.select(js.c.next_run_at).where(js.c.connection_id == backend.id,
                                                              js.c.job == "stock")).scalar_one()

    async def run(row: ConnectionRow, *jobs: str) -> None:
        for job in jobs:
            result = await run_job(hub, row, job)
            assert result.status == "ok", (job, result)

    with hub.db.connect() as conn:
        source, backend = hub.connection(conn, "houzz"), hub.connection(conn, "tg")

    async def lifecycle() -> None:
        try:
            await run(source, "download", "workflow")
            await run(backend, "stock")
            await run(backend, "deliver")  # the 4 committed at TradeGecko: 6 available there
            # Its result recorded a moment late, after the next read began: that read shows the 4
            # committed, and they still count as undelivered.
            late = utcnow() + timedelta(seconds=1.5)
            ledger(lambda conn: conn.execute(d.update().values(done_at=late)))
            await run(backend, "stock")
            assert ledger(unsettled) is not None
            await run(source, "inventory")
            assert listed() == 2  # 6 less the 4 counted twice: less than there is, never more
            period_end = ledger(next_stock_read)
            await asyncio.sleep(max(0.0, (late - utcnow()).total_seconds()) + 0.1)

            with houzz.admin() as h:
                order(h, [("A-1", 1)])
            await run(source, "download", "workflow")
            await run(backend, "deliver")  # delivers it and finds nothing more to deliver: settle
            soon = ledger(next_stock_read)
            assert soon < period_end
            assert soon <= ledger(unsettled) + timedelta(seconds=60 * inventory.SETTLE_SHARE)
            await run(backend, "stock")  # the settling read: no delivery around it
            assert ledger(unsettled) is None
            await run(source, "inventory")
            assert listed() == 5  # 10 less 4 less 1: TradeGecko's available stock

            # A settled read is left to its period by the next deliveries.
            period_end = ledger(next_stock_read)
            with houzz.admin() as h:
                order(h, [("A-1", 1)])
            await run(source, "download", "workflow")
            await run(backend, "deliver")
            assert ledger(next_stock_read) == period_end
        finally:
            await hub.aclose()

    asyncio.run(lifecycle())
