"""The floor: a minimal direct client making exactly the API calls the order lifecycle needs.

Against the same (fresh) sandboxes and with the same concurrency as the hub, it downloads each
store's orders, processes and charges them at Houzz, creates them in TradeGecko (finding the
customer first, as the hub does), picks up the warehouse's shipments, confirms them to Houzz and
pushes the final stock levels. Nothing else: no ledger, no re-reads before writes, no retries, no
rate budget, no cancellation checks. The time it takes is the limit set by the APIs themselves.

It runs in a process of its own, as the hub does (``run_in_process``): each side's client has a
core's worth of event loop to itself, and the CPU it used is measured alike (``getrusage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import resource
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from xml.etree import ElementTree as ET

from benchmarks.runner import own_peak_rss_mb
from benchmarks.world import TG_TOKEN, HouzzStore, World
from orderbridge import event_loop
from orderbridge.connectors.http import ApiClient, HttpResponse, RateSpec

PAGE = 1000  # Houzz getOrders page
TG_PAGE = 250


class FloorError(RuntimeError):
    """An API refused a call the floor needs: the run cannot be compared."""


class NoBudget:
    """The floor waits for no rate budget."""

    async def acquire(self, key: str, spec: RateSpec) -> None:
        return None


@dataclass(frozen=True)
class Target:
    """What the floor needs of the world (sent to its process): the APIs, the stores, the SKUs."""

    houzz_url: str
    tradegecko_url: str
    stores: list[HouzzStore]
    skus: list[str]
    orders: int

    @classmethod
    def of(cls, world: World) -> Target:
        return cls(world.houzz.url, world.tradegecko.url, world.stores, world.skus, len(world.order_ids))


@dataclass
class Floor:
    target: Target
    concurrency: int = 8
    poll_seconds: float = 1.0
    confirmed: int = 0
    on_confirm: Callable[[int], None] | None = None  # told the count after each confirmation
    variant_of: dict[str, int] = field(default_factory=dict)
    backend_ref: dict[int, tuple[HouzzStore, str]] = field(default_factory=dict)  # TG order id -> source order
    seen_fulfillments: set[int] = field(default_factory=set)

    # ------------------------------------------------------------------------------ wire
    def _houzz_headers(self, store: HouzzStore) -> dict[str, str]:
        return {"X-HOUZZ-API-APP-NAME": store.app_name, "X-HOUZZ-API-USER-NAME": store.user_name,
                "X-HOUZZ-API-SSL-TOKEN": store.token}

    async def _houzz_read(self, http: ApiClient, store: HouzzStore, params: dict[str, Any]) -> Any:
        r = await http.request("GET", f"{self.target.houzz_url}/api", params={"format": "json", **params},
                               headers=self._houzz_headers(store))
        data = r.json()
        if data.get("Ack") != "Success":
            raise FloorError(f"Houzz refused {params.get('method')}: {data.get('Errors')}")
        return data

    async def _houzz_update(self, http: ApiClient, store: HouzzStore, method: str, root: str,
                            fields: list[tuple[str, str]]) -> None:
        el = ET.Element(root)
        for name, value in fields:
            ET.SubElement(el, name).text = value
        r = await http.request("POST", f"{self.target.houzz_url}/api", params={"format": "xml", "method": method},
                               headers={**self._houzz_headers(store), "Content-Type": "text/xml"},
                               content=ET.tostring(el, encoding="utf-8"))
        if b"<Ack>Success</Ack>" not in r.content:
            raise FloorError(f"Houzz refused {method} {fields[:2]}: {r.text[:300]}")

    async def _tg(self, http: ApiClient, method: str, path: str, **kwargs: Any) -> HttpResponse:
        r = await http.request(method, f"{self.target.tradegecko_url}{path}",
                               headers={"Authorization": f"Bearer {TG_TOKEN}"}, **kwargs)
        if r.status_code >= 400:
            raise FloorError(f"TradeGecko refused {method} {path}: {r.status_code} {r.text[:300]}")
        return r

    # ------------------------------------------------------------------------- lifecycle
    async def run(self) -> float:
        """Run the whole lifecycle; returns its wall time in seconds."""
        started = time.monotonic()
        # The hub's own HTTP layer (the same client library), with no retries and no rate budget.
        http = ApiClient("", account_key="floor", rate=RateSpec(calls=10**9, period=1), budget=NoBudget(),
                         timeout=120, attempts=1, max_connections=400)
        try:
            await self._variants(http)
            deliver_gate = asyncio.Semaphore(self.concurrency)
            total = self.target.orders
            pickup = asyncio.create_task(self._shipments(http, total))
            await asyncio.gather(*(self._store(http, store, deliver_gate) for store in self.target.stores))
            await pickup
            await self._inventory(http)
        finally:
            await http.aclose()
        return time.monotonic() - started

    async def _variants(self, http: ApiClient) -> None:
        params = [("sku[]", s) for s in self.target.skus] + [("limit", str(TG_PAGE))]
        rows = (await self._tg(http, "GET", "/variants", params=params)).json()["variants"]
        self.variant_of = {str(v["sku"]): int(v["id"]) for v in rows}

    async def _store(self, http: ApiClient, store: HouzzStore, deliver_gate: asyncio.Semaphore) -> None:
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        until = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        orders: list[dict[str, Any]] = []
        start = 0
        while True:
            data = await self._houzz_read(http, store, {"method": "getOrders", "Status": "All", "From": since,
                                                        "To": until, "Start": start, "NumberOfItems": PAGE})
            page = data.get("Orders") or []
            orders += page
            start += len(page)
            if not page or start >= int(data.get("TotalOrderCount") or 0):
                break
        gate = asyncio.Semaphore(self.concurrency)

        async def one(raw: dict[str, Any]) -> None:
            oid = str(raw["OrderId"])
            async with gate:
                await self._houzz_update(http, store, "updateOrder", "UpdateOrderRequest",
                                         [("OrderId", oid), ("Action", "Process")])
                await self._houzz_update(http, store, "updateOrder", "UpdateOrderRequest",
                                         [("OrderId", oid), ("Action", "Charge")])
            async with deliver_gate:
                await self._deliver(http, store, raw)

        await asyncio.gather(*(one(o) for o in orders))

    async def _deliver(self, http: ApiClient, store: HouzzStore, raw: dict[str, Any]) -> None:
        addr = raw.get("Address") or {}
        name = str(raw.get("CustomerName") or "")
        code = f"{store.key}:" + hashlib.sha256(
            f"{name}||{addr.get('Zip', '')}|{addr.get('Address', '')}".lower().encode()).hexdigest()[:16]
        found = (await self._tg(http, "GET", "/companies", params={"company_code": code, "limit": 50})).json()
        first, _, last = name.partition(" ")
        shipping = {"label": "Shipping", "address1": addr.get("Address", ""), "city": addr.get("City", ""),
                    "state": addr.get("State", ""), "zip_code": addr.get("Zip", ""),
                    "country": addr.get("Country", ""), "first_name": first, "last_name": last}
        body: dict[str, Any] = {
            "status": "active", "issued_at": datetime.now(UTC).date().isoformat(),
            "reference_number": str(raw["OrderId"]), "shipping_address": shipping,
            "order_line_items": [{"variant_id": self.variant_of[str(item["SKU"])], "quantity": str(item["Quantity"]),
                                  "price": str(item["Price"])} for item in raw.get("OrderItems") or []],
        }
        companies = found.get("companies") or []
        if companies:
            body["company_id"] = companies[0]["id"]
        else:
            body["company"] = {"name": name or "Customer", "company_type": "consumer", "company_code": code}
        made = (await self._tg(http, "POST", "/orders", json={"order": body})).json()["order"]
        self.backend_ref[int(made["id"])] = (store, str(raw["OrderId"]))

    async def _shipments(self, http: ApiClient, total: int) -> None:
        """Poll fulfillments (as the hub's pickup does) and confirm each order to Houzz as it ships."""
        gates: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.concurrency))
        since: str | None = None
        confirms: list[asyncio.Task[None]] = []

        async def confirm(store: HouzzStore, oid: str, carrier: str, tracking: str) -> None:
            async with gates[store.key]:
                await self._houzz_update(http, store, "updateOrder", "UpdateOrderRequest", [
                    ("OrderId", oid), ("Action", "Ship"), ("ShippingMethod", carrier), ("TrackingNumber", tracking)])
            self.confirmed += 1
            if self.on_confirm is not None:
                self.on_confirm(self.confirmed)

        while self.confirmed + len([c for c in confirms if not c.done()]) < total:
            polled_at = datetime.now(UTC) - timedelta(seconds=2)
            page = 1
            while True:
                params: dict[str, Any] = {"status": "fulfilled", "limit": TG_PAGE, "page": page}
                if since:
                    params["updated_at_min"] = since
                rows = (await self._tg(http, "GET", "/fulfillments", params=params)).json()["fulfillments"]
                for ful in rows:
                    fid, order_id = int(ful["id"]), int(ful["order_id"])
                    if fid in self.seen_fulfillments or order_id not in self.backend_ref:
                        continue
                    self.seen_fulfillments.add(fid)
                    store, oid = self.backend_ref[order_id]
                    confirms.append(asyncio.create_task(confirm(
                        store, oid, str(ful.get("tracking_company") or "Other"), str(ful.get("tracking_number")))))
                if len(rows) < TG_PAGE:
                    break
                page += 1
            since = polled_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            failed = [c for c in confirms if c.done() and c.exception()]
            if failed:
                raise FloorError(str(failed[0].exception()))
            await asyncio.sleep(self.poll_seconds)
        await asyncio.gather(*confirms)

    async def _inventory(self, http: ApiClient) -> None:
        """Read the stock once at the end and push it to every store's listings."""
        available: dict[str, float] = defaultdict(float)
        page = 1
        while True:
            rows = (await self._tg(http, "GET", "/variants", params={"limit": TG_PAGE, "page": page})).json()
            for v in rows["variants"]:
                available[str(v["sku"])] += float(v.get("stock_on_hand") or 0) - float(v.get("committed_stock") or 0)
            if len(rows["variants"]) < TG_PAGE:
                break
            page += 1
        for store in self.target.stores:
            gate = asyncio.Semaphore(self.concurrency)

            async def push(sku: str, qty: float, store: HouzzStore = store, gate: asyncio.Semaphore = gate) -> None:
                async with gate:
                    await self._houzz_update(http, store, "updateInventory", "UpdateInventoryRequest", [
                        ("SKU", sku), ("Action", "update"), ("Quantity", str(max(0, int(qty))))])

            await asyncio.gather(*(push(sku, qty) for sku, qty in available.items()))


def run_in_process(target: Target, concurrency: int, confirmed: Any, pipe: Connection) -> None:
    """Inside the floor's process: run it, then send its wall time and what the process used
    (``confirmed``: a shared counter the bench reads for its progress)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the bench's to handle

    def seen(count: int) -> None:
        confirmed.value = count

    floor = Floor(target, concurrency=concurrency, on_confirm=seen)
    report: dict[str, Any] = {"error": ""}
    try:
        report["seconds"] = event_loop.run(floor.run())
    except BaseException as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.update(cpu_seconds=usage.ru_utime + usage.ru_stime, peak_rss_mb=own_peak_rss_mb(),
                  confirmed=floor.confirmed)
    with contextlib.suppress(OSError):  # the bench may have given up on this process already
        pipe.send(report)
