"""Figures read from the sandboxes: their call logs, and the state they hold at the end of a run."""

from __future__ import annotations

import asyncio
import math
import os
import re
import resource
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from benchmarks.world import World

NUMBER = re.compile(r"/\d+(?=/|$)")


def call_kind(api: str, call: dict[str, Any]) -> str:
    """A call as 'api METHOD what': Houzz by its method parameter, REST APIs by path (ids folded)."""
    if api == "houzz":
        method = parse_qs(call.get("query") or "").get("method", ["?"])[0]
        return f"houzz {method}"
    return f"{api} {call['method']} {NUMBER.sub('/{id}', call['path'])}"


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU a live process has used so far (Linux /proc); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU of the bench's own process so far (all its threads): the warehouse it plays,
    its progress checks and call-log reads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class MachineCpu:
    """The whole machine's CPU between ``start()`` and ``share()`` (Linux ``/proc/stat``): how much
    of every core was busy. Near 1, the run was bound by the cores, and every process's CPU (the
    hub's, the APIs', the bench's) took time from the others."""

    busy: int = 0
    total: int = 0

    @staticmethod
    def read() -> tuple[int, int] | None:
        """(busy, total) clock ticks of all cores since boot; idle and iowait are not busy."""
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(ticks) < 5:
            return None
        total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
        return total - ticks[3] - ticks[4], total

    def start(self) -> MachineCpu:
        now = self.read()
        if now is not None:
            self.busy, self.total = now
        return self

    def share(self) -> float | None:
        now = self.read()
        if now is None or not self.total or now[1] <= self.total:
            return None
        return round((now[0] - self.busy) / (now[1] - self.total), 3)


@dataclass
class RunCpu:
    """What one side's run cost beyond its own client: the sandboxes' CPU, the bench process's, and
    how busy the machine's cores were, from ``start()`` to ``stop()``."""

    world: World
    sandboxes: float | None = None
    bench: float = 0.0
    machine: MachineCpu = field(default_factory=MachineCpu)

    def start(self) -> RunCpu:
        self.sandboxes, self.bench = sandbox_cpu_seconds(self.world), own_cpu_seconds()
        self.machine.start()
        return self

    def stop(self) -> dict[str, float | None]:
        after = sandbox_cpu_seconds(self.world)
        return {"sandbox_cpu": None if self.sandboxes is None or after is None else after - self.sandboxes,
                "bench_cpu": own_cpu_seconds() - self.bench, "machine_busy": self.machine.share()}


def sandbox_cpu_seconds(world: World) -> float | None:
    """CPU both sandboxes have used so far: what the side under test made the APIs work, read before
    and after its run (seeding and the end-state checks fall outside)."""
    total = 0.0
    for sandbox in (world.houzz, world.tradegecko):
        used = process_cpu_seconds(sandbox.proc.pid) if sandbox.proc is not None else None
        if used is None:
            return None
        total += used
    return total


@dataclass
class CallLog:
    """Follows one sandbox's ``/__sandbox__/calls`` (``?since=``) so no call is missed on long runs."""

    api: str
    url: str
    seen: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    per_second: Counter[int] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None

    async def poll(self, http: httpx.AsyncClient) -> int:
        r = await http.get(f"{self.url}/__sandbox__/calls", params={"since": self.seen}, timeout=60)
        r.raise_for_status()
        calls = r.json()
        for c in calls:
            self.seen = max(self.seen, int(c["seq"]))
            self.kinds[call_kind(self.api, c)] += 1
            self.statuses[int(c["status"])] += 1
            at = float(c["at"])
            self.per_second[int(at)] += 1
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)
        return len(calls)

    async def follow(self, http: httpx.AsyncClient, every: float = 2.0) -> None:
        while True:
            try:
                await self.poll(http)
            except httpx.HTTPError:
                pass  # a busy sandbox answers the next poll
            await asyncio.sleep(every)

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    @property
    def rate_limited(self) -> int:
        return self.statuses.get(429, 0)

    def busy_rate(self) -> float:
        """Calls per second between the first and the last call."""
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return self.total / (self.last_at - self.first_at)


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class EndState:
    """What the sandboxes hold once a run is over, and what it says about exactly-once."""

    orders: int
    backend_orders: int
    lost_orders: list[str]
    duplicated_orders: dict[str, int]
    confirmed: int
    lost_confirmations: list[str]
    duplicated_confirmations: dict[str, int]
    latencies: list[float]
    inventory_mismatches: dict[str, tuple[int, int]]

    def summary(self) -> dict[str, Any]:
        return {
            "orders_seeded": self.orders,
            "backend_orders": self.backend_orders,
            "lost_orders": len(self.lost_orders),
            "duplicated_orders": sum(n - 1 for n in self.duplicated_orders.values()),
            "confirmed_at_source": self.confirmed,
            "lost_confirmations": len(self.lost_confirmations),
            "duplicated_confirmations": sum(n - 1 for n in self.duplicated_confirmations.values()),
            "inventory_listings_out_of_sync": len(self.inventory_mismatches),
            "examples": {
                "lost_orders": self.lost_orders[:5],
                "duplicated_orders": dict(list(self.duplicated_orders.items())[:5]),
                "lost_confirmations": self.lost_confirmations[:5],
                "duplicated_confirmations": dict(list(self.duplicated_confirmations.items())[:5]),
                "inventory": {k: list(v) for k, v in list(self.inventory_mismatches.items())[:5]},
            },
        }


def backend_orders(world: World) -> list[dict[str, Any]]:
    with world.tradegecko.admin() as g:
        r = g.get(f"/accounts/{world.tg_account}/orders", timeout=300)
        r.raise_for_status()
        return list(r.json())


def source_orders(world: World) -> dict[str, dict[str, Any]]:
    """Houzz order id -> its admin state (status, received_at, ...)."""
    out: dict[str, dict[str, Any]] = {}
    with world.houzz.admin() as h:
        for store in world.stores:
            r = h.get(f"/accounts/{store.key}/orders", params={"history": "0"}, timeout=300)
            r.raise_for_status()
            out.update({o["OrderId"]: o for o in r.json()})
    return out


def ship_actions(world: World) -> Counter[str]:
    """Accepted Ship actions per Houzz order (a refused one changed nothing)."""
    counts: Counter[str] = Counter()
    with world.houzz.admin() as h:
        for store in world.stores:
            r = h.get(f"/accounts/{store.key}/actions", params={"action": "Ship"}, timeout=300)
            r.raise_for_status()
            counts.update(a["OrderId"] for a in r.json() if a.get("result") != "error")
    return counts


def confirmed_count(world: World) -> int:
    return len(ship_actions(world))


def inventory_mismatches(world: World) -> dict[str, tuple[int, int]]:
    """'store/SKU' -> (quantity at Houzz, TradeGecko's available) where they differ."""
    with world.tradegecko.admin() as g:
        stock = g.get(f"/accounts/{world.tg_account}/stock").json()
    available: dict[str, float] = defaultdict(float)
    for row in stock:
        available[row["sku"]] += float(row["available"])
    out: dict[str, tuple[int, int]] = {}
    with world.houzz.admin() as h:
        for store in world.stores:
            for listing in h.get(f"/accounts/{store.key}/listings").json():
                want = max(0, int(available.get(listing["SKU"], 0)))
                have = int(float(listing.get("Quantity") or 0))
                if have != want:
                    out[f"{store.key}/{listing['SKU']}"] = (have, want)
    return out


def end_state(world: World, *, check_inventory: bool = True) -> EndState:
    seeded = world.order_ids
    wanted = set(seeded)
    by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in backend_orders(world):
        if o.get("status") not in ("deleted",):
            by_ref[str(o.get("reference_number") or "")].append(o)
    sources = source_orders(world)
    ships = ship_actions(world)
    latencies = []
    for oid in seeded:
        made = by_ref.get(oid)
        if made and oid in sources:
            first = min(parse_time(o["created_at"]) for o in made)
            latencies.append(first - float(sources[oid]["received_at"]))
    return EndState(
        orders=len(seeded),
        backend_orders=sum(len(v) for k, v in by_ref.items() if k in wanted),
        lost_orders=[oid for oid in seeded if oid not in by_ref],
        duplicated_orders={ref: len(v) for ref, v in by_ref.items() if len(v) > 1},
        confirmed=sum(1 for oid in seeded if ships.get(oid)),
        lost_confirmations=[oid for oid in seeded if not ships.get(oid)],
        duplicated_confirmations={oid: n for oid, n in ships.items() if n > 1},
        latencies=latencies,
        inventory_mismatches=inventory_mismatches(world) if check_inventory else {},
    )
