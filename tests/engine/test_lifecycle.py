"""The engine over a real ledger and the test shop pair, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from orderbridge.engine.hub import Hub
from orderbridge.engine.intake import handle_webhook
from orderbridge.engine.operations import add_alias
from orderbridge.ledger import schema as t
from orderbridge.runners.embedded import sync_once
from tests.conftest import ShopAdmin, shop_config
from tests.support import shop
from tests.support.engine import sync


def statuses(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status)).all())


def creates(admin: ShopAdmin) -> list[str]:
    return list(admin.state()["wms"]["creates"])


def test_every_order_delivered_exactly_once_over_repeated_runs(make_hub: Any, admin: ShopAdmin) -> None:
    for i in range(12):
        admin.order(f"A{i}")
    hub = make_hub(shop_config(admin.url))
    for _ in range(3):
        sync(hub)
    assert sorted(creates(admin)) == sorted(f"PO-A{i}" for i in range(12))
    assert set(statuses(hub).values()) == {"at_wms"}


def test_full_lifecycle_ship_confirm_inventory(make_hub: Any, admin: ShopAdmin) -> None:
    admin.stock({"SKU-1": 10, "SKU-2": 3})
    admin.order("B1", [("SKU-1", 2), ("SKU-2", 1)])
    hub = make_hub(shop_config(admin.url, source={"inventory_floor": 3}))
    sync(hub)
    # Partial shipment: order-level confirmation waits for the rest.
    admin.ship("PO-B1", [("SKU-1", 2)], tracking="1ZAAA")
    sync(hub)
    assert statuses(hub)["B1"] == "partial"
    assert admin.state()["shop"]["confirmations"] == []
    admin.ship("PO-B1", [("SKU-2", 1)], tracking="1ZBBB")
    sync(hub)
    sync(hub)
    state = admin.state()["shop"]
    assert state["confirmations"] == [{"order": "B1", "tracking": ["1ZAAA", "1ZBBB"]}]
    assert statuses(hub)["B1"] == "confirmed"
    # Stock: SKU-1 10 available -> 10 pushed; SKU-2 3 available, floor 3 -> 3; both changes only once.
    assert state["inventory"] == {"SKU-1": 10, "SKU-2": 3}
    admin.stock({"SKU-2": 2})
    sync(hub)
    assert admin.state()["shop"]["inventory"]["SKU-2"] == 0  # below the floor: push 0



def test_shipments_read_together_complete_an_order_once(make_hub: Any, admin: ShopAdmin) -> None:
    """Two partial shipments picked up in one page: the second completes the order (their units
    are added up without the first having been committed yet), and one confirmation goes out. A
    third order, shipped in full at once, is confirmed beside them."""
    admin.order("P1", [("SKU-1", 2), ("SKU-2", 1)])
    admin.order("P2", [("SKU-1", 1)])
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    admin.ship("PO-P1", [("SKU-1", 2)], tracking="1ZP1A")
    admin.ship("PO-P1", [("SKU-2", 1)], tracking="1ZP1B")
    admin.ship("PO-P2", [("SKU-1", 1)], tracking="1ZP2")
    sync(hub)
    sync(hub)
    confirmations = admin.state()["shop"]["confirmations"]
    assert sorted(confirmations, key=lambda c: c["order"]) == [
        {"order": "P1", "tracking": ["1ZP1A", "1ZP1B"]}, {"order": "P2", "tracking": ["1ZP2"]}]
    assert statuses(hub) == {"P1": "confirmed", "P2": "confirmed"}
    with hub.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.confirmations)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(t.shipments)).scalar_one() == 3


def test_confirmed_at_the_first_of_shipments_read_together(make_hub: Any, admin: ShopAdmin) -> None:
    """A source that confirms the whole order at its first shipment: two shipments picked up in
    one page plan one confirmation, made with the first (the second finds it planned)."""
    admin.order("F1", [("SKU-1", 2), ("SKU-2", 1)])
    hub = make_hub(shop_config(admin.url, source={"confirm_at_first": True}))
    sync(hub)
    admin.ship("PO-F1", [("SKU-1", 2)], tracking="1ZF1A")
    admin.ship("PO-F1", [("SKU-2", 1)], tracking="1ZF1B")
    sync(hub)
    sync(hub)
    assert len(admin.state()["shop"]["confirmations"]) == 1
    assert statuses(hub) == {"F1": "confirmed"}
    with hub.db.connect() as conn:
        assert conn.execute(sa.select(t.confirmations.c.key, t.confirmations.c.state)).all() == [("order", "done")]

def test_undelivered_orders_are_subtracted_from_inventory(make_hub: Any, admin: ShopAdmin) -> None:
    admin.stock({"SKU-1": 10})
    admin.order("U1", [("GHOST", 1)])  # stuck in error: unknown SKU
    admin.order("U2", [("SKU-1", 4)], paid=True)
    hub = make_hub(shop_config(admin.url, route={"hold_new_orders": True}))
    sync(hub)
    assert admin.state()["shop"]["inventory"]["SKU-1"] == 6


def test_a_costly_undelivered_sum_is_shared_for_a_bounded_while(make_hub: Any, admin: ShopAdmin,
                                                                 monkeypatch: Any) -> None:
    from orderbridge.engine import inventory

    admin.stock({"SKU-1": 10})
    admin.order("M1", [("SKU-1", 4)])
    hub = make_hub(shop_config(admin.url, route={"hold_new_orders": True}))
    sync(hub)
    with hub.db.connect() as conn:
        source, backend = (hub.connection(conn, name) for name in ("shop", "wms"))

    def shared() -> int:
        with hub.db.connect() as conn:
            return inventory.undelivered_units_shared(hub, conn, backend.id, source.merchant_id).get("SKU-1", 0)

    assert shared() == 4
    admin.order("M2", [("SKU-1", 3)])
    sync(hub)  # a second held order
    # A quick sum is never reused:
    assert shared() == 7
    # Nor a slow one over a small backlog (every sum counts as slow here)...
    monkeypatch.setattr(inventory, "MEMO_FROM", 0.0)
    monkeypatch.setattr(inventory, "MEMO_SHARE", 1e6)
    hub.memo.clear()
    assert shared() == 7
    admin.order("M3", [("SKU-1", 2)])
    sync(hub)
    assert shared() == 9
    # ...but a costly one (a backlog: every sum counts as one here) is reused for MEMO_SHARE times
    # what it took...
    monkeypatch.setattr(inventory, "MEMO_FROM_UNITS", 0)
    hub.memo.clear()
    assert shared() == 9
    admin.order("M4", [("SKU-1", 1)])
    sync(hub)
    assert shared() == 9
    # ...and summed afresh after it.
    monkeypatch.setattr(inventory, "MEMO_SHARE", 0.0)
    assert shared() == 10


def test_unknown_sku_errors_only_that_order_then_alias_delivers_it(make_hub: Any, admin: ShopAdmin) -> None:
    admin.stock({"SKU-1": 5, "REAL-9": 5})
    admin.order("C1")
    admin.order("C2", [("OLD-9", 1)])
    admin.order("C3")
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    st = statuses(hub)
    assert st == {"C1": "at_wms", "C2": "error", "C3": "at_wms"}
    with hub.db.connect() as conn:
        msg = conn.execute(sa.select(t.orders.c.error_message).where(t.orders.c.external_id == "C2")).scalar()
    assert "OLD-9" in msg
    retried = add_alias(hub, "acme", "OLD-9", "REAL-9")
    assert len(retried) == 1
    sync(hub)
    assert statuses(hub)["C2"] == "at_wms"
    assert sorted(creates(admin)) == ["PO-C1", "PO-C2", "PO-C3"]
    wms_orders = admin.state()["wms"]["orders"].values()
    assert [ln["sku"] for o in wms_orders if o["ref"] == "PO-C2" for ln in o["lines"]] == ["REAL-9"]


def test_transient_failure_is_retried_and_succeeds(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("D1")
    admin.faults(next=[{"kind": "503", "count": 1}], match="/wms/orders")
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    assert statuses(hub)["D1"] == "new"
    with hub.db.connect() as conn:
        d = conn.execute(sa.select(t.deliveries)).one()
    assert d.state == "pending" and d.attempts == 1 and "503" in d.last_error
    time.sleep(max(0.0, (d.next_attempt_at.timestamp() - time.time())) + 0.1)
    sync(hub)
    assert statuses(hub)["D1"] == "at_wms"
    assert creates(admin) == ["PO-D1"]


def test_timeout_after_the_write_is_resolved_by_lookup(make_hub: Any, admin: ShopAdmin) -> None:
    """The backend created the order but the answer never came: the retry finds it, never re-creates."""
    admin.order("E1")
    admin.faults(next=[{"kind": "timeout_after", "count": 1}], match="/wms/orders", hang_seconds=8)
    hub = make_hub(shop_config(admin.url))
    hub.http_timeout = 1
    sync(hub)
    admin.faults()
    with hub.db.connect() as conn:
        d = conn.execute(sa.select(t.deliveries)).one()
    time.sleep(max(0.0, (d.next_attempt_at.timestamp() - time.time())) + 0.1)
    sync(hub)
    assert creates(admin) == ["PO-E1"]
    assert statuses(hub)["E1"] == "at_wms"


def test_webhook_and_poll_bring_the_same_order_once(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("F1")
    hub = make_hub(shop_config(admin.url))
    body = b'{"event": "evt-1", "order": "F1"}'

    async def both() -> list[Any]:
        try:
            return list(await asyncio.gather(
                handle_webhook(hub, "shop", {"x-shop-token": shop.TOKEN}, body),
                handle_webhook(hub, "shop", {"x-shop-token": shop.TOKEN}, body),
                sync_once(hub)))
        finally:
            await hub.aclose()

    results = asyncio.run(both())
    assert sorted(r["duplicate"] for r in results[:2]) == [False, True]
    sync(hub)
    assert creates(admin) == ["PO-F1"]
    with hub.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 1


def test_forged_webhook_is_rejected(make_hub: Any, admin: ShopAdmin) -> None:
    from orderbridge.connectors.errors import AuthError

    admin.order("F2")
    hub = make_hub(shop_config(admin.url))
    try:
        asyncio.run(handle_webhook(hub, "shop", {"x-shop-token": "forged"}, b'{"event": "e", "order": "F2"}'))
    except AuthError:
        pass
    else:
        raise AssertionError("a forged webhook was accepted")
    assert statuses(hub) == {}


def test_overlapping_cursor_window_rereads_without_duplicating(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("G1")
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    admin.order("G2")
    sync(hub)
    with hub.db.connect() as conn:
        cursor = conn.execute(sa.select(t.cursors.c.value).where(t.cursors.c.job == "download")).scalar()
        downloaded = conn.execute(sa.select(sa.func.count()).select_from(t.order_events).where(
            t.order_events.c.kind == "downloaded")).scalar()
    assert cursor is not None and cursor.tzinfo is not None  # UTC, explicit
    # G1 was inside the overlap window of the second run: read again, stored once.
    assert downloaded == 2
    assert sorted(creates(admin)) == ["PO-G1", "PO-G2"]


def test_cancellation_before_delivery_stops_the_send(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("H1")
    admin.order("H2")
    hub = make_hub(shop_config(admin.url, route={"hold_new_orders": True}))
    sync(hub)
    admin.cancel("H1")
    sync(hub)
    with hub.db.begin() as conn:
        conn.execute(t.orders.update().values(on_hold=False))
        conn.execute(t.deliveries.update().where(t.deliveries.c.state == "waiting").values(state="pending"))
    sync(hub)
    assert statuses(hub) == {"H1": "canceled", "H2": "at_wms"}
    assert creates(admin) == ["PO-H2"]


def test_cancellation_after_delivery_cancels_at_backend_or_is_too_late(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("I1")
    admin.order("I2")
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    admin.ship("PO-I2", [("SKU-1", 1)])
    sync(hub)
    admin.cancel("I1")
    admin.cancel("I2")
    sync(hub)
    assert statuses(hub) == {"I1": "canceled", "I2": "confirmed"}
    wms = {o["ref"]: o["status"] for o in admin.state()["wms"]["orders"].values()}
    assert wms == {"PO-I1": "canceled", "PO-I2": "shipped"}
    with hub.db.connect() as conn:
        alerts = [r.message for r in conn.execute(sa.select(t.alerts))]
    assert any("Too late" in m for m in alerts)


def test_failed_workflow_step_holds_delivery(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("J1", fail_step="charge")
    admin.order("J2")
    hub = make_hub(shop_config(admin.url, source={"charge_step": True}))
    sync(hub)
    assert statuses(hub) == {"J1": "error", "J2": "at_wms"}
    assert creates(admin) == ["PO-J2"]
    with hub.db.connect() as conn:
        msg = conn.execute(sa.select(t.orders.c.error_message).where(t.orders.c.external_id == "J1")).scalar()
    assert "card declined" in msg


def test_malformed_order_lands_in_error_and_others_flow(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("K1", lines=[("SKU-1", -5)])
    admin.order("K2")
    hub = make_hub(shop_config(admin.url))
    sync(hub)
    assert statuses(hub) == {"K1": "error", "K2": "at_wms"}


def test_cust_ref_is_shortened_deterministically_and_unique(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("L1", number="HOUZZ/1656-9927-9120-7805/AAA")
    admin.order("L2", number="HOUZZ/1656-9927-9120-7805/AAB")
    hub = make_hub(shop_config(admin.url, route={"cust_ref_max_length": 16}))
    sync(hub)
    refs = sorted(creates(admin))
    assert len(refs) == 2 and len(set(refs)) == 2
    assert all(len(r) <= 16 and r.replace("-", "").isalnum() for r in refs)


def test_transient_failures_park_with_an_alert_after_the_retry_window(make_hub: Any, admin: ShopAdmin) -> None:
    admin.order("P1")
    admin.faults(rates={"503": 1.0}, match="/wms/orders")
    cfg = shop_config(admin.url)
    cfg.runner.retry_for_hours = 1 / 3600  # one second
    hub = make_hub(cfg)
    sync(hub)
    time.sleep(1.2)
    with hub.db.begin() as conn:  # make the retry due now rather than after its backoff
        conn.execute(t.deliveries.update().values(next_attempt_at=None))
    sync(hub)
    with hub.db.connect() as conn:
        d = conn.execute(sa.select(t.deliveries)).one()
        alerts = [r.message for r in conn.execute(sa.select(t.alerts).where(t.alerts.c.kind == "parked"))]
    assert d.state == "parked" and "503" in d.last_error
    assert len(alerts) == 1 and "parked" in alerts[0]
    assert creates(admin) == []


def test_unmapped_ship_method_errors_until_mapped(make_hub: Any, admin: ShopAdmin) -> None:
    from orderbridge.engine.operations import add_ship_method

    admin.order("M1", ship="Next Day Air")
    hub = make_hub(shop_config(admin.url, route={"ship_method_unmapped": "error"}))
    sync(hub)
    with hub.db.connect() as conn:
        row = conn.execute(sa.select(t.orders.c.status, t.orders.c.error_message, t.orders.c.error_fix)).one()
    assert row.status == "error" and "Next Day Air" in row.error_message and "mapping" in row.error_fix
    assert add_ship_method(hub, "acme", "Next Day Air", "UPS", "1DA") != []
    sync(hub)
    assert statuses(hub) == {"M1": "at_wms"}
    assert [o["service"] for o in admin.state()["wms"]["orders"].values()] == ["1DA"]


def test_an_orders_next_step_is_claimed_with_the_previous_ones_result(
        make_hub: Any, admin: ShopAdmin, monkeypatch: pytest.MonkeyPatch) -> None:
    """An order's steps run one after the other in one go: the intent of the next is committed in
    the transaction that records the previous one done (claim, done and claim, done: three
    transactions for two steps). Each step runs once, in order, and the delivery follows."""
    from orderbridge.engine.group_commit import GroupCommit
    from orderbridge.engine.jobs import run_job

    admin.order("K1")
    admin.order("K2")
    hub = make_hub(shop_config(admin.url, source={"process_step": True, "charge_step": True}))
    with hub.db.connect() as conn:
        shop_row = hub.connection(conn, "shop")
    asyncio.run(run_job(hub, shop_row, "download"))
    writes: list[str] = []
    real_run = GroupCommit.run

    async def counted(self: GroupCommit, fn: Any) -> Any:
        writes.append(fn.__qualname__.rpartition(".")[2])
        return await real_run(self, fn)

    monkeypatch.setattr(GroupCommit, "run", counted)
    result = asyncio.run(run_job(hub, shop_row, "workflow"))
    monkeypatch.undo()
    assert result.status == "ok" and result.processed == 4
    assert writes.count("claim") == 2 and writes.count("done") == 4, writes
    done = admin.state()["shop"]["workflow"]
    for oid in ("K1", "K2"):
        assert [s["step"] for s in done if s["order"] == oid] == ["process", "charge"]
    with hub.db.connect() as conn:
        assert set(conn.execute(sa.select(t.workflow_steps.c.state)).scalars()) == {"done"}
    sync(hub)
    assert statuses(hub) == {"K1": "at_wms", "K2": "at_wms"}
    assert sorted(creates(admin)) == ["PO-K1", "PO-K2"]
