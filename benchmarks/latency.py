"""Latency mode: orders trickle in at a set rate; how long until each exists in its backend?

Two paths side by side, each on its own sandboxes: a Houzz store polled every second, delivering into
TradeGecko, and a Wix site whose orders arrive by signed webhook (polling as the safety net),
delivering into Holded as sales orders. Creation times are read from the sandboxes: Houzz's
``received_at`` and Wix's ``createdDate`` at the source, TradeGecko's ``created_at`` and Holded's
``storedAt`` at the backend.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.ledger import fresh_ledger
from benchmarks.metrics import parse_time, percentile, source_orders
from benchmarks.run import Progress, isolated_data_dir, prepare_ledger, wait_healthy
from benchmarks.runner import HubSpec, check_runner, make_runner
from benchmarks.world import TG_TOKEN, World, make_stores, place_order, seed_catalog
from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import free_port
from orderbridge.demo.sandboxes import SandboxProcess, start_all
from orderbridge.demo.wix_holded import HOLDED_KEY, PRODUCTS, WixHolded

# Polling every second; the steps after it as often as the runner allows.
SCHEDULE = {"download": 1, "workflow": 0.2, "deliver": 0.2, "shipments": 5, "upload": 5, "cancels": 30,
            "inventory": 30, "stock": 30}
UNLIMITED = {"calls": 1_000_000, "period": 1}
ORDER_NUMBER = re.compile(r"^Order (\S+)$", re.MULTILINE)


@dataclass
class LatencyOptions:
    rate: float = 2.0  # orders per second, split evenly between the two paths
    seconds: float = 60.0
    settle_seconds: float = 30.0  # after the last order, wait this long for stragglers
    database_url: str | None = None
    runner: str = "embedded"
    workers: int | None = None  # --runner workers: worker processes (None: 2)


def latency_config(world: World, books: WixHolded, wix_url: str, holded_url: str) -> AppConfig:
    store = world.stores[0]
    connections: list[dict[str, Any]] = [
        {"name": "houzz", "merchant": "bench", "type": "houzz_seller", "test_mode": True,
         "base_url": world.houzz.url, "schedule": SCHEDULE, "rate_limit": UNLIMITED,
         "credentials": {"app_id": store.app_name, "username": store.user_name, "token": store.token}},
        {"name": "tradegecko", "merchant": "bench", "type": "tradegecko", "test_mode": True,
         "base_url": world.tradegecko.url, "schedule": SCHEDULE, "rate_limit": UNLIMITED,
         "credentials": {"access_token": TG_TOKEN}},
    ]
    for conn in books.connections(wix_url, holded_url, UNLIMITED, SCHEDULE):
        connections.append({**conn, "merchant": "bench"})
    return AppConfig.model_validate({
        "merchants": [{"name": "bench"}],
        "connections": connections,
        "routes": [{"source": "houzz", "backend": "tradegecko"}, books.route],
    })


def _wix_latencies(books: WixHolded) -> tuple[list[float], int]:
    """(seconds from Wix createdDate to the Holded sales order, orders not found in Holded)."""
    made = {o["number"]: parse_time(o["createdDate"]) for o in books._call(
        books.wix, "GET", f"/sites/{books.site['siteId']}/orders")}
    docs = books._call(books.holded, "GET", f"/accounts/{HOLDED_KEY}/documents", type="salesorder")["documents"]
    stored: dict[str, float] = {}
    for doc in docs:
        m = ORDER_NUMBER.search(str(doc.get("notes") or ""))
        if m:
            stored[m.group(1)] = min(stored.get(m.group(1), float("inf")), float(doc["storedAt"]))
    return [stored[n] - t for n, t in made.items() if n in stored], sum(1 for n in made if n not in stored)


def _houzz_latencies(world: World) -> tuple[list[float], int]:
    with world.tradegecko.admin() as g:
        made = {o["reference_number"]: parse_time(o["created_at"])
                for o in g.get(f"/accounts/{world.tg_account}/orders").json()}
    sources = source_orders(world)
    lat = [made[oid] - float(sources[oid]["received_at"]) for oid in world.order_ids if oid in made]
    return lat, sum(1 for oid in world.order_ids if oid not in made)


def _summary(values: list[float], missing: int) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {"orders": len(values) + missing, "delivered": len(values), "missing": missing,
            "p50": r(percentile(values, 50)), "p99": r(percentile(values, 99)), "max": r(max(values, default=None))}


async def run_latency(opts: LatencyOptions, progress: Progress) -> dict[str, Any]:
    check_runner(opts.runner, opts.database_url, opts.workers)  # before the sandboxes are started
    off = {"rate_limit": False}
    boxes = [SandboxProcess("houzz", {"accounts": [], "auth_expiry_days": 0, **off}),
             SandboxProcess("tradegecko", dict(off)),
             SandboxProcess("wix", {"demo_site": False, "rate_limit": {"enabled": False}}),
             SandboxProcess("holded", {"accounts": [], "rate_limit_enabled": False})]
    report: dict[str, Any] = {"options": {"mode": "latency", **opts.__dict__}}
    try:
        start_all(boxes)
        houzz, tradegecko, wix, holded = boxes
        world = seed_catalog(houzz, tradegecko, make_stores(1))
        books = WixHolded(wix=wix, holded=holded, orders=0)
        port = free_port()
        await asyncio.to_thread(books.seed_world, f"http://127.0.0.1:{port}/webhooks/demo-wix")
        with isolated_data_dir() as workdir, fresh_ledger(opts.database_url, workdir, "latency") as url:
            cfg = latency_config(world, books, wix.url, holded.url)
            await asyncio.to_thread(prepare_ledger, url, cfg)
            runner = make_runner(opts.runner, opts.database_url, opts.workers)
            runner.start(HubSpec(url, cfg.runner.model_dump(), port))
            try:
                await wait_healthy(f"http://127.0.0.1:{port}", runner)
                await _trickle(opts, world, books, progress)
            finally:
                usage = await asyncio.to_thread(runner.stop)
        houzz_lat, houzz_missing = await asyncio.to_thread(_houzz_latencies, world)
        wix_lat, wix_missing = await asyncio.to_thread(_wix_latencies, books)
        report["latency"] = {"by_mode": {"polling (Houzz, 1 s)": _summary(houzz_lat, houzz_missing),
                                         "webhooks (Wix)": _summary(wix_lat, wix_missing)},
                             "hub_cpu_seconds": round(usage.cpu_seconds, 2)}
    finally:
        for box in boxes:
            box.stop()
    return report


async def _trickle(opts: LatencyOptions, world: World, books: WixHolded, progress: Progress) -> None:
    rng = random.Random(3)
    store = world.stores[0]
    sid = books.site["siteId"]
    started = time.monotonic()
    placed = 0
    while time.monotonic() - started < opts.seconds:
        due = started + placed / opts.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if placed % 2 == 0:
            await asyncio.to_thread(place_order, world, store, rng)
        else:
            sku, _, price, _ = PRODUCTS[placed % len(PRODUCTS)]
            await asyncio.to_thread(books._call, books.wix, "POST", f"/sites/{sid}/orders",
                                    {"lines": [{"sku": sku, "quantity": 1, "price": price, "taxRate": "0.21"}]},
                                    events=1)
        placed += 1
        progress({"phase": "latency", "confirmed": placed, "orders": int(opts.rate * opts.seconds),
                  "elapsed": round(time.monotonic() - started, 1), "calls": 0})
    deadline = time.monotonic() + opts.settle_seconds
    while time.monotonic() < deadline:  # until every order reached its backend (or the stragglers are late)
        missing = (await asyncio.to_thread(_houzz_latencies, world))[1] + \
            (await asyncio.to_thread(_wix_latencies, books))[1]
        if not missing:
            return
        await asyncio.sleep(0.5)
