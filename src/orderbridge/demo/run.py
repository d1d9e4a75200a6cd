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
from orderbridge.demo.sandboxes import SandboxProcess, start_all
from orderbridge.demo.scenario import HOUZZ_ACCOUNT, LEGACY_SKU, LEGACY_TARGET, TG_TOKEN, Scenario
from orderbridge.demo.wix_holded import WixHolded
from orderbridge.engine.hub import Hub
from orderbridge.engine.operations import add_alias
from orderbridge.engine.provision import apply_config
from orderbridge.engine.users import create_user
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
    serve: bool = False  # keep the dashboard up after --until-done, until interrupted
    admin_password: str = ""  # the dashboard's `admin` user is created with it


DEMO_USER = "admin"
FAST = {"download": 1, "workflow": 0.5, "deliver": 0.5, "shipments": 1, "upload": 0.5, "cancels": 2,
        "inventory": 5, "stock": 5}


def demo_config(houzz_url: str, tg_url: str, real_limits: bool, extra: WixHolded | None = None,
                wix_url: str = "", holded_url: str = "") -> AppConfig:
    fast = FAST
    relaxed = None if real_limits else {"calls": 50, "period": 1}
    cfg: dict[str, Any] = {
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
    }
    if extra is not None:
        cfg["connections"] += extra.connections(wix_url, holded_url, relaxed, FAST)
        cfg["routes"].append(extra.route)
    return AppConfig.model_validate(cfg)


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
    wix_opts: dict[str, Any] = {"demo_site": False, "webhook_retry_delays": [0.2, 1.0]}
    holded_opts: dict[str, Any] = {"accounts": []}
    if not opts.real_limits:
        wix_opts["rate_limit"] = {"enabled": False}
        holded_opts["rate_limit_enabled"] = False
    boxes = [SandboxProcess("houzz", sandbox_opts["houzz"]), SandboxProcess("tradegecko", sandbox_opts["tradegecko"]),
             SandboxProcess("wix", wix_opts), SandboxProcess("holded", holded_opts)]
    try:
        await asyncio.to_thread(start_all, boxes)
        return await _run(opts, boxes[0], boxes[1], boxes[2], boxes[3], report)
    finally:
        for box in boxes:
            box.stop()


async def _run(opts: DemoOptions, houzz: SandboxProcess, tradegecko: SandboxProcess, wix: SandboxProcess,
               holded: SandboxProcess, report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    scenario = Scenario(houzz=houzz, tradegecko=tradegecko, orders=opts.orders)
    books = WixHolded(wix=wix, holded=holded, orders=max(3, opts.orders // 4))
    await asyncio.to_thread(scenario.seed_world)
    await asyncio.to_thread(books.seed_world, f"http://127.0.0.1:{opts.port}/webhooks/demo-wix")
    url = opts.database_url or f"sqlite:///{data_dir() / 'demo.sqlite'}"
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):  # every demo starts from an empty ledger
            with contextlib.suppress(FileNotFoundError):
                (data_dir() / f"demo.sqlite{suffix}").unlink()
    hub = Hub(db=open_ledger(url))
    cfg = demo_config(houzz.url, tradegecko.url, opts.real_limits, books, wix.url, holded.url)
    hub.runner = cfg.runner
    apply_config(hub, cfg)
    if opts.admin_password:
        create_user(hub.db, DEMO_USER, opts.admin_password)
    app = create_app(hub, with_runner=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=opts.port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.05)
    await asyncio.to_thread(books.place_orders)
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
            await asyncio.to_thread(books.act_as_holded_user)
            if scenario.unknown_sku_order and statuses.get(scenario.unknown_sku_order) == "error" \
                    and not scenario.alias_added:
                alias_due = alias_due or time.monotonic() + 3  # let the error be seen first
                if time.monotonic() >= alias_due:
                    add_alias(hub, "demo", LEGACY_SKU, LEGACY_TARGET)
                    scenario.alias_added = True
                    scenario.log.append(f"merchant added alias {LEGACY_SKU} -> {LEGACY_TARGET}")
            everyone = [*scenario.order_ids, *books.order_ids]
            done = all(scenario.expected_final(statuses.get(o, ""), o) for o in scenario.order_ids) and all(
                books.expected_final(statuses.get(o, ""), o) for o in books.order_ids)
            summary = _summary(scenario, books, statuses, errors, time.monotonic() - started, opts.port)
            summary["orders_seeded"] = len(everyone)
            report(summary)
            finished = (opts.until_done and done) or (time.monotonic() - started > opts.timeout and opts.until_done)
            if finished and not opts.serve:
                break
            if server.should_exit:
                break
    finally:
        server.should_exit = True
        await serving
    summary.update(await asyncio.to_thread(scenario.duplicates))
    with hub.db.connect() as conn:
        by_webhook = conn.execute(sa.select(sa.func.count()).select_from(t.order_events).where(
            t.order_events.c.kind == "downloaded", t.order_events.c.message.like("%(webhook)"))).scalar_one()
    summary["wix_holded"] = {"orders": len(books.order_ids), "arrived_by_webhook": by_webhook,
                             "confirmed": sum(1 for o in books.order_ids if statuses.get(o) == "confirmed"),
                             **await asyncio.to_thread(books.duplicates)}
    summary["finished"] = done
    return summary


def _summary(scenario: Scenario, books: WixHolded, statuses: dict[str, str], errors: dict[str, str],
             elapsed: float, port: int) -> dict[str, Any]:
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
        "events": [*scenario.log[-6:], *books.log[-3:]],
        "elapsed_seconds": round(elapsed, 1),
        "dashboard": f"http://127.0.0.1:{port}/dashboard/",
        "dashboard_user": DEMO_USER,
    }
