"""The Houzz Seller connector driven by the real engine: download, Process/Charge, delivery to the
test WMS, one Ship confirmation, inventory and cancellations, over HTTP against both sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from houzz_support import Admin, ScaledBudget, creds_of
from tests.conftest import ShopAdmin
from tests.support import shop
from tests.support.engine import sync

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger


@pytest.fixture
def wms() -> Iterator[ShopAdmin]:
    with ServedApp(shop.create_app()) as served:
        yield ShopAdmin(served.url)


def make_hub(tmp_path: Any, houzz_url: str, account: dict[str, str], wms_url: str,
             settings: dict[str, Any]) -> Hub:
    cfg = AppConfig.model_validate({
        "runner": {"concurrency": 4, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}],
        "connections": [
            {"name": "houzz", "merchant": "acme", "type": "houzz_seller", "base_url": houzz_url, "test_mode": True,
             "credentials": creds_of(account), "settings": settings},
            {"name": "wms", "merchant": "acme", "type": "test_wms", "base_url": wms_url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}, "settings": {}},
        ],
        "routes": [{"source": "houzz", "backend": "wms"}],
    })
    hub = Hub(db=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}"), runner=cfg.runner, http_timeout=5,
              budget=ScaledBudget(200))
    apply_config(hub, cfg)
    return hub



def orders(hub: Hub) -> dict[str, Any]:
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status, t.orders.c.cust_ref)).all()
    return {r.external_id: r for r in rows}


def test_orders_flow_through_the_engine(tmp_path: Any, url: str, admin: Admin, wms: ShopAdmin) -> None:
    acc = admin.account()
    a = acc["acct"]
    admin.listings(a, "SOFA-1", "LAMP-2")
    wms.stock({"SOFA-1": 7, "LAMP-2": 0})
    first = admin.order(a, OrderItems=[{"SKU": "SOFA-1", "Quantity": "1", "Price": "10"},
                                       {"SKU": "LAMP-2", "Quantity": "1", "Price": "5"}])
    declined = admin.order(a, Status="InProduction")
    admin.fail_charge(a, declined, "Card declined")
    shipped_before = admin.order(a, Status="Shipped")
    hub = make_hub(tmp_path, url, acc, wms.url, {"tracking_numbers": "joined"})

    sync(hub)
    held = orders(hub)
    assert held[first].status == "at_wms" and admin.status(a, first) == "Charged"
    assert held[declined].status == "error" and shipped_before not in held
    assert len(wms.state()["wms"]["creates"]) == 1
    assert [x["action"] for x in admin.actions(a) if x["OrderId"] == first] == ["Process", "Charge"]
    # 7 in stock minus the 2 of the declined order, held back until it is delivered.
    assert admin.listing(a, "SOFA-1")["Quantity"] == "5" and admin.listing(a, "LAMP-2")["Quantity"] == "0"

    ref = held[first].cust_ref
    wms.ship(ref, [("SOFA-1", 1)], carrier="UPS Ground", tracking="1ZFIRST")
    sync(hub)
    assert admin.actions(a, "Ship") == []  # waits until every line has shipped
    wms.ship(ref, [("LAMP-2", 1)], carrier="FedEx", tracking="7700SECOND")
    sync(hub)
    sync(hub)
    [ship] = admin.actions(a, "Ship")
    assert (ship["ShippingMethod"], ship["TrackingNumber"]) == ("UPS", "1ZFIRST,7700SECOND")
    assert orders(hub)[first].status == "confirmed"

    late = admin.order(a)
    admin.cancel(a, late, by="buyer")
    sync(hub)
    with hub.db.connect() as conn:
        skipped = dict(conn.execute(sa.select(t.skipped_orders.c.external_id, t.skipped_orders.c.reason)).all())
    assert "cancelled" in skipped[late] and "already shipped" in skipped[shipped_before]
    assert len(wms.state()["wms"]["creates"]) == 1


def test_one_workflow_run_takes_each_order_through_all_its_steps(tmp_path: Any, url: str, admin: Admin,
                                                                wms: ShopAdmin) -> None:
    import asyncio

    from orderbridge.engine.jobs import run_job

    acc = admin.account()
    a = acc["acct"]
    placed = [admin.order(a) for _ in range(5)]
    hub = make_hub(tmp_path, url, acc, wms.url, {})

    async def go() -> None:
        with hub.db.connect() as conn:
            row = next(r for r in hub.connections(conn) if r.name == "houzz")
        assert (await run_job(hub, row, "download")).status == "ok"
        run = await run_job(hub, row, "workflow")
        assert run.status == "ok" and run.processed == 10, run  # Process and Charge of each order
        await hub.aclose()

    asyncio.run(go())
    # Charged in that one run: the order's Charge did not wait for a later run.
    assert [admin.status(a, oid) for oid in placed] == ["Charged"] * 5


def test_an_order_cancelled_between_its_steps_goes_no_further(tmp_path: Any, url: str, admin: Admin,
                                                              wms: ShopAdmin) -> None:
    """The workflow run holds an order's steps as read with the order; a cancellation recorded
    while its Process call is under way still stops its Charge, and its delivery is not released."""
    import asyncio

    from orderbridge.domain.models import Cancellation
    from orderbridge.engine.cancels import record_cancellation
    from orderbridge.engine.jobs import run_job

    acc = admin.account()
    a = acc["acct"]
    cancelled, other = admin.order(a), admin.order(a)
    hub = make_hub(tmp_path, url, acc, wms.url, {})

    async def go() -> None:
        with hub.db.connect() as conn:
            row = next(r for r in hub.connections(conn) if r.name == "houzz")
        assert (await run_job(hub, row, "download")).status == "ok"
        src = hub.source(row)
        run_step = src.run_workflow_step

        async def step(name: str, order: Any, *, retry: bool = False) -> str:
            note = await run_step(name, order, retry=retry)
            if name == "process" and order.external_id == cancelled:
                with hub.db.begin() as conn:
                    record_cancellation(conn, hub, row, Cancellation(external_id=cancelled, reason="buyer"))
            return note

        src.run_workflow_step = step  # type: ignore[method-assign]
        run = await run_job(hub, row, "workflow")
        assert run.status == "ok" and run.processed == 3, run  # Process of both, Charge of the other
        await hub.aclose()

    asyncio.run(go())
    assert (admin.status(a, cancelled), admin.status(a, other)) == ("InProduction", "Charged")
    with hub.db.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.external_id, t.workflow_steps.c.name, t.workflow_steps.c.state,
                                      t.deliveries.c.state.label("delivery"))
                            .join(t.workflow_steps, t.workflow_steps.c.order_id == t.orders.c.id)
                            .join(t.deliveries, t.deliveries.c.order_id == t.orders.c.id)).all()
    assert {(r.external_id, r.name): (r.state, r.delivery) for r in rows} == {
        (cancelled, "process"): ("done", "canceled"), (cancelled, "charge"): ("canceled", "canceled"),
        (other, "process"): ("done", "pending"), (other, "charge"): ("done", "pending")}


def _downloads(hub: Hub, *between: Any) -> None:
    """Run the download job once, then once after each of ``between`` (changes at Houzz), in one
    event loop: the connector, and what it remembers between polls, lives across the runs."""
    import asyncio

    from orderbridge.engine.jobs import run_job

    async def go() -> None:
        try:
            with hub.db.connect() as conn:
                row = hub.connection(conn, "houzz")
            assert (await run_job(hub, row, "download")).status == "ok"
            for change in between:
                change(hub.source(row))
                assert (await run_job(hub, row, "download")).status == "ok"
        finally:
            await hub.aclose()

    asyncio.run(go())


def _skipped(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return dict(conn.execute(sa.select(t.skipped_orders.c.external_id, t.skipped_orders.c.reason)).all())


def test_a_poll_reads_the_whole_look_back_window_once_a_quarter_of_it_has_passed(
        tmp_path: Any, url: str, admin: Admin, wms: ShopAdmin) -> None:
    from datetime import UTC, datetime, timedelta

    from orderbridge.engine.context import FULL_LOOK_BACK_EVERY

    acc = admin.account()
    a = acc["acct"]
    hub = make_hub(tmp_path, url, acc, wms.url, {})
    sync(hub, "houzz")  # the first poll: the cursor is set
    # An order Houzz shows late: placed two minutes ago, inside the 600 s look-back but older than
    # the few seconds a poll re-reads between full reads. (Shipped: read, then skipped as such.)
    placed = (datetime.now(UTC) - timedelta(seconds=120)).strftime("%Y-%m-%d %H:%M:%S")
    late = admin.order(a, Created=placed, Status="Shipped")
    sync(hub, "houzz")
    assert late not in _skipped(hub)  # not read yet: the last full read was a moment ago

    full_reads = next(paced for key, paced in hub.memo["full_look_back"].items() if key[1] == "download")
    ended, took = full_reads.last
    full_reads.last = (ended - FULL_LOOK_BACK_EVERY * 600 - 1, took)  # a quarter of the look-back later
    sync(hub, "houzz")
    assert "already shipped" in _skipped(hub)[late]


def test_orders_charged_later_are_found_by_status_every_status_recheck_period(
        tmp_path: Any, url: str, admin: Admin, wms: ShopAdmin) -> None:
    from datetime import UTC, datetime, timedelta

    acc = admin.account()
    a = acc["acct"]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    older = admin.order(a, Created=yesterday)  # New: not loaded until it is charged
    hub = make_hub(tmp_path, url, acc, wms.url, {"order_status": "Charged", "status_recheck_seconds": 60})
    seen: list[bool] = []

    def charge(_: Any) -> None:
        admin.set_status(a, older, "Charged")  # at Houzz; older than any poll's window

    def period_passed(houzz: Any) -> None:
        seen.append(older in orders(hub))  # after a poll within the period
        ended, took = houzz._status_reread.last
        houzz._status_reread.last = (ended - 61, took)

    # Polls: the first read; one that re-reads by status; one within the period after the order
    # was charged (no re-read by status); one after the period.
    _downloads(hub, lambda _: None, charge, period_passed)
    assert seen == [False]
    assert older in orders(hub)


def test_the_recheck_of_every_recent_order_for_cancellations_is_kept_across_restarts(
        tmp_path: Any, url: str, admin: Admin, wms: ShopAdmin) -> None:
    """The slow safety net (every recent order re-read for cancellations) runs once per
    cancel_recheck_minutes, not at every start of the hub (``run --once`` from cron starts it each
    time, nor at the first run, which holds no order older than the download's first read); the
    quick read of the cancelled status runs every time."""
    from datetime import UTC, datetime, timedelta
    from urllib.parse import parse_qs

    from orderbridge.engine.cancels import FULL_READ
    from orderbridge.engine.context import write_cursor

    acc = admin.account()
    a = acc["acct"]
    oid = admin.order(a)
    hub = make_hub(tmp_path, url, acc, wms.url, {"cancel_recheck_minutes": 60})

    def full_reads(since: int) -> int:
        """getOrders of every status from days back: the first download's read, or the re-check."""
        days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
        queries = [parse_qs(c["query"]) for c in admin.calls(since) if "getOrders" in c["query"]]
        return sum(q.get("Status") == ["All"] and q.get("From", ["9"])[0][:10] < days_ago for q in queries)

    seq = admin.last_seq()
    sync(hub, "houzz")  # the first start: the first download reads everything recent; no re-check yet
    assert full_reads(seq) == 1
    admin.cancel(a, oid)
    seq = admin.last_seq()
    sync(hub, "houzz")  # started again (new connectors): the re-check is not due yet
    assert full_reads(seq) == 0
    with hub.db.connect() as conn:
        assert conn.execute(sa.select(t.orders.c.sending_canceled).where(t.orders.c.external_id == oid)).scalar()
        houzz_id = conn.execute(sa.select(t.connections.c.id).where(t.connections.c.name == "houzz")).scalar_one()
    with hub.db.begin() as conn:
        write_cursor(conn, houzz_id, FULL_READ, datetime.now(UTC) - timedelta(minutes=61))
    seq = admin.last_seq()
    sync(hub, "houzz")  # an hour since the last: due again
    assert full_reads(seq) == 1
