"""Shipments (units sent on sales orders), stock levels and cancellation against the Holded sandbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from holded_support import ORDER_DATE, Admin, connector, make_order, request

from orderbridge.connectors.base import Window
from orderbridge.connectors.holded.connector import HoldedConnector
from orderbridge.domain.models import Shipment

SO = {"document_type": "salesorder"}
WINDOW = Window(since=None, until=ORDER_DATE + timedelta(days=1))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def pickup(conn: HoldedConnector) -> list[Shipment]:
    return [s async for s in conn.shipments(WINDOW)]


def seeded(admin: Admin) -> str:
    return admin.account(products=[{"sku": "A", "name": "Apron", "stock": 10},
                                   {"sku": "B", "name": "Bowl", "stock": 5}])


def create(url: str, key: str, *reqs: Any, settings: dict[str, Any] | None = None) -> list[str]:
    async def scenario() -> list[str]:
        conn = connector(url, key, settings)
        try:
            return [await conn.create_order(r, "k") for r in reqs]
        finally:
            await conn.aclose()

    return list(run(scenario()))


def test_line_shipments_after_partial_and_full_send(admin: Admin, url: str) -> None:
    key = seeded(admin)
    req = request(make_order([("A", 3, "10.00"), ("B", 1, "5.00")], shipping="4.90"), SO)
    [doc_id] = create(url, key, req)
    rounds: list[list[Shipment]] = []

    async def scenario() -> None:
        conn = connector(url, key)
        try:
            rounds.append(await pickup(conn))  # nothing sent yet
            admin.send(key, doc_id, lines=[{"sku": "B", "units": 1}, {"sku": "A", "units": 1}], carrier="ups",
                       tracking="1Z001", pickUpDate="21/11/2026")
            rounds.append(await pickup(conn))  # B complete, A partial
            rounds.append(await pickup(conn))  # same again: same ids
            admin.send(key, doc_id, carrier="ups", tracking="1Z002")  # the rest
            rounds.append(await pickup(conn))
            before = len(admin.calls())
            rounds.append(await pickup(conn))  # a fully sent order is not read again
            assert not [c for c in admin.calls()[before:] if "shippeditems" in c["path"]]
        finally:
            await conn.aclose()

    run(scenario())
    assert rounds[0] == []
    [b] = rounds[1]
    assert b.external_id == f"{doc_id}:1" and b.order_ref == req.cust_ref and b.backend_order_id == doc_id
    assert b.quantities() == {"B": 1} and b.carrier == "ups" and b.tracking_numbers == ["1Z001"]
    assert b.shipped_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert rounds[2] == rounds[1]
    assert {s.external_id for s in rounds[3]} == {f"{doc_id}:0", f"{doc_id}:1"}
    a = next(s for s in rounds[3] if s.external_id == f"{doc_id}:0")
    assert a.quantities() == {"A": 3} and a.tracking_numbers == ["1Z001", "1Z002"]
    assert rounds[4] == []
    assert admin.units(key, "A") == 7 and admin.units(key, "B") == 4


def test_unit_shipments_count_partial_lines_exactly(admin: Admin, url: str) -> None:
    key = seeded(admin)
    req = request(make_order([("A", 3, "10.00")]), SO)
    [doc_id] = create(url, key, req)
    seen: dict[str, Shipment] = {}

    async def scenario() -> None:
        conn = connector(url, key, {"shipment_detail": "unit"})
        try:
            admin.send(key, doc_id, lines=[{"itemLinePosition": 0, "units": 1}], carrier="correos", tracking="PK1")
            first = await pickup(conn)
            assert [s.external_id for s in first] == [f"{doc_id}:0:1"]
            seen.update({s.external_id: s for s in first})
            admin.send(key, doc_id, lines=[{"itemLinePosition": 0, "units": 2}])
            seen.update({s.external_id: s for s in await pickup(conn)})
        finally:
            await conn.aclose()

    run(scenario())
    assert sorted(seen) == [f"{doc_id}:0:{n}" for n in (1, 2, 3)]
    assert sum(s.quantities()["A"] for s in seen.values()) == 3
    assert seen[f"{doc_id}:0:1"].carrier == "correos"


def test_order_shipments_wait_for_everything(admin: Admin, url: str) -> None:
    key = seeded(admin)
    req = request(make_order([("A", 1, "10.00"), ("B", 2, "5.00")]), SO)
    [doc_id] = create(url, key, req)

    async def scenario() -> tuple[list[Shipment], list[Shipment]]:
        conn = connector(url, key, {"shipment_detail": "order"})
        try:
            admin.send(key, doc_id, lines=[{"sku": "A", "units": 1}])
            partial = await pickup(conn)
            admin.send(key, doc_id, carrier="other", carrier_name="Paack", tracking="PQ-9")
            return partial, await pickup(conn)
        finally:
            await conn.aclose()

    partial, done = run(scenario())
    assert partial == []
    [whole] = done
    assert whole.external_id == f"{doc_id}:all" and whole.quantities() == {"A": 1, "B": 2}
    assert whole.carrier == "Paack" and whole.tracking_numbers == ["PQ-9"]


def test_shipments_can_wait_for_tracking(admin: Admin, url: str) -> None:
    key = seeded(admin)
    [doc_id] = create(url, key, request(make_order([("A", 1, "10.00")]), SO))

    async def scenario() -> tuple[list[Shipment], list[Shipment]]:
        conn = connector(url, key, {"wait_for_tracking": True})
        try:
            admin.send(key, doc_id)
            without = await pickup(conn)
            async with httpx.AsyncClient(base_url=url + "/api/invoicing/v1", headers={"key": key}) as http:
                resp = await http.post(f"/documents/salesorder/{doc_id}/updatetracking",
                                       json={"key": "seur", "name": "seur", "num": "SE-1"})
                assert resp.json() == {"status": 1, "data": "Updated"}
            return without, await pickup(conn)
        finally:
            await conn.aclose()

    without, with_tracking = run(scenario())
    assert without == []
    assert [(s.carrier, s.tracking_numbers) for s in with_tracking] == [("seur", ["SE-1"])]


def test_receipts_and_foreign_orders_produce_no_shipments(admin: Admin, url: str) -> None:
    key = seeded(admin)
    create(url, key, request(make_order([("A", 1, "10.00")])))  # a receipt: stock moved, nothing ships
    with httpx.Client(base_url=url + "/api/invoicing/v1", headers={"key": key}) as http:
        contact = http.post("/contacts", json={"name": "Walk-in"}).json()["id"]
        foreign = http.post("/documents/salesorder", json={
            "date": int(ORDER_DATE.timestamp()), "contactId": contact, "approveDoc": True,
            "items": [{"name": "Apron", "sku": "A", "units": 1, "subtotal": 10}]}).json()["id"]
    admin.send(key, foreign)

    async def scenario() -> list[Shipment]:
        conn = connector(url, key)
        try:
            return await pickup(conn)
        finally:
            await conn.aclose()

    assert run(scenario()) == []
    assert admin.units(key, "A") == 8


def test_stock_levels_per_sku_and_warehouse(admin: Admin, url: str) -> None:
    key = admin.account()
    madrid = admin.seed(key, warehouses=[{"name": "Madrid"}])["warehouses"]["Madrid"]
    main = admin.default_warehouse(key)
    admin.seed(key, products=[
        {"sku": "A", "name": "Apron", "stock": {"Main warehouse": 4, "Madrid": 6}},
        {"name": "T-shirt", "variants": [{"sku": "TS-S", "stock": {"Madrid": 2}},
                                         {"sku": "TS-M", "stock": {"Madrid": 1}}]},
        {"sku": "SRV", "name": "Gift wrap", "hasStock": 0, "stock": 3},
        {"sku": "NEW", "name": "Never stocked"},
    ])
    create(url, key, request(make_order([("A", 1, "10.00"), ("TS-S", 1, "10.00")]), {"warehouse_id": madrid}))

    async def scenario() -> tuple[list[Any], list[Any]]:
        every = connector(url, key)
        only = connector(url, key, {"stock_warehouses": [madrid]})
        try:
            return await every.stock_levels(), await only.stock_levels()
        finally:
            await every.aclose()
            await only.aclose()

    every, only = run(scenario())
    table = {(lv.sku, lv.warehouse): (lv.on_hand, lv.available) for lv in every}
    assert table == {
        ("A", main): (4, 4), ("A", madrid): (5, 5), ("TS-S", main): (0, 0), ("TS-S", madrid): (1, 1),
        ("TS-M", main): (0, 0), ("TS-M", madrid): (1, 1), ("NEW", main): (0, 0), ("NEW", madrid): (0, 0),
    }
    assert {lv.warehouse for lv in only} == {madrid} and len(only) == 4


def test_cancel_flags_accounting_documents_and_deletes_unsent_drafts(admin: Admin, url: str) -> None:
    key = seeded(admin)
    receipt = request(make_order([("A", 1, "10.00")]))
    draft = request(make_order([("A", 1, "10.00")]), {**SO, "approve": False})
    approved = request(make_order([("A", 1, "10.00")]), SO)
    sent = request(make_order([("A", 2, "10.00")]), SO)
    ids = create(url, key, receipt, draft, approved, sent)
    admin.send(key, ids[3], lines=[{"sku": "A", "units": 1}])

    async def scenario() -> list[Any]:
        conn = connector(url, key)
        try:
            return [await conn.cancel_order(i, r) for i, r in zip(ids, (receipt, draft, approved, sent), strict=True)]
        finally:
            await conn.aclose()

    on_receipt, on_draft, on_approved, on_sent = run(scenario())
    assert not on_receipt.canceled and on_receipt.note.startswith("flagged for the user:")
    assert "credit note" in on_receipt.note
    assert on_draft.canceled and admin.docs(key, ref=draft.cust_ref) == []
    assert not on_approved.canceled and on_approved.note.startswith("flagged for the user:")
    assert on_sent.too_late and "1 units already sent" in on_sent.note
    assert len(admin.docs(key)) == 3
