"""Inventory pushed from a backend's stock snapshot while deliveries go on: Houzz listings fed from a
QuickBooks Commerce (TradeGecko) account, both sandboxes over real HTTP. TradeGecko commits an
order's stock when the order is created, so between two stock reads the snapshot does not show the
orders delivered since."""

from __future__ import annotations

import asyncio
from typing import Any

from orderbridge.demo.sandboxes import SandboxProcess
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.engine.hub import ConnectionRow
from orderbridge.engine.jobs import run_job
from tests.engine.houzz_tg_support import ACCT, houzz_to_tg, order

OPEN = {"calls": 1000, "period": 1}


def test_an_order_delivered_since_the_stock_read_never_raises_a_listing(
        make_hub: Any, sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    houzz, tg = sandboxes
    with houzz.admin() as h, tg.admin() as g:
        h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
        h.post(f"/accounts/{ACCT}/listings", json=[{"SKU": "A-1"}]).raise_for_status()
        made = g.post("/accounts", json={"name": "Shop", "oauth": {"expires_in": 3600}}).json()
        g.post(f"/accounts/{made['account']['id']}/variants",
               json=[{"sku": "A-1", "name": "A", "stock": {"Main Warehouse": 10}}]).raise_for_status()
        order(h, [("A-1", 4)])
    hub = make_hub(houzz_to_tg(houzz.url, tg.url, made["oauth"], concurrency=2, houzz_rate=OPEN, tg_rate=OPEN))

    def listed() -> int:
        with houzz.admin() as h:
            return int(h.get(f"/accounts/{ACCT}/listings/A-1").json()["Quantity"])

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
