"""Shipment confirmation, inventory push and cancellation detection against the Houzz sandbox."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from houzz_support import Admin, now, opened
from tests.support.sandbox_fixtures import collect

from orderbridge.connectors.base import ConfirmMode, DownloadedOrder, InventoryUpdate, StoredOrder, Window
from orderbridge.connectors.errors import DataError
from orderbridge.connectors.houzz.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.domain.models import Package, Shipment


async def stored(c: Any, oid: str) -> StoredOrder:
    item = await c.fetch_order(oid)
    assert isinstance(item, DownloadedOrder) and item.order is not None, item
    return StoredOrder(order_id=1, external_id=oid, cust_po_no=oid, cust_ref="R1", order=item.order, raw=item.raw)


TRACKING = ["1Z999AA10123456784", "1Z999AA10123456785", "770012345678"]


def three_packages() -> list[Shipment]:
    return [
        Shipment(external_id="S1", order_ref="R1", carrier="UPS Ground",
                 packages=[Package(tracking_number=TRACKING[0], carrier="UPS Ground"),
                           Package(tracking_number=TRACKING[1])]),
        Shipment(external_id="S2", order_ref="R1", carrier="FedEx", tracking_numbers=[TRACKING[2]]),
    ]


@pytest.mark.parametrize(("settings", "sent", "words"), [
    ({}, "1Z999AA10123456784", "3 packages; sent the first tracking number"),
    ({"tracking_numbers": "joined"}, "1Z999AA10123456784,1Z999AA10123456785,770012345678",
     "3 packages; sent tracking numbers joined"),
    ({"tracking_numbers": "joined", "tracking_max_length": 40}, "1Z999AA10123456784,1Z999AA10123456785",
     "tracking numbers joined (2 of 3 fit in 40 characters)"),
])
def test_one_ship_action_per_order_with_each_tracking_strategy(url: str, admin: Admin, settings: dict[str, Any],
                                                               sent: str, words: str) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")

    async def go() -> str:
        async with opened(url, acc, settings) as c:
            order = await stored(c, oid)
            assert not await c.is_confirmed(order, three_packages())
            note = (await c.upload_shipments(order, three_packages())).note
            assert await c.is_confirmed(order, three_packages())
            return note

    note = asyncio.run(go())
    assert words in note and "carrier UPS" in note
    [ship] = admin.actions(acc["acct"], "Ship")
    assert (ship["result"], ship["ShippingMethod"], ship["TrackingNumber"]) == ("ok", "UPS", sent)
    assert admin.status(acc["acct"], oid) == "Shipped"


@pytest.mark.parametrize(("confirm_when", "mode"), [
    ("all_shipped", ConfirmMode.ORDER_WHEN_COMPLETE), ("first_shipment", ConfirmMode.ORDER_AT_FIRST),
])
def test_confirm_mode_follows_the_setting(url: str, admin: Admin, confirm_when: str, mode: ConfirmMode) -> None:
    acc = admin.account()

    async def go(kind: str) -> None:
        async with opened(url, acc, {"confirm_when": confirm_when}, kind=kind) as c:
            assert c.confirm_mode() == mode
            assert not c.capabilities.multiple_tracking and not c.capabilities.item_level_shipments

    asyncio.run(go("houzz_seller"))
    asyncio.run(go("houzz_vendor"))


def test_first_shipment_confirms_the_whole_order_at_once(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    first = [Shipment(external_id="S1", order_ref="R1", carrier="USPS", tracking_numbers=["9400111"])]

    async def go() -> None:
        async with opened(url, acc, {"confirm_when": "first_shipment"}) as c:
            order = await stored(c, oid)
            note = (await c.upload_shipments(order, first)).note
            assert note.startswith("1 package; sent its tracking number with carrier USPS")
            # Later packages cannot be added at Houzz: a repeat is answered from Houzz's state.
            again = (await c.upload_shipments(order, [*first, *three_packages()])).note
            assert "already showed the order shipped with tracking 9400111" in again

    asyncio.run(go())
    assert [a["result"] for a in admin.actions(acc["acct"], "Ship")] == ["ok", "error"]


@pytest.mark.parametrize(("carrier", "sent", "remark"), [
    ("fedex home delivery", "FedEx", ""), ("United States Postal Service", "USPS", ""),
    ("Acme Freightways", "Acme Freightways", "not in the carrier map"), ("", "Other", "no carrier given"),
])
def test_carrier_map(url: str, admin: Admin, carrier: str, sent: str, remark: str) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    shipment = [Shipment(external_id="S1", order_ref="R1", carrier=carrier, tracking_numbers=["T-1"])]

    async def go() -> str:
        async with opened(url, acc) as c:
            return (await c.upload_shipments(await stored(c, oid), shipment)).note

    note = asyncio.run(go())
    assert f"carrier {sent}" in note and remark in note
    assert admin.actions(acc["acct"], "Ship")[0]["ShippingMethod"] == sent


def test_custom_carrier_map(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")
    shipment = [Shipment(external_id="S1", order_ref="R1", carrier="Estes", tracking_numbers=["PRO-9"])]

    async def go() -> None:
        async with opened(url, acc, {"carrier_map": {"estes": "LTL"}}) as c:
            await c.upload_shipments(await stored(c, oid), shipment)

    asyncio.run(go())
    assert admin.actions(acc["acct"], "Ship")[0]["ShippingMethod"] == "LTL"


def test_refused_confirmations(url: str, admin: Admin) -> None:
    acc = admin.account()
    no_tracking, canceled, uncharged = (admin.order(acc["acct"], Status="Charged") for _ in range(3))

    async def go() -> None:
        async with opened(url, acc, {"mark_charged": False}) as c:
            bare = [Shipment(external_id="S1", order_ref="R1", carrier="UPS")]
            with pytest.raises(DataError, match="no tracking number"):
                await c.upload_shipments(await stored(c, no_tracking), bare)
            order = await stored(c, canceled)
            admin.cancel(acc["acct"], canceled)
            with pytest.raises(DataError, match="cancelled at Houzz"):
                await c.upload_shipments(order, three_packages())
            order = await stored(c, uncharged)
            admin.set_status(acc["acct"], uncharged, "InProduction")
            with pytest.raises(DataError, match="ships only Charged orders") as info:
                await c.upload_shipments(order, three_packages())
            assert "charge the order" in info.value.fix

    asyncio.run(go())


def test_lapsed_authorisation_is_charged_again_before_shipping(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")

    async def go() -> str:
        async with opened(url, acc) as c:
            order = await stored(c, oid)
            admin.set_status(acc["acct"], oid, "InProduction")  # what Houzz does after 7 days unshipped
            return (await c.upload_shipments(order, three_packages())).note

    assert "charged again first" in asyncio.run(go())
    assert [(a["action"], a["result"]) for a in admin.actions(acc["acct"]) if a["action"] != "SetStatus"] == [
        ("Ship", "error"), ("Charge", "ok"), ("Ship", "ok")]


def test_vendor_orders_ship_the_same_way(url: str, admin: Admin) -> None:
    acc = admin.account("vendor")
    [oid] = admin.bulk(acc["acct"], 1)

    async def go() -> None:
        async with opened(url, acc, {"tracking_numbers": "joined"}, kind="houzz_vendor") as c:
            await c.upload_shipments(await stored(c, oid), three_packages())

    asyncio.run(go())
    assert admin.actions(acc["acct"], "Ship")[0]["tracking_list"] == TRACKING


def test_inventory_push_reports_refused_skus(url: str, admin: Admin) -> None:
    acc = admin.account()
    admin.listings(acc["acct"], "SOFA-1", "LAMP-2", "RUG-3")
    updates = [InventoryUpdate("SOFA-1", 4), InventoryUpdate("GHOST-9", 2), InventoryUpdate("LAMP-2", 0),
               InventoryUpdate("RUG-3", -3)]

    async def go() -> dict[str, str]:
        async with opened(url, acc) as c:
            return await c.push_inventory(updates)

    refused = asyncio.run(go())
    assert refused == {"GHOST-9": "Houzz has no listing with SKU GHOST-9"}
    assert [admin.listing(acc["acct"], s)["Quantity"] for s in ("SOFA-1", "LAMP-2", "RUG-3")] == ["4", "0", "0"]
    assert len(admin.listing(acc["acct"], "SOFA-1")["history"]) == 1


def test_inventory_push_without_the_permission_is_an_auth_error(url: str, admin: Admin) -> None:
    from orderbridge.connectors.errors import AuthError

    acc = admin.account(scopes=["orders"])
    admin.listings(acc["acct"], "SOFA-1")

    async def go() -> None:
        async with opened(url, acc) as c:
            with pytest.raises(AuthError) as info:
                await c.push_inventory([InventoryUpdate("SOFA-1", 1)])
            assert "Update product inventory" in info.value.fix

    asyncio.run(go())


def test_cancellations_are_detected_with_their_reason(url: str, admin: Admin) -> None:
    acc = admin.account()
    a = acc["acct"]
    by_buyer, by_houzz, open_order = admin.order(a), admin.order(a, Status="Charged"), admin.order(a)
    old = admin.order(a, Created=(now() - timedelta(days=6)).strftime("%Y-%m-%d %H:%M:%S"))
    admin.cancel(a, by_buyer, by="buyer")
    admin.cancel(a, by_houzz, code=4, reason="address undeliverable")
    admin.cancel(a, old, code=6)

    async def go() -> dict[str, Any]:
        async with opened(url, acc) as c:
            found = await collect(c.cancellations(Window(since=now() - timedelta(minutes=10), until=now())))
            return {x.external_id: x for x in found}

    found = asyncio.run(go())
    assert set(found) == {by_buyer, by_houzz, old} and open_order not in found  # old: created days ago
    assert found[by_buyer].reason == "cancelled at Houzz: buyer requested"
    assert found[by_houzz].reason == "cancelled at Houzz: cannot ship to address; address undeliverable"
    assert found[by_houzz].canceled_at is not None


def test_cancellations_survive_the_other_filter_spelling_and_recheck() -> None:
    opts = {"accounts": [], "rate_limit": False, "canceled_spelling": "Cancelled", "canceled_filter": "Cancelled"}
    with ServedApp(create_app(opts)) as s:
        admin = Admin(s.url)
        acc = admin.account()
        oid = admin.order(acc["acct"])
        admin.cancel(acc["acct"], oid)

        async def go() -> list[list[str]]:
            full_reads: list[datetime] = []  # kept by the engine between runs (its ledger's cursor)
            found = []
            async with opened(s.url, acc, {"cancel_recheck_minutes": 60}) as c:
                for _ in range(2):
                    w = Window(since=now() - timedelta(minutes=5), until=now(),
                               full_read_at=full_reads[-1] if full_reads else None, full_read_done=full_reads.append)
                    found.append([x.external_id for x in await collect(c.cancellations(w))])
            assert len(full_reads) == 1
            return found

        assert asyncio.run(go()) == [[oid], [oid]]
        statuses = [q for q in (c["query"] for c in admin.calls()) if "getOrders" in q]
        assert sum("Status=Canceled" in q for q in statuses) == 1  # refused once, then the other spelling
        assert sum("Status=Cancelled" in q for q in statuses) == 2
        assert sum("Status=All" in q for q in statuses) == 1  # the slower re-check ran once in the hour
