"""`orderbridge demo`: sandboxes, a seeded world, the hub with its web app, and progress."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import uvicorn

from orderbridge.config import AppConfig
from orderbridge.demo.sandboxes import SandboxProcess
from orderbridge.demo.scenario import HOUZZ_ACCOUNT, LEGACY_SKU, LEGACY_TARGET, TG_TOKEN, Scenario
from orderbridge.engine.hub import Hub
from orderbridge.engine.operations import add_alias
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import data_dir, open_ledger
from orderbridge.web.app import create_app


@dataclass
class DemoOptions:
    orders: int = 20
    until_done: bool = False
    port: int = 8080
    timeout: float = 600.0
    real_limits: bool = False
    database_url: str | None = None


def demo_config(houzz_url: str, tg_url: str, real_limits: bool) -> AppConfig:
    fast = {"download": 1, "workflow": 0.5, "deliver": 0.5, "shipments": 1, "upload": 0.5, "cancels": 2,
            "inventory": 5, "stock": 5}
    relaxed = None if real_limits else {"calls": 50, "period": 1}
    return AppConfig.model_validate({
        "runner": {"overlap_seconds": 120, "lease_seconds": 30, "concurrency": 8},
        "merchants": [{"name": "demo"}],
        "connections": [
            {"name": "demo-houzz", "merchant": "demo", "type": "houzz_seller", "test_mode": True,
             "base_url": houzz_url, "schedule": fast, "rate_limit": relaxed,
             "credentials": {"app_id": HOUZZ_ACCOUNT["app_name"], "username": HOUZZ_ACCOUNT["user_name"],
                             "token": HOUZZ_ACCOUNT["token"]},
             "settings": {"inventory_floor": 2}},
            {"name": "demo-tradegecko", "merchant": "demo", "type": "tradegecko", "test_mode": True,
             "base_url": tg_url, "schedule": fast, "rate_limit": relaxed,
             "credentials": {"access_token": TG_TOKEN}},
        ],
        "routes": [{"source": "demo-houzz", "backend": "demo-tradegecko"}],
    })


def ledger_view(hub: Hub) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(external id -> status, cust_ref -> external id, external id -> error message)."""
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status, t.orders.c.cust_ref,
                                      t.orders.c.error_message)).all()
    return ({r.external_id: r.status for r in rows}, {r.cust_ref: r.external_id for r in rows},
            {r.external_id: r.error_message for r in rows if r.error_message})


async def run_demo(opts: DemoOptions, report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    sandbox_opts: dict[str, dict[str, Any]] = {"houzz": {"accounts": []}, "tradegecko": {}}
    if not opts.real_limits:
        sandbox_opts["houzz"]["rate_limit"] = {"calls": 3000, "period": 60}
        sandbox_opts["tradegecko"].update(rate_calls=3000, rate_period=60)
    houzz = SandboxProcess("houzz", sandbox_opts["houzz"]).start()
    tradegecko = SandboxProcess("tradegecko", sandbox_opts["tradegecko"]).start()
    try:
        return await _run(opts, houzz, tradegecko, report)
    finally:
        houzz.stop()
        tradegecko.stop()


async def _run(opts: DemoOptions, houzz: SandboxProcess, tradegecko: SandboxProcess,
               report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    scenario = Scenario(houzz=houzz, tradegecko=tradegecko, orders=opts.orders)
    await asyncio.to_thread(scenario.seed_world)
    url = opts.database_url or f"sqlite:///{data_dir() / 'demo.sqlite'}"
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):  # every demo starts from an empty ledger
            with contextlib.suppress(FileNotFoundError):
                (data_dir() / f"demo.sqlite{suffix}").unlink()
    hub = Hub(db=open_ledger(url))
    cfg = demo_config(houzz.url, tradegecko.url, opts.real_limits)
    hub.runner = cfg.runner
    apply_config(hub, cfg)
    app = create_app(hub, with_runner=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=opts.port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    started = time.monotonic()
    done = False
    summary: dict[str, Any] = {}
    alias_due: float | None = None
    try:
        while True:
            await asyncio.sleep(0.5)
            statuses, refs, errors = ledger_view(hub)
            await asyncio.to_thread(scenario.act_as_warehouse, refs)
            scenario.act_as_buyer(statuses)
            if scenario.unknown_sku_order and statuses.get(scenario.unknown_sku_order) == "error" \
                    and not scenario.alias_added:
                alias_due = alias_due or time.monotonic() + 3  # let the error be seen first
                if time.monotonic() >= alias_due:
                    add_alias(hub, "demo", LEGACY_SKU, LEGACY_TARGET)
                    scenario.alias_added = True
                    scenario.log.append(f"merchant added alias {LEGACY_SKU} -> {LEGACY_TARGET}")
            done = len(statuses) >= len(scenario.order_ids) and all(
                scenario.expected_final(statuses.get(o, ""), o) for o in scenario.order_ids)
            summary = _summary(scenario, statuses, errors, time.monotonic() - started, opts.port)
            report(summary)
            if (opts.until_done and done) or (time.monotonic() - started > opts.timeout and opts.until_done):
                break
            if server.should_exit:
                break
    finally:
        server.should_exit = True
        await serving
    summary.update(await asyncio.to_thread(scenario.duplicates))
    summary["finished"] = done
    return summary


def _summary(scenario: Scenario, statuses: dict[str, str], errors: dict[str, str], elapsed: float,
             port: int) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for s in statuses.values():
        by_status[s] = by_status.get(s, 0) + 1
    return {
        "orders_seeded": len(scenario.order_ids),
        "orders_in_ledger": len(statuses),
        "by_status": by_status,
        "confirmed": by_status.get("confirmed", 0),
        "canceled": by_status.get("canceled", 0),
        "errors": {k: v for k, v in errors.items() if statuses.get(k) == "error"},
        "events": scenario.log[-8:],
        "elapsed_seconds": round(elapsed, 1),
        "dashboard": f"http://127.0.0.1:{port}",
    }
