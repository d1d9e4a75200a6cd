"""mapping.py: Houzz payloads -> canonical orders, skips or clear errors; never an exception."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder
from orderbridge.connectors.houzz.mapping import (
    Program,
    Rules,
    Status,
    cancellation,
    classify,
    normalize_status,
    survey_item,
)
from orderbridge.domain.models import Order

SELLER = Rules(Program.SELLER, Status.NEW, None, UTC)
VENDOR = Rules(Program.VENDOR, Status.CHARGED, None, UTC)


def seller_order(**fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "OrderId": "1656-9927-9120-7805", "Status": "Placed", "Created": "2026-05-01 12:30:00",
        "CustomerName": "Zoë Müller", "Commission": "30.00",
        "Address": {"Address": "1 Rue Ste-Anne", "Address1": "", "City": "Québec", "State": "Quebec",
                    "Zip": "G1R 3X2", "Country": "Canada", "Phone": "555"},
        "FlatShipping": "10.00", "OrderTotal": "241.60",
        "OrderItems": [{"Type": "Product", "SKU": "SOFA", "ProductId": "77", "Title": "Sofa", "Quantity": "2",
                        "Price": "100.00", "Cost": "85.00", "Shipping": "5.00", "Tax": "8.00"},
                       {"Type": "Coupon", "SKU": "SAVE", "Price": "-4.40"}],
    }
    raw.update(fields)
    return raw


def test_a_seller_order_maps_to_the_canonical_model() -> None:
    item = classify(seller_order(), SELLER)
    assert isinstance(item, DownloadedOrder) and item.order is not None, item
    o = item.order
    assert o.external_id == o.cust_po_no == "1656-9927-9120-7805"
    assert o.order_date == datetime(2026, 5, 1, 12, 30, tzinfo=UTC) and o.source_status == "Placed"
    assert o.ship_to.name == "Zoë Müller" and o.ship_to.state == "QC" and o.ship_to.country == "CA"
    assert o.bill_to == o.ship_to and not o.paid
    [line] = o.lines
    assert (line.sku, line.quantity, line.unit_price, line.tax) == ("SOFA", 2, Decimal("100.00"), Decimal("16.00"))
    t = o.totals
    assert (t.subtotal, t.shipping, t.tax, t.discount) == (Decimal("200.00"), Decimal("20.00"), Decimal("16.00"),
                                                          Decimal("4.40"))
    assert t.total == Decimal("241.60") and t.currency == "USD"
    assert o.extra["coupons"][0]["sku"] == "SAVE" and o.extra["program"] == "seller"
    assert item.raw["OrderId"] == "1656-9927-9120-7805"


def test_vendor_lines_use_the_wholesale_cost() -> None:
    raw = seller_order(Status="Charged", Allowance="3.00", OrderItems=[{"SKU": "V", "Quantity": "1", "Cost": "60"}])
    del raw["Commission"]
    item = classify(raw, VENDOR)
    assert isinstance(item, DownloadedOrder) and item.order
    assert item.order.lines[0].unit_price == Decimal("60") and item.order.paid
    assert item.order.totals.total == Decimal("70")  # cost + flat shipping; the buyer's total is not the vendor's


@pytest.mark.parametrize(("value", "status"), [
    ("Placed", Status.NEW), ("NEW", Status.NEW), ("In Production", Status.IN_PRODUCTION),
    ("Processing", Status.IN_PRODUCTION), ("Failed_To_Charge", Status.FAILED_TO_CHARGE),
    ("Cancelled", Status.CANCELED), ("canceled", Status.CANCELED), ("Refunded", None), (None, None), (3, None),
])
def test_status_spellings(value: Any, status: Status | None) -> None:
    assert normalize_status(value) == status


@pytest.mark.parametrize(("fields", "final", "words"), [
    ({"Status": "Shipped"}, True, "already shipped"),
    ({"Status": "Canceled"}, True, "cancelled at Houzz"),
    ({"Status": "FailedToCharge"}, False, "could not charge"),
    ({"Status": "Refunded"}, False, "unknown"),
    ({"Created": "2020-01-01 00:00:00"}, True, "earliest order date"),
    ({"Commission": None, "Allowance": "2.00"}, False, "looks like a Houzz Vendor order"),
])
def test_skip_reasons(fields: dict[str, Any], final: bool, words: str) -> None:
    raw = {k: v for k, v in seller_order(**fields).items() if v is not None}
    rules = Rules(Program.SELLER, Status.NEW, date(2025, 1, 1), UTC)
    item = classify(raw, rules)
    assert isinstance(item, SkippedOrder), item
    assert item.final is final and words in item.reason and item.external_id == "1656-9927-9120-7805"
    assert survey_item(raw, rules).not_eligible_reason == item.reason


def test_waiting_for_a_later_status_skips_earlier_ones_only() -> None:
    charged = Rules(Program.SELLER, Status.CHARGED, None, UTC)
    skipped = classify(seller_order(Status="InProduction"), charged)
    assert isinstance(skipped, SkippedOrder) and "waits for Charged" in skipped.reason and not skipped.final
    assert isinstance(classify(seller_order(Status="Charged"), charged), DownloadedOrder)
    later = classify(seller_order(Status="Charged"), Rules(Program.SELLER, Status.IN_PRODUCTION, None, UTC))
    assert isinstance(later, DownloadedOrder) and later.order  # past the awaited status: imported


def test_seller_orders_on_a_vendor_connection_are_flagged() -> None:
    for raw in (seller_order(), seller_order(Status="Charged")):
        item = classify(raw, VENDOR)
        assert isinstance(item, SkippedOrder) and "looks like a Houzz Seller order" in item.reason


@pytest.mark.parametrize(("fields", "words"), [
    ({"Address": None}, "no ship-to address"),
    ({"Address": "1 Main St"}, "no ship-to address"),
    ({"Address": {"Zip": "62701"}}, "neither a street address nor a city"),
    ({"OrderItems": []}, "no items"),
    ({"OrderItems": [{"Type": "Coupon", "Price": "-1"}]}, "no product lines"),
    ({"OrderItems": [{"Title": "Lamp", "Quantity": "1", "Price": "3"}]}, "Lamp) has no SKU"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "0", "Price": "3"}]}, "quantity of A"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1e9", "Price": "3"}]}, "quantity of A"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1.5", "Price": "3"}]}, "quantity of A"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1", "Price": "1e400"}]}, "not a plausible amount"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1", "Price": "NaN"}]}, "not a plausible amount"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1", "Price": "1e999999999"}]}, "not a plausible amount"),
    ({"OrderItems": [{"SKU": "A", "Quantity": 10**5000, "Price": "3"}]}, "quantity of A"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1", "Price": "-3"}]}, "negative"),
    ({"OrderItems": [{"SKU": "A", "Quantity": "1", "Price": "abc"}]}, "not a number"),
    ({"Created": "soon"}, "order date"),
    ({"Created": None}, "order date"),
])
def test_malformed_orders_become_errors_with_a_fix(fields: dict[str, Any], words: str) -> None:
    item = classify(seller_order(**fields), SELLER)
    assert isinstance(item, DownloadedOrder) and item.order is None, item
    assert words in item.error and item.fix and item.external_id == "1656-9927-9120-7805"


def test_orders_without_a_usable_id_get_a_stable_stand_in() -> None:
    raw = seller_order(OrderId="")
    first, second = classify(raw, SELLER), classify(dict(raw), SELLER)
    assert isinstance(first, SkippedOrder) and first.external_id == second.external_id
    assert first.external_id.startswith("houzz-unidentified-") and "OrderId" in first.reason
    assert classify(["not", "an", "object"], SELLER).external_id.startswith("houzz-unidentified-")


def test_created_is_read_in_the_account_time_zone() -> None:
    la = Rules(Program.SELLER, Status.NEW, None, ZoneInfo("America/Los_Angeles"))
    item = classify(seller_order(Created="2026-01-10 10:00:00"), la)
    assert isinstance(item, DownloadedOrder) and item.order
    assert item.order.order_date == datetime(2026, 1, 10, 18, 0, tzinfo=UTC)


def test_cancellation_reason_and_date() -> None:
    c = cancellation(seller_order(Status="Cancelled", CancelCode="2", CancelComments="changed my mind",
                                  CancelDate="2026-05-02 08:00:00"), UTC)
    assert c is not None and c.reason == "cancelled at Houzz: buyer requested; changed my mind"
    assert c.canceled_at == datetime(2026, 5, 2, 8, tzinfo=UTC)
    assert cancellation(seller_order(), UTC) is None
    assert cancellation(seller_order(Status="Canceled"), UTC).reason == "cancelled at Houzz"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------- properties

ODD_NUMBERS = ["", "0", "-1", "1e999", "NaN", "Infinity", "\uff11\uff12", "3.5", " 7 ", "$1,200.50"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(ODD_NUMBERS))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)
statuses = st.one_of(st.sampled_from(["Placed", "New", "InProduction", "Charged", "FailedToCharge", "Shipped",
                                      "Canceled", "Cancelled", "Refunded", ""]), json_values)
texts = st.one_of(st.text(max_size=40), st.text(alphabet="ÀéøßЖ中文🙂\u0000\u202e", max_size=20), json_values)
items = st.fixed_dictionaries(
    {}, optional={"Type": st.sampled_from(["Product", "Coupon", "product", "Gift"]), "SKU": texts,
                  "Quantity": st.one_of(st.integers(-5, 10**7).map(str), json_values),
                  "Price": st.one_of(st.decimals(allow_nan=True).map(str), json_values),
                  "Cost": json_values, "Shipping": json_values, "Tax": json_values, "Title": texts,
                  "ProductId": texts})
orders = st.fixed_dictionaries(
    {}, optional={
        "OrderId": st.one_of(st.text(max_size=120), st.integers(), json_values), "Status": statuses,
        "Created": st.one_of(st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")), json_values),
        "CustomerName": texts, "Address": st.one_of(st.fixed_dictionaries({}, optional={
            k: texts for k in ("Address", "Address1", "City", "State", "Zip", "Country", "Phone")}), json_values),
        "OrderItems": st.one_of(st.lists(items, max_size=4), json_values), "OrderTotal": json_values,
        "FlatShipping": json_values, "Commission": json_values, "Allowance": json_values,
        "ShippingMethod": texts, "Comments": texts, "CancelCode": json_values, "CancelDate": json_values,
    })
ORDER_KEYS = ["OrderId", "Status", "Created", "CustomerName", "OrderTotal", "FlatShipping", "Commission",
              "Allowance", "ShippingMethod", "Comments", "OrderItems", "Address"]
ADDRESS_KEYS = ["Address", "Address1", "City", "State", "Zip", "Country", "Phone"]
ITEM_KEYS = ["Type", "SKU", "Quantity", "Price", "Cost", "Shipping", "Tax", "Title", "ProductId"]


@st.composite
def near_valid_orders(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with a few fields (top level, address, first line) made adversarial or removed."""
    raw = seller_order(Status=draw(st.sampled_from(["Placed", "InProduction", "Charged"])))
    for key in draw(st.lists(st.sampled_from(ORDER_KEYS), max_size=2)):
        raw[key] = draw(texts)
    for key in draw(st.lists(st.sampled_from(ADDRESS_KEYS), max_size=3)):
        if isinstance(raw.get("Address"), dict):
            raw["Address"][key] = draw(st.one_of(texts, st.just("")))
    for key in draw(st.lists(st.sampled_from(ITEM_KEYS), max_size=3)):
        if isinstance(raw.get("OrderItems"), list) and raw["OrderItems"] and isinstance(raw["OrderItems"][0], dict):
            raw["OrderItems"][0][key] = draw(st.one_of(texts, st.just(""), st.just(None)))
    for key in draw(st.lists(st.sampled_from(ORDER_KEYS), max_size=1)):
        raw.pop(key, None)
    return raw


rules = st.builds(Rules, st.sampled_from(list(Program)), st.sampled_from([Status.NEW, Status.IN_PRODUCTION,
                                                                           Status.CHARGED]),
                  st.one_of(st.none(), st.dates()), st.sampled_from([UTC, ZoneInfo("America/Los_Angeles")]))


def _check(item: Any) -> None:
    if isinstance(item, SkippedOrder):
        assert item.reason and item.external_id
    else:
        assert isinstance(item, DownloadedOrder) and item.external_id
        assert (item.order is None) != (item.error == "")
        if item.order is not None:
            assert isinstance(item.order, Order) and item.order.lines
            assert item.order.order_date.tzinfo is not None and item.order.order_date.utcoffset().total_seconds() == 0
            assert item.order.cust_po_no == item.external_id
        else:
            assert item.fix


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=orders, rule=rules)
def test_adversarial_order_payloads_never_raise(raw: dict[str, Any], rule: Rules) -> None:
    _check(classify(raw, rule))
    survey_item(raw, rule)
    cancellation(raw, rule.tz)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=near_valid_orders(), rule=rules)
def test_nearly_valid_orders_map_or_fail_clearly(raw: dict[str, Any], rule: Rules) -> None:
    _check(classify(raw, rule))
    survey_item(raw, rule)


@settings(max_examples=150, deadline=None)
@given(raw=json_values, rule=rules)
def test_arbitrary_json_never_raises(raw: Any, rule: Rules) -> None:
    _check(classify(raw, rule))
    survey_item(raw, rule)
    cancellation(raw, rule.tz)


@settings(max_examples=100, deadline=None)
@given(qty=st.integers(1, 1000), price=st.decimals(0, 100_000, places=2), name=st.text(min_size=1, max_size=50))
def test_well_formed_orders_always_map(qty: int, price: Decimal, name: str) -> None:
    raw = seller_order(CustomerName=name, OrderTotal=None,
                       OrderItems=[{"SKU": "X", "Quantity": str(qty), "Price": str(price)}])
    item = classify({k: v for k, v in raw.items() if v is not None}, SELLER)
    assert isinstance(item, DownloadedOrder) and item.order is not None, item
    assert item.order.lines[0].quantity == qty and item.order.totals.subtotal == price * qty
