"""The bench plays the warehouse: every order that reaches TradeGecko is packed and shipped there.

It works through the TradeGecko sandbox's admin routes (``/__sandbox__/accounts/{id}/ship``), as a
warehouse user would in TradeGecko: one package per order, carrier and tracking number set.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.world import World


@dataclass
class Warehouse:
    world: World
    concurrency: int = 8
    every: float = 0.5
    shipped: set[int] = field(default_factory=set)
    refused: int = 0

    async def ship_pending(self, http: httpx.AsyncClient) -> int:
        base = f"{self.world.tradegecko.url}/__sandbox__/accounts/{self.world.tg_account}"
        r = await http.get(f"{base}/orders", params={"status": "active"}, timeout=300)
        r.raise_for_status()
        todo = [o for o in r.json() if int(o["id"]) not in self.shipped]
        gate = asyncio.Semaphore(self.concurrency)

        async def ship(order: dict[str, Any]) -> None:
            ref = str(order.get("reference_number") or order["id"])
            lines = [{"sku": self.world.sku_of_variant[int(ln["variant_id"])], "quantity": ln["quantity"]}
                     for ln in order.get("order_line_items", []) if ln.get("variant_id") is not None
                     and int(ln["variant_id"]) in self.world.sku_of_variant]
            package = {"lines": lines, "tracking_company": "UPS",
                       "tracking_number": f"1Z{zlib.crc32(ref.encode()):010d}"}
            async with gate:
                resp = await http.post(f"{base}/ship", json={"order_id": order["id"], "packages": [package]},
                                       timeout=60)
            if resp.status_code < 300:
                self.shipped.add(int(order["id"]))
            else:
                self.refused += 1

        await asyncio.gather(*(ship(o) for o in todo))
        return len(todo)

    async def run(self) -> None:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    found = await self.ship_pending(http)
                except httpx.HTTPError:
                    found = 0
                if not found:
                    await asyncio.sleep(self.every)
