"""One benchmark run: orderbridge through the whole lifecycle, then the floor on fresh sandboxes."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.floor import Target as FloorTarget
from benchmarks.floor import run_in_process as floor_process
from benchmarks.ledger import fresh_ledger
from benchmarks.ledger_activity import ledger_counts, per_order
from benchmarks.metrics import CallLog, RunCpu, end_state, inventory_mismatches, percentile
from benchmarks.report import run_problems
from benchmarks.runner import HubSpec, Runner, check_runner, make_runner
from benchmarks.server_cpu import ServerCpu
from benchmarks.warehouse import Warehouse
from benchmarks.world import TG_TOKEN, World, make_stores, seed_catalog, seed_orders, start_sandboxes
from orderbridge.config import AppConfig
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.sandbox_kit import free_port

Progress = Callable[[dict[str, Any]], None]

# Job intervals (seconds) for throughput runs. A busy job runs back to back anyway (a run takes a
# batch); the interval is the pause of an idle one, and each idle run costs the ledger a few commits.
SCHEDULE = {"download": 5, "workflow": 1, "deliver": 1, "shipments": 2, "upload": 1, "cancels": 30,
            "inventory": 10, "stock": 10}
UNLIMITED = {"calls": 1_000_000, "period": 1}  # the hub's own call budget, when the sandboxes enforce none


@dataclass
class BenchOptions:
    orders: int = 10_000
    sources: int = 10
    database_url: str | None = None
    runner: str = "embedded"
    workers: int | None = None  # --runner workers: worker processes (None: 2)
    real_limits: bool = False
    duration: float = 180.0  # --real-limits: how long to run (the documented limits allow ~1 order a second)
    concurrency: int = 8
    floor: bool = True
    timeout: float = 3600.0
    profile_to: str | None = None
    tracemalloc: bool = False
    seed: int = 7
    keep_ledger: bool = False
    overlap_seconds: float = 120.0
    rounds: int = 1  # hub and floor runs compared, alternately first (the ratios' median is reported)


def hub_config(world: World, opts: BenchOptions, schedule: dict[str, float] | None = None) -> AppConfig:
    rate = None if opts.real_limits else UNLIMITED
    sched = schedule or SCHEDULE
    connections: list[dict[str, Any]] = [
        {"name": f"houzz-{s.key}", "merchant": "bench", "type": "houzz_seller", "test_mode": True,
         "base_url": world.houzz.url, "schedule": sched, "rate_limit": rate,
         "credentials": {"app_id": s.app_name, "username": s.user_name, "token": s.token}}
        for s in world.stores]
    connections.append({"name": "tradegecko", "merchant": "bench", "type": "tradegecko", "test_mode": True,
                        "base_url": world.tradegecko.url, "schedule": sched, "rate_limit": rate,
                        "credentials": {"access_token": TG_TOKEN}})
    return AppConfig.model_validate({
        # The cursor look-back: every poll re-reads the orders created this long ago. The default
        # (600 s) at a 5 s poll re-reads each order 120 times; at volume a shorter window pays.
        "runner": {"concurrency": opts.concurrency, "overlap_seconds": opts.overlap_seconds},
        "merchants": [{"name": "bench"}],
        "connections": connections,
        "routes": [{"source": f"houzz-{s.key}", "backend": "tradegecko"} for s in world.stores],
    })


@contextlib.contextmanager
def isolated_data_dir() -> Iterator[Path]:
    """The run's ledger, secret key and profile live in a directory of their own."""
    before = os.environ.get("ORDERBRIDGE_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="orderbridge-bench-") as tmp:
        os.environ["ORDERBRIDGE_DATA_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            if before is None:
                os.environ.pop("ORDERBRIDGE_DATA_DIR", None)
            else:
                os.environ["ORDERBRIDGE_DATA_DIR"] = before


def prepare_ledger(url: str, cfg: AppConfig) -> None:
    from orderbridge.engine.hub import Hub
    from orderbridge.engine.provision import apply_config
    from orderbridge.ledger.db import open_ledger

    hub = Hub(db=open_ledger(url))
    apply_config(hub, cfg)
    hub.db.dispose()


async def wait_healthy(url: str, runner: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if hasattr(runner, "alive") and not runner.alive():
                raise ConfigError("the hub process exited while starting", fix="see its messages above")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/health", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise ConfigError(f"the hub did not answer at {url} within {within:.0f} s")


async def shipped_count(world: World, http: httpx.AsyncClient) -> int:
    """Orders Shipped at the bench's stores, in one read of the Houzz sandbox's accounts on the run's
    client: checked every second of a hub run, where the floor counts its own, so it has to cost the
    machine little (a client made per check, and a request per store, took 25 ms of CPU)."""
    r = await http.get(f"{world.houzz.url}/__sandbox__/accounts", timeout=60)
    r.raise_for_status()
    stores = {s.key for s in world.stores}
    return sum(int(a["orders_by_status"].get("Shipped", 0)) for a in r.json() if a["id"] in stores)


def new_world(opts: BenchOptions) -> World:
    houzz, tradegecko = start_sandboxes(opts.real_limits)
    try:
        world = seed_catalog(houzz, tradegecko, make_stores(opts.sources))
        seed_orders(world, opts.orders, opts.seed)
    except Exception:
        houzz.stop()
        tradegecko.stop()
        raise
    return world


def stop_world(world: World) -> None:
    world.houzz.stop()
    world.tradegecko.stop()


POLL_SECONDS = 1.0
FINAL_POLL_SECONDS = 0.25


async def _until_done(world: World, http: httpx.AsyncClient, total: int, started: float, deadline: float,
                      phase: str, progress: Progress, logs: list[CallLog], done_when_shipped: bool = True
                      ) -> tuple[bool, float]:
    """Wait until every order is confirmed at its store and the listings show TradeGecko's stock."""
    finished_at = 0.0
    shipped = 0
    while time.monotonic() < deadline:
        # A second apart, and a quarter of that once the last hundredth of the orders is under way:
        # the end is seen within 0.25 s (the floor times its own end exactly), without the checks
        # taking much of the machine away from what they measure.
        await asyncio.sleep(FINAL_POLL_SECONDS if shipped >= total - max(1, total // 100) else POLL_SECONDS)
        shipped = await shipped_count(world, http)
        elapsed = time.monotonic() - started
        progress({"phase": phase, "confirmed": shipped, "orders": total, "elapsed": round(elapsed, 1),
                  "calls": sum(log.total for log in logs)})
        if shipped >= total and done_when_shipped:
            if not await asyncio.to_thread(inventory_mismatches, world):
                finished_at = time.monotonic()
                return True, finished_at - started
    return False, time.monotonic() - started


class Milestones:
    """Seconds into a run when the first order, half of them and all of them were confirmed at
    their stores (from the progress samples, a second apart, a quarter second near the end): what
    came before the first is start-up, what comes after all of them is the listings catching up."""

    SHARES = {"first": 0.0, "half": 0.5, "all": 1.0}

    def __init__(self, total: int) -> None:
        self.total = total
        self.at: dict[str, float] = {}

    def tracking(self, progress: Progress) -> Progress:
        def track(p: dict[str, Any]) -> None:
            self.see(float(p["elapsed"]), int(p["confirmed"]))
            progress(p)

        return track

    def see(self, elapsed: float, confirmed: int) -> None:
        for name, share in self.SHARES.items():
            if name not in self.at and confirmed >= max(1.0, share * self.total):
                self.at[name] = round(elapsed, 1)


async def run_hub(opts: BenchOptions, world: World, workdir: Path, progress: Progress,
                  label: str = "hub") -> dict[str, Any]:
    milestones = Milestones(len(world.order_ids))
    progress = milestones.tracking(progress)
    runner: Runner = make_runner(opts.runner, opts.database_url, opts.workers, tracemalloc=opts.tracemalloc,
                                 profile_to=opts.profile_to)
    cfg = hub_config(world, opts)
    logs = [CallLog("houzz", world.houzz.url), CallLog("tradegecko", world.tradegecko.url)]
    with fresh_ledger(opts.database_url, workdir, label, keep=opts.keep_ledger) as url:
        await asyncio.to_thread(prepare_ledger, url, cfg)
        counted_from = await asyncio.to_thread(ledger_counts, url)  # PostgreSQL: the run's ledger work
        port = free_port()
        runner.start(HubSpec(url, cfg.runner.model_dump(), port))
        usage = None
        tasks: list[asyncio.Task[Any]] = []
        server = ServerCpu.of(url)  # PostgreSQL on this machine: its work for the ledger is counted too
        server_cpu: float | None = None
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", runner)
            if server is not None:
                await asyncio.to_thread(server.start)
            started, cpu = time.monotonic(), RunCpu(world).start()
            async with httpx.AsyncClient() as http:
                tasks = [asyncio.create_task(Warehouse(world, opts.concurrency).run()),
                         *(asyncio.create_task(log.follow(http)) for log in logs),
                         *([asyncio.create_task(server.follow())] if server is not None else [])]
                limit = opts.duration if opts.real_limits else opts.timeout
                finished, elapsed = await _until_done(world, http, len(world.order_ids), started, started + limit,
                                                      "hub", progress, logs, done_when_shipped=not opts.real_limits)
                used = cpu.stop()
                if server is not None:
                    await asyncio.to_thread(server.sample)
                    server_cpu = server.seconds()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                usage = await asyncio.to_thread(runner.stop)
                for log in logs:
                    await log.poll(http)
        finally:
            for task in tasks:
                task.cancel()
            if usage is None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(runner.stop)
            if server is not None:
                server.close()  # before the run's database is dropped
        ledger = None
        if counted_from is not None:
            counted = await asyncio.to_thread(ledger_counts, url)
            ledger = per_order(counted_from, counted, len(world.order_ids)) if counted is not None else None
    state = await asyncio.to_thread(end_state, world, check_inventory=True)
    return {"finished": finished, "seconds": elapsed, "usage": usage, "state": state, "logs": logs,
            "confirmed_at": milestones.at, **used, "server_cpu": server_cpu, "ledger_per_order": ledger}


async def run_floor(opts: BenchOptions, world: World, progress: Progress) -> dict[str, Any]:
    logs = [CallLog("houzz", world.houzz.url), CallLog("tradegecko", world.tradegecko.url)]
    milestones = Milestones(len(world.order_ids))
    progress = milestones.tracking(progress)
    ctx = multiprocessing.get_context("spawn")
    confirmed = ctx.Value("q", 0, lock=False)  # written by the floor's process alone
    ours, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=floor_process, args=(FloorTarget.of(world), opts.concurrency, confirmed, theirs),
                       name="orderbridge-bench-floor", daemon=True)
    async with httpx.AsyncClient() as http:
        tasks = [asyncio.create_task(Warehouse(world, opts.concurrency).run()),
                 *(asyncio.create_task(log.follow(http)) for log in logs)]
        started, cpu = time.monotonic(), RunCpu(world).start()

        async def report() -> None:
            while True:
                await asyncio.sleep(1.0)
                progress({"phase": "floor", "confirmed": int(confirmed.value), "orders": len(world.order_ids),
                          "elapsed": round(time.monotonic() - started, 1), "calls": sum(log.total for log in logs)})

        ticker = asyncio.create_task(report())
        proc.start()
        theirs.close()
        try:
            if not await asyncio.to_thread(ours.poll, opts.timeout):
                raise TimeoutError(f"the floor did not finish within {opts.timeout:.0f} s")
            try:
                result: dict[str, Any] = await asyncio.to_thread(ours.recv)
            except EOFError:
                await asyncio.to_thread(proc.join, 10)
                raise RuntimeError(f"the floor's process ended without a report (exit code {proc.exitcode})"
                                   ) from None
            used = cpu.stop()
        finally:
            for task in [*tasks, ticker]:
                task.cancel()
            await asyncio.gather(*tasks, ticker, return_exceptions=True)
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()
        if result["error"]:
            raise RuntimeError(f"the floor failed: {result['error']}")
        for log in logs:
            await log.poll(http)
    seconds = float(result["seconds"])
    milestones.see(seconds, int(result["confirmed"]))  # it may finish between two samples
    state = await asyncio.to_thread(end_state, world, check_inventory=True)
    return {"finished": True, "seconds": seconds, "state": state, "logs": logs, "confirmed_at": milestones.at,
            **used, "client": {"cpu_seconds": round(result["cpu_seconds"], 3),
                                                   "peak_rss_mb": round(result["peak_rss_mb"], 1)}}


def _calls(logs: list[CallLog], orders: int) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for log in logs:
        kinds.update(log.kinds)
    total = sum(kinds.values())
    return {"total": total, "per_order": round(total / max(orders, 1), 3),
            "per_order_by_kind": {k: round(v / max(orders, 1), 3) for k, v in sorted(kinds.items())},
            "answered_429": sum(log.rate_limited for log in logs)}


def _figures(result: dict[str, Any], orders: int) -> dict[str, Any]:
    state = result["state"]
    lat = state.latencies
    done = orders if result["finished"] else state.confirmed  # a time-boxed run counts what got through
    out = {
        "finished": result["finished"],
        "seconds": round(result["seconds"], 2),
        "orders_per_second": round(done / result["seconds"], 2) if result["seconds"] else None,
        "latency_seconds": {"p50": _r(percentile(lat, 50)), "p99": _r(percentile(lat, 99)),
                            "max": _r(max(lat, default=None))},
        "confirmed_at_seconds": result.get("confirmed_at", {}),
        "calls": _calls(result["logs"], orders),
        **state.summary(),
    }
    if not result["finished"]:
        out["note"] = ("the run stopped before every order got through: orders and confirmations not made yet "
                       "are counted as lost")
    if result.get("sandbox_cpu") is not None:
        out["sandbox_cpu_seconds_per_1000_orders"] = round(result["sandbox_cpu"] / orders * 1000, 2)
    if result.get("bench_cpu") is not None:
        out["bench_cpu_seconds_per_1000_orders"] = round(result["bench_cpu"] / orders * 1000, 2)
    if result.get("machine_busy") is not None:
        out["machine_busy_share"] = result["machine_busy"]
    if result.get("server_cpu") is not None:
        out["ledger_server_cpu_seconds_per_1000_orders"] = round(result["server_cpu"] / orders * 1000, 2)
    if result.get("ledger_per_order") is not None:
        out["ledger_per_order"] = result["ledger_per_order"]
    usage = result.get("usage")
    if usage is not None:
        out["hub"] = {**asdict(usage), "cpu_seconds_per_1000_orders": round(usage.cpu_seconds / orders * 1000, 2)}
    client = result.get("client")
    if client is not None:  # the floor's own process
        out["client"] = {**client, "cpu_seconds_per_1000_orders": round(client["cpu_seconds"] / orders * 1000, 2)}
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _limits(logs: list[CallLog], sources: int, seconds: float) -> dict[str, Any]:
    """Achieved call rate against the documented limits (busy period: first to last call)."""
    allowed = {"houzz": 60 / 60 * sources, "tradegecko": 300 / 300}
    out = {}
    for log in logs:
        rate = log.total / seconds if seconds else 0.0
        out[log.api] = {"calls": log.total, "allowed_per_second": allowed[log.api],
                        "achieved_per_second": round(rate, 3),
                        "share_of_allowed": round(rate / allowed[log.api], 3),
                        "answered_429": log.rate_limited,
                        "share_429": round(log.rate_limited / log.total, 4) if log.total else 0.0}
    return out


async def run_bench(opts: BenchOptions, progress: Progress) -> dict[str, Any]:
    check_runner(opts.runner, opts.database_url, opts.workers)  # before the sandboxes are started
    report: dict[str, Any] = {"options": {k: v for k, v in asdict(opts).items() if k != "profile_to"},
                              "machine": machine()}
    comparing = opts.floor and not opts.real_limits
    rounds = opts.rounds if comparing else 1
    with isolated_data_dir() as workdir:
        pairs: list[dict[str, dict[str, Any]]] = []
        for n in range(rounds):
            # Alternately hub first and floor first (hub, floor, floor, hub, ...): a machine that
            # slows down or speeds up over the rounds weighs on both sides alike.
            sides = ("hub", "floor") if n % 2 == 0 else ("floor", "hub")
            pair: dict[str, dict[str, Any]] = {}
            for side in sides if comparing else ("hub",):
                step = _in_round(progress, n, rounds)
                step({"phase": "seeding" if side == "hub" else "seeding (floor)", "confirmed": 0,
                      "orders": opts.orders, "elapsed": 0, "calls": 0})
                world = await asyncio.to_thread(new_world, opts)
                try:
                    if side == "hub":
                        label = "hub" if n == 0 else f"hub_{n + 1}"  # a fresh ledger for every round
                        pair[side] = await run_hub(opts, world, workdir, step, label=label)
                    else:
                        pair[side] = await run_floor(opts, world, step)
                finally:
                    stop_world(world)
            pairs.append(pair)
        figures = [{side: _figures(result, opts.orders) for side, result in pair.items()} for pair in pairs]
        if not comparing:
            report["orderbridge"] = figures[0]["hub"]
            if opts.real_limits:
                report["rate_limits"] = _limits(pairs[0]["hub"]["logs"], opts.sources, pairs[0]["hub"]["seconds"])
            return report
        compared = [_compared(n, f["hub"], f["floor"]) for n, f in enumerate(figures, start=1)]
        # The figures shown are those of the round whose ratio is the median one (for an even
        # number of rounds, the lower of the two middle ones); the ratios are the median's.
        median = sorted(range(rounds), key=lambda i: compared[i]["ratio"] or 0.0)[(rounds - 1) // 2]
        report["orderbridge"], report["floor"] = figures[median]["hub"], figures[median]["floor"]
        report["ratio_to_floor"] = _median([c["ratio"] for c in compared])
        report["cpu_ratio_to_floor"] = _median([c["cpu_ratio"] for c in compared])
        if rounds > 1:
            report["rounds"] = compared
            ratios = [c["ratio"] for c in compared if c["ratio"] is not None]
            report["ratio_range"] = [min(ratios), max(ratios)] if ratios else None
            report["figures_of_round"] = median + 1
    return report


def _in_round(progress: Progress, n: int, rounds: int) -> Progress:
    if rounds == 1:
        return progress
    return lambda p: progress({**p, "phase": f"{p['phase']}, round {n + 1} of {rounds}"})


def _compared(n: int, hub: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Round n: both sides' times and client CPU, their ratios, what either lost or duplicated,
    and what fails it (``report.run_problems``)."""
    hub_cpu = hub.get("hub", {}).get("cpu_seconds")
    floor_cpu = floor["client"]["cpu_seconds"]
    return {
        "orderbridge_seconds": hub["seconds"], "floor_seconds": floor["seconds"],
        "ratio": round(hub["seconds"] / floor["seconds"], 3) if floor["seconds"] else None,
        # The client side alone: what the hub's process used against what the floor's did.
        "orderbridge_cpu_seconds": hub_cpu, "floor_cpu_seconds": floor_cpu,
        "cpu_ratio": round(hub_cpu / floor_cpu, 3) if hub_cpu and floor_cpu else None,
        "finished": bool(hub["finished"] and floor["finished"]),
        "lost": sum(int(side[k]) for side in (hub, floor) for k in ("lost_orders", "lost_confirmations")),
        "duplicated": sum(int(side[k]) for side in (hub, floor)
                          for k in ("duplicated_orders", "duplicated_confirmations")),
        "problems": run_problems(f"round {n}, orderbridge", hub) + run_problems(f"round {n}, floor", floor),
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def machine() -> dict[str, Any]:
    import importlib.util
    import platform

    from orderbridge.event_loop import loop_name

    # The loop and the HTTP parser move the figures a lot (docs/benchmarks.md): say which ran.
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "event_loop": loop_name(),
            "http_parser": "httptools" if importlib.util.find_spec("httptools") else "h11"}
