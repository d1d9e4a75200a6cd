"""Shipment upload as Wix fulfillments: tracking, lines, idempotency, carriers."""

from __future__ import annotations

from typing import Any

import pytest
from wix_support import WixAdmin, connector, run

from orderbridge.connectors.base import DownloadedOrder, StoredOrder
from orderbridge.connectors.errors import DataError, TransientError
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix.connector import WixConnector
from orderbridge.connectors.wix.sandbox import create_app
from orderbridge.domain.models import Shipment

LINES = [{"sku": "MUG-1", "quantity": 2, "price": "12.00", "taxRate": "0.21"},
         {"sku": "TEE-M", "quantity": 3, "price": "20.00", "taxRate": "0.21"}]


async def _stored(c: WixConnector, oid: str) -> StoredOrder:
    item = await c.fetch_order(oid)
    assert isinstance(item, DownloadedOrder) and item.order is not None
    return StoredOrder(order_id=1, external_id=oid, cust_po_no=item.order.cust_po_no, cust_ref="R1",
                       order=item.order, raw=item.raw)


def _ship(sid: str, lines: list[tuple[str, int]], tracking: list[str] | None = None, carrier: str = "UPS",
          **extra: Any) -> Shipment:
    return Shipment(external_id=sid, order_ref="R1", carrier=carrier, tracking_numbers=tracking or [],
                    lines=[{"sku": s, "quantity": q} for s, q in lines], **extra)


def test_fulfillment_created_exactly_once(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site, lines=LINES)
    first = _ship("S1", [("MUG-1", 2), ("TEE-M", 1)], ["1Z111"], carrier="United Parcel Service")

    async def go(c: WixConnector) -> list[Any]:
        stored = await _stored(c, o["id"])
        notes = [await c.upload_shipments(stored, [first]), await c.upload_shipments(stored, [first])]
        return [*notes, await c.is_confirmed(stored, [first])]
    created, repeated, confirmed = run(connector(wix_url, site), go)
    assert created.note.startswith("1 Wix fulfillment") and "1 already there" in repeated.note and confirmed
    fs = admin.fulfillments(site)[o["id"]]
    assert len(fs) == 1
    assert fs[0]["trackingInfo"]["shippingProvider"] == "ups" and fs[0]["trackingInfo"]["trackingLink"]
    assert sorted(li["quantity"] for li in fs[0]["lineItems"]) == [1, 2]
    order = admin.get(f"/sites/{site['siteId']}/orders/{o['id']}")["order"]
    assert order["fulfillmentStatus"] == "PARTIALLY_FULFILLED"


def test_partial_shipments_then_complete(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site, lines=LINES)
    shipments = [_ship("S1", [("TEE-M", 2)], ["T-1"], carrier="FedEx Ground"),
                 _ship("S2", [("TEE-M", 1), ("MUG-1", 2)], ["T-2"], carrier="SEUR")]

    async def go(c: WixConnector) -> None:
        stored = await _stored(c, o["id"])
        for s in shipments:
            await c.upload_shipments(stored, [s])
    settings = {"tracking_links": {"seur": "https://track.example/{tracking}"}}
    run(connector(wix_url, site, settings), go)
    fs = admin.fulfillments(site)[o["id"]]
    assert [f["trackingInfo"]["shippingProvider"] for f in fs] == ["fedex", "SEUR"]
    assert fs[1]["trackingInfo"]["trackingLink"] == "https://track.example/T-2"
    order = admin.get(f"/sites/{site['siteId']}/orders/{o['id']}")["order"]
    assert order["fulfillmentStatus"] == "FULFILLED"


def test_packages_become_one_fulfillment_each(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site, lines=LINES)
    shipment = Shipment(external_id="S9", order_ref="R1", carrier="DHL Express", packages=[
        {"tracking_number": "P-1", "lines": [{"sku": "MUG-1", "quantity": 2}]},
        {"tracking_number": "P-2", "carrier": "usps", "lines": [{"sku": "TEE-M", "quantity": 3}]},
    ])

    async def go(c: WixConnector) -> Any:
        stored = await _stored(c, o["id"])
        await c.upload_shipments(stored, [shipment])
        return await c.upload_shipments(stored, [shipment])
    again = run(connector(wix_url, site), go)
    fs = admin.fulfillments(site)[o["id"]]
    assert [(f["trackingInfo"]["trackingNumber"], f["trackingInfo"]["shippingProvider"]) for f in fs] == [
        ("P-1", "dhl"), ("P-2", "usps")]
    assert "2 already there" in again.note


def test_untracked_shipment_is_marked_and_not_repeated(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site, lines=LINES)
    no_lines = Shipment(external_id="S-all", order_ref="R1", carrier="own van")

    async def go(c: WixConnector) -> Any:
        stored = await _stored(c, o["id"])
        await c.upload_shipments(stored, [no_lines])
        await c.upload_shipments(stored, [no_lines])
        return await c.is_confirmed(stored, [no_lines])
    assert run(connector(wix_url, site), go) is True
    fs = admin.fulfillments(site)[o["id"]]
    assert len(fs) == 1 and fs[0]["customInfo"]["fieldsData"] == {"orderbridgeShipment": "S-all"}
    assert sum(li["quantity"] for li in fs[0]["lineItems"]) == 5


def test_unknown_sku_and_alias_fallback(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site, lines=LINES)

    async def go(c: WixConnector) -> Any:
        stored = await _stored(c, o["id"])
        with pytest.raises(DataError, match="ZZZ"):
            await c.upload_shipments(stored, [_ship("S1", [("ZZZ", 1), ("YYY", 1)], ["X1"])])
        # the backend's own SKU for the only unnamed line: unambiguous, so it is matched
        return await c.upload_shipments(stored, [_ship("S2", [("MUG-1", 2), ("WMS-TEE", 3)], ["X2"])])
    note = run(connector(wix_url, site), go)
    assert note.note.startswith("1 Wix fulfillment")
    fs = admin.fulfillments(site)[o["id"]]
    assert len(fs) == 1 and sum(li["quantity"] for li in fs[0]["lineItems"]) == 5


def test_write_lost_in_a_timeout_is_found_not_repeated(fresh_url: str) -> None:
    admin = WixAdmin(fresh_url)
    site = admin.site()
    o = admin.order(site, lines=LINES)
    shipment = _ship("S1", [("MUG-1", 2)], ["1Z-LOST"])

    async def go(c: WixConnector) -> Any:
        stored = await _stored(c, o["id"])
        admin.faults(next=[{"kind": "timeout_after", "count": 1}], hang_seconds=1.0, match="create-fulfillment")
        with pytest.raises(TransientError):
            await c.upload_shipments(stored, [shipment])
        confirmed = await c.is_confirmed(stored, [shipment])
        await c.upload_shipments(stored, [shipment])
        return confirmed
    assert run(connector(fresh_url, site, timeout=0.5), go) is True
    assert len(admin.fulfillments(site)[o["id"]]) == 1


def test_duplicate_tracking_refusal_counts_as_done() -> None:
    with ServedApp(create_app({"reject_duplicate_tracking": True, "demo_site": False})) as served:
        strict = WixAdmin(served.url)
        site = strict.site()
        oid = strict.order(site, lines=LINES)["id"]
        # two packages under one tracking number: the second create meets the 409
        shipment = Shipment(external_id="S1", order_ref="R1", carrier="ups", packages=[
            {"tracking_number": "DUP-1", "lines": [{"sku": "MUG-1", "quantity": 1}]},
            {"tracking_number": "DUP-1", "lines": [{"sku": "TEE-M", "quantity": 1}]},
        ])

        async def go(c: WixConnector) -> Any:
            return await c.upload_shipments(await _stored(c, oid), [shipment])
        note = run(connector(served.url, site), go).note
        assert note.startswith("1 Wix fulfillment") and "1 already there" in note
        assert len(strict.fulfillments(site)[oid]) == 1
        refused = [c for c in strict.calls("create-fulfillment") if c["status"] == 409]
        assert len(refused) == 1
