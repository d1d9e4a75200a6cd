"""The embedded runner on its schedules, its health, graceful shutdown; credentials at rest."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.ledger import schema as t
from orderbridge.runners.embedded import EmbeddedRunner
from orderbridge.web.app import create_app
from tests.conftest import ShopAdmin, shop_config
from tests.support import shop


def test_runner_moves_orders_on_schedule_and_reports_health(make_hub: Any, admin: ShopAdmin) -> None:
    hub = make_hub(shop_config(admin.url))
    runner = EmbeddedRunner(hub, tick=0.05)

    async def scenario() -> None:
        task = asyncio.create_task(runner.run_forever())
        await asyncio.sleep(0.5)
        admin.order("R1")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if admin.state()["wms"]["creates"] == ["PO-R1"]:
                break
            await asyncio.sleep(0.1)
        runner.stop()
        await asyncio.wait_for(task, 10)  # graceful shutdown finishes
        await hub.aclose()

    asyncio.run(scenario())
    assert admin.state()["wms"]["creates"] == ["PO-R1"]
    with hub.db.connect() as conn:
        health = {r.job: r for r in conn.execute(sa.select(t.job_state))}
    assert {"download", "deliver", "shipments", "upload", "stock", "inventory", "cancels"} <= set(health)
    assert all(r.lease_owner is None for r in health.values())  # every lease released on shutdown
    assert health["deliver"].last_status == "ok" and health["deliver"].next_run_at is not None



def test_runner_wakes_the_job_that_has_new_work_before_its_period(make_hub: Any, admin: ShopAdmin) -> None:
    """Delivery, upload and inventory push each wait an hour between runs here: an order still goes
    through at once, because the job that made the work wakes the next one."""
    cfg = shop_config(admin.url)
    hour = 3600.0
    for c in cfg.connections:
        c.schedule = ({"download": 0.2, "upload": hour, "inventory": hour, "workflow": 0.2, "cancels": hour}
                      if c.name == "shop" else {"deliver": hour, "shipments": 0.2, "stock": 0.2})
    hub = make_hub(cfg)
    runner = EmbeddedRunner(hub, tick=0.05)

    async def until(what: str, check: Any) -> float:
        began = time.monotonic()
        while time.monotonic() - began < 10:
            if check(admin.state()):
                return time.monotonic() - began
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what} did not happen within 10 s; state: {admin.state()}")

    async def scenario() -> list[float]:
        task = asyncio.create_task(runner.run_forever())
        try:
            await asyncio.sleep(1.0)  # every job has had its first run: the next ones are an hour away
            admin.order("R1")
            took = [await until("the delivery", lambda s: s["wms"]["creates"] == ["PO-R1"])]
            admin.ship("PO-R1")
            took.append(await until("the confirmation", lambda s: len(s["shop"]["confirmations"]) == 1))
            admin.stock({"SKU-1": 7})
            took.append(await until("the inventory push", lambda s: s["shop"]["inventory"].get("SKU-1") == 7))
            return took
        finally:
            runner.stop()
            await asyncio.wait_for(task, 10)
            await hub.aclose()

    took = asyncio.run(scenario())
    assert all(t < 5 for t in took), took
    assert hub.waker is None  # the runner's waker is the hub's only while it runs

def test_credentials_are_encrypted_at_rest_with_a_private_key_file(make_hub: Any, admin: ShopAdmin) -> None:
    hub = make_hub(shop_config(admin.url))
    with hub.db.connect() as conn:
        stored = conn.execute(sa.select(t.connections.c.credentials_enc)).scalars().all()
    assert stored and all(shop.TOKEN not in s for s in stored)
    key_file = Path(os.environ["ORDERBRIDGE_DATA_DIR"]) / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert hub.box().open(stored[0]) == {"token": shop.TOKEN}


def test_web_health_and_webhook_intake(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("W1")
    hub = make_hub(shop_config(admin.url))
    with ServedApp(create_app(hub, with_runner=False)) as web:
        assert httpx.get(web.url + "/health").json()["ok"] is True
        url = web.url + "/webhooks/shop"
        body = b'{"event": "e-9", "order": "W1"}'
        first = httpx.post(url, content=body, headers={"x-shop-token": shop.TOKEN})
        again = httpx.post(url, content=body, headers={"x-shop-token": shop.TOKEN})
        forged = httpx.post(url, content=b'{"event": "e-10", "order": "W1"}', headers={"x-shop-token": "nope"})
    assert first.json()["orders"] == {"W1": "new"}
    assert again.json()["duplicate"] is True
    assert forged.status_code == 401
