"""Hostile payloads against every connector's mapping: huge strings, odd unicode, NaN and negative
numbers, wrong types, missing keys, deep nesting. The answer is a valid model or the connector's
clear data error, never another exception; valid orders always pass the ledger's field limits
check (they are refused with the field named, not stored half-way)."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder
from orderbridge.connectors.errors import ConnectorError
from orderbridge.connectors.holded import mapping as holded
from orderbridge.connectors.houzz.mapping import Program, Rules, Status, classify
from orderbridge.connectors.tradegecko import mapping as tradegecko
from orderbridge.connectors.wix import mapping as wix
from orderbridge.connectors.wix.sandbox_orders import build_order
from orderbridge.domain.models import Order, Shipment, StockLevel
from orderbridge.domain.validation import oversized_fields

HOSTILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])


def _deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


huge = st.sampled_from(["x" * 100_000, "é" * 40_000, "🙂" * 30_000, "\u202e\u200b" * 20_000, "9" * 5_000,
                        "-" + "9" * 400, "A\x00B" * 10_000])
odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["\ud800", "\u0000", "\u202eevil", "\uff33\uff2b\uff35\uff0d\uff11", "\u0661\u0662\u0663", "NaN", "-0",
     "1e309", "0x10", "  ", "null", "[]"])
odd_numbers = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, -0.0, 0, 10**30, -(10**30), 2.5,
                               "-5", "NaN", "Infinity", "1e999", "3,5", "$12"])
garbage = st.recursive(st.none() | st.booleans() | odd_numbers | odd_text, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(odd_text, inner, max_size=3), max_leaves=10)
hostile = huge | odd_text | odd_numbers | garbage | st.builds(_deep, st.integers(50, 300), odd_text)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy[Any] = hostile) -> Any:
    """The valid payload with a few of its values replaced by hostile ones, or removed."""
    doc = copy.deepcopy(base)
    paths = _paths(base)
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True)):
        target = doc
        try:
            for step in path[:-1]:
                target = target[step]
            if draw(st.booleans()) or not isinstance(target, dict):
                target[path[-1]] = draw(values)
            else:
                del target[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    return doc


def _valid_order(order: Order) -> None:
    again = Order.model_validate(order.model_dump())  # round-trips as a valid canonical order
    json.dumps(again.model_dump(mode="json"), allow_nan=False)  # and stores as strict JSON
    assert all(line.quantity > 0 for line in again.lines)
    oversized_fields(again)  # never raises, whatever the sizes


def _valid_item(item: Any) -> None:
    assert isinstance(item, DownloadedOrder | SkippedOrder) and item.external_id
    if isinstance(item, SkippedOrder):
        assert item.reason
    elif item.order is None:
        assert item.error and item.fix
    else:
        _valid_order(item.order)


# ------------------------------------------------------------------------------------ Houzz
HOUZZ_ORDER = {
    "OrderId": "1656-9927-9120-7805", "Status": "Placed", "Created": "2026-05-01 12:30:00", "CustomerName": "Zoë",
    "Address": {"Address": "1 Rue Ste-Anne", "Address1": "", "City": "Québec", "State": "Quebec", "Zip": "G1R 3X2",
                "Country": "Canada", "Phone": "555"},
    "FlatShipping": "10.00", "OrderTotal": "241.60", "ShippingMethod": "Standard", "Comments": "leave at door",
    "OrderItems": [{"Type": "Product", "SKU": "SOFA", "ProductId": "77", "Title": "Sofa", "Quantity": "2",
                    "Price": "100.00", "Cost": "85.00", "Shipping": "5.00", "Tax": "8.00"}],
}


@HOSTILE
@given(raw=mutated(HOUZZ_ORDER), program=st.sampled_from(list(Program)))
def test_houzz_orders(raw: Any, program: Program) -> None:
    _valid_item(classify(raw, Rules(program, Status.NEW, None, UTC)))


# -------------------------------------------------------------------------------------- Wix
WIX_ORDER = build_order({"lines": [{"sku": "A-1", "quantity": 2, "price": "10.00", "taxRate": "0.21"}],
                         "shipping": {"title": "Express", "price": "4.95", "taxRate": "0.21"}},
                        number=10001, currency="EUR", now=datetime(2026, 5, 1, tzinfo=UTC), rng=random.Random(1))


@HOSTILE
@given(raw=mutated(WIX_ORDER))
def test_wix_orders(raw: Any) -> None:
    _valid_item(wix.to_download_item(raw, wix.Options()))


# ------------------------------------------------------------------------------- TradeGecko
TG_FULFILLMENT = {"id": 9, "order_id": 4, "status": "shipped", "tracking_number": "1Z999", "tracking_company": "UPS",
                  "service": "Ground", "shipped_at": "2026-05-02T10:00:00Z", "fulfillment_line_item_ids": [1]}
TG_LINES = [{"id": 1, "fulfillment_id": 9, "order_line_item_id": 3, "quantity": "2.0", "variant_id": 5,
             "variant_sku": "SOFA"}]
TG_VARIANT = {"id": 5, "sku": "SOFA", "status": "active", "manage_stock": True, "max_online": None,
              "stock_on_hand": "10", "committed_stock": "2", "available_stock": "8",
              "locations": [{"location_id": 1, "stock_on_hand": "10", "committed": "2", "available": "8"}]}


@HOSTILE
@given(ful=mutated(TG_FULFILLMENT), lines=mutated(TG_LINES), variant=mutated(TG_VARIANT))
def test_tradegecko_fulfillments_and_stock(ful: Any, lines: Any, variant: Any) -> None:
    try:
        shipment = tradegecko.map_fulfillment(ful, lines if isinstance(lines, list) else [lines], "REF-1", {5: "S"})
        levels = tradegecko.variant_stock(variant, {1: "Main"}, None, None)
    except ConnectorError as exc:
        assert exc.message
        return
    if isinstance(shipment, tradegecko.MappingFailure):
        assert shipment.error
    else:
        Shipment.model_validate(shipment.model_dump())
        json.dumps(shipment.model_dump(mode="json"), allow_nan=False)
    if isinstance(levels, tradegecko.MappingFailure):
        assert levels.error
    else:
        assert all(isinstance(level, StockLevel) for level in levels)


# ----------------------------------------------------------------------------------- Holded
HOLDED_DOC = {"id": "65f1c0ffee", "contact": "c1", "docNumber": "SO-1", "date": 1714557600, "notes": "orderbridge",
              "status": 0, "total": 24.2, "paymentsPending": 0, "approvedAt": 1714557600,
              "customFields": [{"field": "orderbridge_ref", "value": "REF-1"}],
              "products": [{"sku": "MUG-1", "units": 2, "price": 10, "desc": "Mug"}],
              "tracking": {"key": "ups", "num": "1Z1", "pickUpDate": "02/05/2026"}}
HOLDED_ITEMS = [{"name": "Mug", "sku": "MUG-1", "total": 2, "sent": 2, "pending": 0}]


@HOSTILE
@given(raw=mutated(HOLDED_DOC), items=mutated(HOLDED_ITEMS), detail=st.sampled_from(["order", "line", "unit"]))
def test_holded_documents_and_shipments(raw: Any, items: Any, detail: Any) -> None:
    doc = holded.parse(holded.Document, raw)
    shipped = holded.parse_list(holded.ShippedItem, items)
    if isinstance(doc, holded.Problem) or isinstance(shipped, holded.Problem):
        assert (doc.message if isinstance(doc, holded.Problem) else shipped.message)  # type: ignore[union-attr]
        return
    holded.reference_of(doc, "orderbridge_ref")
    for shipment in holded.shipments_from(doc, shipped, "REF-1", detail):
        Shipment.model_validate(shipment.model_dump())
        json.dumps(shipment.model_dump(mode="json"), allow_nan=False)
