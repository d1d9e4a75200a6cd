"""Houzz -> TradeGecko end to end, through the engine and both sandboxes over real HTTP: partial and
multi-package shipments, an unknown SKU fixed by an alias, cancellations before and after delivery, an
expired OAuth token refreshed mid-run, the TradeGecko rate limit, and injected faults on order creation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from orderbridge.connectors.tradegecko import mapping as tg_mapping
from orderbridge.demo.sandboxes import SandboxProcess
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.engine.hub import Hub
from orderbridge.engine.operations import add_alias
from orderbridge.ledger import schema as t
from orderbridge.runners.embedded import sync_once
from tests.engine.houzz_tg_support import ACCT, houzz_to_tg, order, statuses
from tests.support.engine import sync


def wait_due(hub: Hub) -> None:
    """Sleep until every delivery scheduled for a retry is due."""
    with hub.db.connect() as conn:
        nxt = conn.execute(sa.select(sa.func.max(t.deliveries.c.next_attempt_at)).where(
            t.deliveries.c.state == "pending")).scalar()
    if nxt is not None:
        time.sleep(max(0.0, nxt.timestamp() - time.time()) + 0.2)


def test_houzz_to_tradegecko_end_to_end(make_hub: Any, sandboxes: tuple[SandboxProcess, SandboxProcess],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    houzz, tg = sandboxes
    with houzz.admin() as h, tg.admin() as g:
        h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
        h.post(f"/accounts/{ACCT}/listings", json=[{"SKU": s} for s in ("A-1", "B-2", "OLD-3")]).raise_for_status()
        made = g.post("/accounts", json={"name": "Shop", "oauth": {"expires_in": 3600}}).json()
        tg_acct, oauth = made["account"]["id"], made["oauth"]
        g.post(f"/accounts/{tg_acct}/variants", json=[
            {"sku": "A-1", "name": "A", "stock": {"Main Warehouse": 100}},
            {"sku": "B-2", "name": "B", "stock": {"Main Warehouse": 100}},
            {"sku": "NEW-3", "name": "C", "stock": {"Main Warehouse": 100}}]).raise_for_status()
        plain = [order(h, [("A-1", 1)]) for _ in range(6)]
        two_lines = order(h, [("A-1", 2), ("B-2", 1)])
        legacy = order(h, [("OLD-3", 1)])
        early_cancel = order(h, [("B-2", 1)])
        late_cancel = order(h, [("B-2", 1)])
    fast = {"calls": 9, "period": 1}  # just under the sandbox's 40 per 4 s
    cfg = houzz_to_tg(houzz.url, tg.url, oauth, concurrency=4, houzz_rate={"calls": 50, "period": 1}, tg_rate=fast)
    hub = make_hub(cfg)
    hub.http_timeout = 2

    # Orders come in and are processed and charged; before any delivery, one is cancelled by Houzz.
    sync(hub, "houzz")
    with houzz.admin() as h:
        h.post(f"/accounts/{ACCT}/orders/{early_cancel}/cancel", json={"by": "houzz", "code": 6}).raise_for_status()
    sync(hub, "houzz")
    assert statuses(hub)[early_cancel] == "canceled"

    # The access token expires and creates meet faults: 503s, a timeout after the write, a bad body.
    with tg.admin() as g:
        g.post("/tokens/expire", json={"access_token": oauth["access_token"]}).raise_for_status()
        g.post("/faults", json={"match": "/orders", "next": [
            {"kind": "503", "count": 1}, {"kind": "timeout_after", "count": 1}, {"kind": "malformed", "count": 1}],
            "hang_seconds": 4}).raise_for_status()
    for _ in range(6):
        sync(hub)
        wait_due(hub)
    st = statuses(hub)
    assert st[legacy] == "error"
    assert all(st[o] == "at_wms" for o in [*plain, two_lines, late_cancel]), st
    with hub.db.connect() as conn:
        message = conn.execute(sa.select(t.orders.c.error_message).where(t.orders.c.external_id == legacy)).scalar()
        creds = hub.box().open(conn.execute(sa.select(t.connections.c.credentials_enc).where(
            t.connections.c.name == "tg")).scalar())
    assert "OLD-3" in message
    assert creds["refresh_token"] != oauth["refresh_token"]  # rotated, and kept (encrypted)

    # The merchant adds the alias; the buyer cancels a delivered order; the warehouse ships.
    add_alias(hub, "m", "OLD-3", "NEW-3")
    with houzz.admin() as h:
        h.post(f"/accounts/{ACCT}/orders/{late_cancel}/cancel", json={"by": "houzz", "code": 6}).raise_for_status()
    sync(hub)
    with tg.admin() as g:
        refs = {o["reference_number"]: o for o in g.get(f"/accounts/{tg_acct}/orders").json()}
    with hub.db.connect() as conn:
        ref_of = dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.cust_ref)).all())
    assert refs[ref_of[late_cancel]]["status"] == "void"
    assert statuses(hub)[late_cancel] == "canceled"
    with tg.admin() as g:
        for oid in [*plain, legacy]:
            g.post(f"/accounts/{tg_acct}/ship", json={"reference_number": ref_of[oid], "packages": [
                {"tracking_company": "UPS", "tracking_number": f"1Z{oid[-4:]}"}]}).raise_for_status()
        # two packages, the first one alone first: a partial shipment
        g.post(f"/accounts/{tg_acct}/ship", json={"reference_number": ref_of[two_lines], "packages": [
            {"lines": [{"sku": "A-1", "quantity": 2}], "tracking_company": "UPS", "tracking_number": "1ZPART1"}]})
    sync(hub)
    assert statuses(hub)[two_lines] == "partial"
    with tg.admin() as g:
        g.post(f"/accounts/{tg_acct}/ship", json={"reference_number": ref_of[two_lines], "packages": [
            {"lines": [{"sku": "B-2", "quantity": 1}], "tracking_company": "FedEx", "tracking_number": "7PART2"}]})
    sync(hub)
    sync(hub)

    st = statuses(hub)
    assert all(st[o] == "confirmed" for o in [*plain, legacy, two_lines]), st
    with tg.admin() as g, houzz.admin() as h:
        counts = g.get(f"/accounts/{tg_acct}/orders/counts").json()
        ships = [a for a in h.get(f"/accounts/{ACCT}/actions", params={"action": "Ship"}).json()
                 if a.get("result") == "ok"]
        calls = g.get("/calls").json()
    assert counts["duplicates"] == {}
    assert counts["total"] == 9  # every order but the one cancelled before delivery, each once
    assert sorted(a["OrderId"] for a in ships) == sorted([*plain, legacy, two_lines])  # one Ship each
    assert next(a for a in ships if a["OrderId"] == two_lines)["TrackingNumber"] in ("1ZPART1", "1ZPART1,7PART2")
    assert not [c for c in calls if c["status"] == 429 and c["fault"] == "rate_limit"]  # the budget held
    recorded, passed_over, mapped = pickups_in_one_run(hub, monkeypatch)
    assert len(recorded) == 9 and passed_over == recorded and mapped == []


def pickups_in_one_run(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> tuple[set[str], set[str], list[Any]]:
    """A shipment pickup reading every shipment again (its cursor gone): the shipments recorded,
    those the ledger's look-up named as recorded, and those the pickup mapped."""
    from orderbridge.engine import fulfilment

    mapped: list[Any] = []
    real = tg_mapping.map_fulfillment
    monkeypatch.setattr(tg_mapping, "map_fulfillment", lambda ful, *a: mapped.append(ful["id"]) or real(ful, *a))
    named: set[str] = set()
    look_up = fulfilment.recorded_among

    def recorded_among(*args: Any) -> set[str]:
        found = look_up(*args)
        named.update(found)
        return found

    monkeypatch.setattr(fulfilment, "recorded_among", recorded_among)

    async def run() -> set[str]:
        try:
            with hub.db.begin() as conn:
                conn.execute(t.cursors.delete().where(t.cursors.c.job == "shipments"))  # the next reads them all
            await sync_once(hub, connections=["tg"])
            with hub.db.connect() as conn:
                return set(conn.execute(sa.select(t.shipments.c.external_id)).scalars())
        finally:
            await hub.aclose()

    recorded = asyncio.run(run())
    return recorded, named, mapped
