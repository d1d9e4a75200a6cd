"""Stock pushes to Wix Stores, on either catalog version.

Wix identifies stock by product and variant, not by SKU, so a SKU -> (product, variant) map of the
site is built from the catalog and kept for a while (re-read once when a pushed SKU is missing).
Catalog V1: one absolute PATCH per product carries all of its variants. Catalog V3: one PATCH per
inventory item (a variant at a location) with its current ``revision``; a stale revision is re-read
and tried once more.
"""

from __future__ import annotations

import time
from typing import Any

from orderbridge.connectors.base import InventoryUpdate
from orderbridge.connectors.errors import DataError, NotFound
from orderbridge.connectors.wix.client import WixClient

CACHE_SECONDS = 600.0
RELOAD_AFTER = 30.0  # a missing SKU re-reads the catalog at most this often
PROBE_ID = "00000000-0000-0000-0000-000000000000"
NOT_IN_CATALOG = "SKU not found in the Wix catalog: give the product or variant this SKU in Wix"


class InventoryPusher:
    def __init__(self, client: WixClient, catalog_setting: str, location_id: str = "") -> None:
        self.client = client
        self.version = {"v1": "V1_CATALOG", "v3": "V3_CATALOG"}.get(catalog_setting)
        self.location_id = location_id
        self.skus: dict[str, tuple[str, str]] = {}
        self.loaded_at = 0.0

    async def catalog(self) -> str:
        if self.version is None:
            self.version = await self.client.catalog_version()
        return self.version

    async def probe(self) -> None:
        """Raise AuthError when the key may not update stock (a PATCH of an item no site has)."""
        try:
            if await self.catalog() == "V1_CATALOG":
                await self.client.set_stock_v1(PROBE_ID, [])
            else:
                await self.client.set_stock_v3(PROBE_ID, "0", 0)
        except (NotFound, DataError):
            return

    async def _load(self) -> None:
        skus: dict[str, tuple[str, str]] = {}
        if await self.catalog() == "V1_CATALOG":
            async for product in self.client.products_v1():
                pid = str(product.get("id", ""))
                for v in product.get("variants") or []:
                    sku = str(((v or {}).get("variant") or {}).get("sku") or "")
                    if sku and pid:
                        skus.setdefault(sku, (pid, str(v.get("id", ""))))
        else:
            async for v in self.client.variants_v3():
                sku, pid = str(v.get("sku") or ""), str((v.get("productData") or {}).get("productId") or "")
                if sku and pid:
                    skus.setdefault(sku, (pid, str(v.get("id", ""))))
        self.skus, self.loaded_at = skus, time.monotonic()

    async def _resolve(self, updates: list[InventoryUpdate]) -> dict[str, tuple[str, str]]:
        age = time.monotonic() - self.loaded_at
        if not self.loaded_at or age > CACHE_SECONDS or (
                age > RELOAD_AFTER and any(u.sku not in self.skus for u in updates)):
            await self._load()
        return {u.sku: self.skus[u.sku] for u in updates if u.sku in self.skus}

    async def push(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        wanted = {u.sku: u.quantity for u in updates}  # the last value of a SKU wins
        refs = await self._resolve(updates)
        refused = {sku: NOT_IN_CATALOG for sku in wanted if sku not in refs}
        if await self.catalog() == "V1_CATALOG":
            await self._push_v1(wanted, refs, refused)
        else:
            await self._push_v3(wanted, refs, refused)
        return refused

    async def _push_v1(self, wanted: dict[str, int], refs: dict[str, tuple[str, str]],
                       refused: dict[str, str]) -> None:
        by_product: dict[str, list[str]] = {}
        for sku, (pid, _) in refs.items():
            by_product.setdefault(pid, []).append(sku)
        for pid, skus in by_product.items():
            variants = [{"variantId": refs[s][1], "quantity": max(0, wanted[s])} for s in skus]
            try:
                await self.client.set_stock_v1(pid, variants)
            except (DataError, NotFound) as exc:
                self.loaded_at = 0.0  # the catalog changed under us: re-read next time
                refused.update({s: f"Wix refused the stock update: {exc.message}" for s in skus})

    async def _push_v3(self, wanted: dict[str, int], refs: dict[str, tuple[str, str]],
                       refused: dict[str, str]) -> None:
        sku_of = {vid: sku for sku, (_, vid) in refs.items()}
        ids = list(sku_of)
        items: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), 100):
            async for item in self.client.inventory_v3(ids[start:start + 100], self.location_id):
                items.setdefault(str(item.get("variantId", "")), []).append(item)
        for vid, sku in sku_of.items():
            if not items.get(vid):
                refused[sku] = "Wix has no inventory item for this variant" + (
                    f" at location {self.location_id}" if self.location_id else "")
                continue
            for item in items[vid]:
                try:
                    await self._patch_v3(item, max(0, wanted[sku]))
                except (DataError, NotFound) as exc:
                    refused[sku] = f"Wix refused the stock update: {exc.message}"

    async def _patch_v3(self, item: dict[str, Any], quantity: int) -> None:
        item_id, revision = str(item.get("id", "")), str(item.get("revision", ""))
        try:
            await self.client.set_stock_v3(item_id, revision, quantity)
        except DataError as exc:
            if exc.code != "REVISION_MISMATCH":
                raise
            current = await self.client.inventory_item_v3(item_id)
            await self.client.set_stock_v3(item_id, str(current.get("revision", "")), quantity)
