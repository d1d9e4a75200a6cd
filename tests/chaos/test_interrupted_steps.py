"""A run killed after recording a step's intent leaves it in_flight: the next run must resume it."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from orderbridge.engine.jobs import run_job
from orderbridge.ledger import schema as t
from tests.conftest import ShopAdmin, shop_config
from tests.support.engine import sync


def test_a_workflow_step_left_in_flight_by_a_dead_run_is_resumed(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("W1")
    hub = make_hub(shop_config(admin.url, source={"charge_step": True}))
    with hub.db.connect() as conn:
        shop_row = hub.connection(conn, "shop")
    asyncio.run(run_job(hub, shop_row, "download"))
    w = t.workflow_steps
    with hub.db.begin() as conn:  # what a SIGKILL between the intent and the result leaves behind
        conn.execute(w.update().values(state="in_flight", attempts=1))
    sync(hub)
    with hub.db.connect() as conn:
        assert conn.execute(sa.select(w.c.state)).scalars().all() == ["done"]
        status = conn.execute(sa.select(t.orders.c.status)).scalar_one()
    assert status == "at_wms"
    assert admin.state()["wms"]["creates"] == ["PO-W1"]
