"""A delivery run keeps more orders in progress than it has calls in flight: the calls to the backend
never exceed ``runner.concurrency``, while other orders' intents are already committed and wait for
a call slot (so the slots stay busy while orders wait for the ledger). Houzz and TradeGecko sandboxes
over real HTTP."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orderbridge.connectors.tradegecko.connector import TradeGeckoConnector
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.engine.context import ITEMS_PER_CALL_SLOT
from orderbridge.ledger import schema as t
from tests.engine.houzz_tg_support import ACCT, houzz_to_tg, order, statuses
from tests.support.engine import sync

CONCURRENCY = 2
ORDERS = 12


def overlapping(calls: list[dict[str, Any]]) -> int:
    """The most calls the sandbox was serving at one moment (each call: its end time and duration)."""
    edges = sorted([(c["at"] - c["ms"] / 1000, 1) for c in calls] + [(c["at"], -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_calls_in_flight_stay_within_concurrency_while_more_orders_progress(
        make_hub: Any, sandboxes: Any, monkeypatch: Any) -> None:
    houzz, tg = sandboxes
    with houzz.admin() as h, tg.admin() as g:
        h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
        h.post(f"/accounts/{ACCT}/listings", json=[{"SKU": "A-1"}]).raise_for_status()
        made = g.post("/accounts", json={"name": "Shop", "oauth": {"expires_in": 3600}}).json()
        oauth = made["oauth"]
        g.post(f"/accounts/{made['account']['id']}/variants",
               json=[{"sku": "A-1", "name": "A", "stock": {"Main Warehouse": 100}}]).raise_for_status()
        placed = [order(h, [("A-1", 1)]) for _ in range(ORDERS)]
    fast = {"calls": 1000, "period": 1}
    hub = make_hub(houzz_to_tg(houzz.url, tg.url, oauth, concurrency=CONCURRENCY, houzz_rate=fast, tg_rate=fast))
    sync(hub, "houzz")  # imported, processed and charged: every delivery is due

    claimed_at_call: list[int] = []
    create = TradeGeckoConnector.create_order

    async def counting_create(self: TradeGeckoConnector, request: Any, key: str) -> Any:
        with hub.db.connect() as conn:  # the intents committed when this call starts
            claimed_at_call.append(int(conn.execute(sa.select(sa.func.count()).select_from(t.deliveries).where(
                t.deliveries.c.state == "in_flight")).scalar_one()))
        return await create(self, request, key)

    monkeypatch.setattr(TradeGeckoConnector, "create_order", counting_create)
    with tg.admin() as g:
        g.delete("/calls").raise_for_status()
        g.post("/faults", json={"latency_ms": 80}).raise_for_status()  # calls long enough to overlap
    sync(hub, "tg")

    assert all(statuses(hub)[o] == "at_wms" for o in placed), statuses(hub)
    with tg.admin() as g:
        calls = [c for c in g.get("/calls").json() if c["path"].endswith(("/orders", "/companies"))]
    assert len([c for c in calls if c["method"] == "POST"]) == ORDERS
    assert overlapping(calls) == CONCURRENCY  # the slots were all used, and never more
    # More orders than call slots were claimed at once: the rest waited for a slot, not for the ledger.
    assert max(claimed_at_call) > CONCURRENCY
    assert max(claimed_at_call) <= CONCURRENCY * ITEMS_PER_CALL_SLOT
