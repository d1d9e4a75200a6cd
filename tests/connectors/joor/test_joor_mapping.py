"""JOOR mapping rules that need no server: odd entries, statuses, SKUs and inventory log reading."""

from __future__ import annotations

from typing import Any

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder
from orderbridge.connectors.joor import mapping
from orderbridge.connectors.joor.mapping import Rules

APPROVED = Rules(order_type=6, order_type_label="Approved Orders")


def order(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": 4810001, "status": "Approved", "order_date": "2026-03-02T14:05:11Z", "customer_code": "RT-1",
        "customer_name": "Bloom Boutique", "currency_code": "usd", "order_total": "240.00",
        "shipping_address": {"name": "Nina", "address_1": "215 King St", "city": "Charleston", "state": "SC",
                             "postal_code": "29401", "country": "United States"},
        "line_items": [{"line_id": "7", "style_number": "ST1", "color_code": "001", "size": "M", "upc": "0123",
                        "quantity": 6, "price": "40.00", "style_name": "Dress", "color_name": "Black"}],
    }
    body.update(fields)
    return body


def test_a_good_order_maps_to_the_canonical_model() -> None:
    item = mapping.classify(order(), APPROVED)
    assert isinstance(item, DownloadedOrder) and item.order is not None
    o = item.order
    assert (o.external_id, o.cust_po_no, o.customer_id) == ("4810001", "4810001", "RT-1")
    assert o.ship_to.country == "US" and o.ship_to.company == "Bloom Boutique"
    assert o.bill_to.address1 == "215 King St"  # no billing block: the ship-to stands in
    assert o.lines[0].sku == "0123" and o.lines[0].description == "Dress / Black / M"
    assert str(o.totals.total) == "240.00" and o.totals.currency == "USD" and o.paid


def test_entries_that_are_not_orders_are_skipped_with_a_reason() -> None:
    assert isinstance(mapping.classify("junk", APPROVED), SkippedOrder)
    nameless = mapping.classify(order(order_id=None), APPROVED)
    assert isinstance(nameless, SkippedOrder) and nameless.external_id.startswith("joor-unidentified-")
    odd = mapping.classify(order(status="Drafted"), APPROVED)
    assert isinstance(odd, SkippedOrder) and "unknown" in odd.reason and not odd.final
    pending = mapping.classify(order(status="Pending"), APPROVED)
    assert isinstance(pending, SkippedOrder) and "Approved Orders" in pending.reason
    shipped = mapping.classify(order(status="Shipped"), Rules(order_type=7, order_type_label="Shipped Orders"))
    assert isinstance(shipped, DownloadedOrder)


def test_bad_values_are_errors_naming_the_line() -> None:
    for fields, words in (({"order_date": "soon"}, "order date"),
                          ({"line_items": [{"upc": "1", "quantity": 0, "price": "1"}]}, "whole number"),
                          ({"line_items": [{"upc": "1", "quantity": 1, "price": "-2"}]}, "negative"),
                          ({"line_items": ["x"]}, "not an object"),
                          ({"shipping_address": "somewhere"}, "shipping address")):
        item = mapping.classify(order(**fields), APPROVED)
        assert isinstance(item, DownloadedOrder) and item.order is None, fields
        assert words in item.error and item.fix, (fields, item.error)


def test_inventory_items_and_refusals() -> None:
    styles = Rules(order_type=6, order_type_label="x", sku_field="style_color_size")
    assert mapping.inventory_item("A-B-1-001-M", 4, styles, "MAIN") == {
        "warehouse": "MAIN", "inventory": 4, "style_number": "A-B-1", "color_code": "001", "size": "M"}
    assert isinstance(mapping.inventory_item("PLAIN", 4, styles, "MAIN"), str)
    assert mapping.inventory_item("0123", -5, APPROVED, "MAIN") == {"warehouse": "MAIN", "inventory": 0,
                                                                      "upc": "0123"}
    refused = mapping.inventory_refusals(["a", "b", "c"], [{"status": "pass"}, {"status": "fail", "message": "no"}])
    assert set(refused) == {"b", "c"} and "no" in refused["b"]
