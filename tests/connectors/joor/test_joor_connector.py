"""The JOOR connector against its sandbox over real HTTP: download with paging and the export flag,
malformed orders, auth errors, the credential check, cancellations and inventory push."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from joor_support import Admin, opened, window
from tests.support.sandbox_fixtures import collect

from orderbridge.connectors.base import DownloadedOrder, InventoryUpdate, SkippedOrder, Window
from orderbridge.connectors.errors import AuthError, ConfigError


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def by_id(items: list[Any]) -> dict[str, Any]:
    return {i.external_id: i for i in items}


def test_first_download_pages_to_the_end_and_marks_every_order_exported(url: str, admin: Admin) -> None:
    acct = admin.account()
    ids = admin.generate(acct["id"], 130)
    seq = admin.last_seq()

    async def go() -> tuple[list[Any], list[Any]]:
        async with opened(url, acct["token"], {"page_size": 50}) as c:
            first = await collect(c.download(Window(since=None, until=window().until)))
            again = await collect(c.download(window()))
            return first, again

    first, again = run(go())
    assert sorted(i.external_id for i in first) == sorted(ids)
    assert all(isinstance(i, DownloadedOrder) and i.order is not None for i in first)
    sample = first[0].order
    assert sample.lines and all(line.sku.isdigit() for line in sample.lines)  # UPCs
    assert sample.ship_to.company and sample.customer_id.startswith("RT-")
    states = admin.states(acct["id"])
    assert all(states[i]["export_state"] == "success" and states[i]["export_count"] == 1 for i in ids)
    syncs = [c for c in admin.calls(seq) if "sync=1" in c["query"]]
    # 50 + 50 + 30 on the first run, each read from the start; one empty answer on the second
    assert len(syncs) == 4 and all("start_from=0" in c["query"] for c in syncs)
    # A later run reads the exported orders again (the recovery read), and marks nothing twice.
    assert sorted(i.external_id for i in again) == sorted(ids)
    assert all(s["export_count"] == 1 for s in admin.states(acct["id"]).values())


def test_orders_marked_exported_but_never_stored_come_back_on_the_next_run(url: str, admin: Admin) -> None:
    acct = admin.account()
    ids = admin.generate(acct["id"], 12)
    w = window()

    async def crashed_run() -> int:
        # The hub reads the sync=1 answer (JOOR marks the orders) and dies before storing anything.
        async with opened(url, acct["token"], {"page_size": 5}) as c:
            got = 0
            async for _ in c.download(w):
                got += 1
                if got == 12:
                    break
            return got

    assert run(crashed_run()) == 12
    assert all(s["export_state"] == "success" for s in admin.states(acct["id"]).values())

    async def next_run() -> list[Any]:
        async with opened(url, acct["token"], {"page_size": 5}) as c:
            return await collect(c.download(w))  # the cursor did not move: same window

    assert sorted(i.external_id for i in run(next_run())) == sorted(ids)


def test_a_sync_answer_lost_on_the_wire_is_recovered_in_the_same_run(url: str, admin: Admin) -> None:
    acct = admin.account()
    ids = admin.generate(acct["id"], 8)
    # JOOR marks the first page exported, then the body arrives truncated.
    admin.faults(match="sync=1", next=[{"kind": "malformed", "count": 1}])

    async def go() -> list[Any]:
        async with opened(url, acct["token"], {"page_size": 5}) as c:
            return await collect(c.download(window()))

    got = run(go())
    assert sorted({i.external_id for i in got}) == sorted(ids)
    assert any(c["fault"] == "malformed" for c in admin.calls())


def test_malformed_orders_become_errors_or_skips_with_their_reason(url: str, admin: Admin) -> None:
    acct = admin.account()
    good, no_lines, bad_qty, no_upc, no_address, old, no_customer, west, shipped = admin.orders(
        acct["id"], {}, {"line_items": []}, {"line_items": [{"upc": "123", "quantity": "lots", "price": "10"}]},
        {"line_items": [{"style_number": "ST9", "color_code": "001", "size": "M", "quantity": 2, "price": "5"}]},
        {"omit": ["shipping_address"]}, {"order_date": "2026-01-01T00:00:00Z"},
        {"customer_code": ""}, {"warehouse_code": "WEST"}, {"status": "Shipped"})

    async def go() -> dict[str, Any]:
        async with opened(url, acct["token"], {"order_status": "Approved & Shipped Orders"}) as c:
            return by_id(await collect(c.download(window())))

    items = run(go())
    assert isinstance(items[good], DownloadedOrder) and items[good].order is not None
    errors = {k: items[k] for k in (no_lines, bad_qty, no_upc, no_address)}
    assert all(isinstance(i, DownloadedOrder) and i.order is None and i.fix for i in errors.values())
    assert "no line items" in errors[no_lines].error
    assert "lots" in errors[bad_qty].error
    assert "no UPC" in errors[no_upc].error and "ST9 001 M" in errors[no_upc].error
    assert "shipping address" in errors[no_address].error
    skipped = {k: items[k] for k in (no_customer, west, shipped)}
    assert all(isinstance(i, SkippedOrder) for i in skipped.values())
    assert "customer code" in skipped[no_customer].reason and not skipped[no_customer].final
    assert "'WEST'" in skipped[west].reason and "'MAIN'" in skipped[west].reason
    assert "already shipped" in skipped[shipped].reason and skipped[shipped].final
    assert isinstance(items[old], DownloadedOrder) and items[old].order is not None

    async def earliest() -> Any:
        async with opened(url, acct["token"], {"earliest_order_date": "2026-02-01", "mark_exported": False}) as c:
            return by_id(await collect(c.download(window())))[old]

    late = run(earliest())
    assert isinstance(late, SkippedOrder) and late.final and "earliest order date" in late.reason

    # With style/color/size SKUs the order without a UPC is fine.

    async def styles() -> Any:
        async with opened(url, acct["token"], {"sku_field": "style_color_size", "mark_exported": False}) as c:
            return by_id(await collect(c.download(window())))[no_upc]

    assert run(styles()).order.lines[0].sku == "ST9-001-M"


def test_bad_token_is_a_clear_auth_error_and_the_check_says_which_environment(url: str, admin: Admin) -> None:
    admin.account()

    async def go() -> tuple[Any, Any]:
        async with opened(url, "not-the-token") as c:
            with pytest.raises(AuthError) as caught:
                await collect(c.download(window()))
            return caught.value, await c.check()

    err, check = run(go())
    assert "refused the API token" in err.message and "Test Mode" in err.fix
    assert not check.ok and "the JOOR sandbox" in check.message and url in check.message


def test_check_reads_without_marking_and_needs_the_warehouse_for_inventory(url: str, admin: Admin) -> None:
    acct = admin.account()
    ids = admin.generate(acct["id"], 2)

    async def go(settings: dict[str, Any]) -> Any:
        async with opened(url, acct["token"], settings) as c:
            return await c.check()

    ok = run(go({}))
    assert ok.ok and "JOOR sandbox" in ok.message
    missing = run(go({"warehouse_code": ""}))
    assert not missing.ok and "Warehouse Code" in missing.message
    assert run(go({"warehouse_code": "", "inventory_enabled": False})).ok
    assert all(admin.states(acct["id"])[i]["export_state"] == "none" for i in ids)


def test_cancellations_are_reported(url: str, admin: Admin) -> None:
    acct = admin.account()
    _kept, gone = admin.generate(acct["id"], 2)
    admin.set_status(acct["id"], gone, "Cancelled")

    async def go() -> list[Any]:
        async with opened(url, acct["token"]) as c:
            return await collect(c.cancellations(window()))

    assert [c.external_id for c in run(go())] == [gone]


def test_inventory_push_sets_levels_and_reports_refusals(url: str, admin: Admin) -> None:
    acct = admin.account()
    admin.generate(acct["id"], 1)
    a, b = admin.catalog(acct["id"])[:2]

    async def push(settings: dict[str, Any], updates: list[InventoryUpdate]) -> dict[str, str]:
        async with opened(url, acct["token"], settings) as c:
            return await c.push_inventory(updates)

    refused = run(push({}, [InventoryUpdate(a["upc"], 5), InventoryUpdate("999", 2), InventoryUpdate(b["upc"], -3)]))
    assert list(refused) == ["999"] and "style library" in refused["999"]
    held = admin.inventory(acct["id"])
    assert held[a["upc"]]["inventory"] == 5 and held[b["upc"]]["inventory"] == 0
    assert held[a["upc"]]["warehouse"] == "MAIN"
    sku = f"{b['style_number']}-{b['color_code']}-{b['size']}"
    refused = run(push({"sku_field": "style_color_size"}, [InventoryUpdate(sku, 9), InventoryUpdate("ODD", 1)]))
    assert list(refused) == ["ODD"] and "style-color-size" in refused["ODD"]
    assert admin.inventory(acct["id"])[b["upc"]]["inventory"] == 9
    refused = run(push({"warehouse_code": "EAST"}, [InventoryUpdate(a["upc"], 1)]))
    assert "Order Settings" in refused[a["upc"]]
    with pytest.raises(ConfigError, match="Warehouse Code"):
        run(push({"warehouse_code": ""}, [InventoryUpdate(a["upc"], 1)]))
