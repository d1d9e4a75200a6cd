"""Hostile payloads against the newer connectors' translation: JOOR's order and inventory mapping, and
the CartRover-compatible API's cart order create (a pushed JSON object, JSON array or PHP-style form
body -> the canonical order). The answer is a valid order, the connector's clear data error, a skip
with its reason, or the API's error envelope; never another exception. Valid orders are storable as
they are: no NUL and no lone surrogate in any text (PostgreSQL refuses both in text columns)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from orderbridge.api.envelope import ApiFailure
from orderbridge.api.parsing import parse_body
from orderbridge.api.records import order_record
from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder
from orderbridge.connectors.cartrover import mapping as cartrover
from orderbridge.connectors.joor import mapping as joor
from tests.security.test_hostile_input import HOSTILE, _valid_item, hostile, huge, mutated, odd_text

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
# Beyond the shared hostile values: numbers past Decimal's exponent limit, dates a zone pushes off the
# calendar, digits int() refuses, and the characters PostgreSQL's text columns refuse.
EXTREME = st.sampled_from(["9e999999", "1e999999999", "-1e999999999", "1e-999999999", "0001-01-01T00:00:00+14:00",
                           "9999-12-31T23:59:59-14:00", "0001-01-01", "\u00b2", "\u0661\u0662", "9" * 5000,
                           "\x00", "A\x00B", "\ud83d", "\n", 10**400, -(10**400)])
VALUES = hostile | EXTREME


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _storable(*texts: str) -> None:
    for text in texts:
        assert "\x00" not in text, text[:80]
        text.encode("utf-8")  # no lone surrogate


def _valid_storable_item(item: DownloadItem) -> None:
    _valid_item(item)
    _storable(item.external_id, item.source_status)
    if isinstance(item, SkippedOrder):
        _storable(item.reason)
    elif item.order is None:
        _storable(item.error, item.fix)
    else:
        _storable(*_strings(item.order.model_dump(mode="json")))


# -------------------------------------------------------------------------------------- JOOR
JOOR_ORDER = {
    "order_id": 4810001, "status": "Approved", "order_date": "2026-03-02T14:05:11Z",
    "modified_date": "2026-03-03T09:00:00.000Z", "customer_code": "RT-1", "customer_name": "Bloom Boutique",
    "customer_group_name": "Boutiques", "buyer_name": "Nina", "buyer_email": "nina@example.com",
    "buyer_phone": "555", "po_number": "PO-77", "warehouse_code": "MAIN", "currency_code": "usd",
    "order_total": "262.50", "order_discount": "-7.50", "shipping_cost": "30.00", "notes": "ship together",
    "shipping_method": "UPS Ground", "start_ship_date": "2026-04-01", "payment_terms": "Net 30",
    "shipping_address": {"name": "Nina", "company": "Bloom", "address_1": "215 King St", "address_2": "Suite 4",
                         "address_3": "", "city": "Charleston", "state": "SC", "postal_code": "29401",
                         "country": "United States", "phone": "555"},
    "billing_address": {"name": "Accounts", "address_1": "1 Bay St", "city": "Charleston", "zip": "29401",
                        "country": "US"},
    "line_items": [{"line_id": "7", "style_number": "ST1", "color_code": "001", "size": "M", "upc": "0123",
                    "quantity": 6, "price": "40.00", "style_name": "Dress", "color_name": "Black"},
                   {"line_id": 8, "style_number": "ST2", "color_code": "002", "size": "L", "upc": 456,
                    "quantity": "1", "price": 5}],
}
JOOR_RULES = st.builds(
    lambda order_type, sku_field, warehouse, skip_empty, earliest: joor.Rules(
        order_type=order_type, order_type_label=f"type {order_type}", warehouse_code=warehouse,
        skip_empty_customer_code=skip_empty, sku_field=sku_field, earliest=earliest),
    st.sampled_from(sorted(joor.ORDER_TYPE_STATUSES)), st.sampled_from(["upc", "style_color_size"]),
    st.sampled_from(["", "MAIN", "main"]), st.booleans(), st.none() | st.just(date(2026, 1, 1)))


def _joor_entry(raw: Any, rules: joor.Rules) -> None:
    _valid_storable_item(joor.classify(raw, rules))
    survey = joor.survey_item(raw, rules)  # diagnose reads every entry too
    assert survey.external_id
    cancel = joor.cancellation(raw)
    assert cancel is None or cancel.external_id


@HOSTILE
@given(raw=mutated(JOOR_ORDER, VALUES), rules=JOOR_RULES)
def test_joor_orders(raw: Any, rules: joor.Rules) -> None:
    _joor_entry(raw, rules)


@HOSTILE
@given(raw=hostile | st.dictionaries(st.sampled_from(sorted(JOOR_ORDER)), VALUES, max_size=6), rules=JOOR_RULES)
def test_joor_entries_of_any_shape(raw: Any, rules: joor.Rules) -> None:
    _joor_entry(raw, rules)


# A date at the edge of the calendar with a zone that moves it past the edge: found by the tests above.
EDGE_DATES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:30:00+01:00"]


def test_joor_dates_past_the_calendar_are_errors_not_crashes() -> None:
    rules = joor.Rules(order_type=6, order_type_label="Approved Orders")
    for when in EDGE_DATES:
        item = joor.classify({**JOOR_ORDER, "order_date": when}, rules)
        assert isinstance(item, DownloadedOrder) and item.order is None and "out of range" in item.error, when
        assert joor.cancellation({**JOOR_ORDER, "status": "Cancelled", "modified_date": when}) is not None
    for oid in ("A\x00B", "\ud800", "x" * 101):
        item = joor.classify({**JOOR_ORDER, "order_id": oid}, rules)
        assert isinstance(item, SkippedOrder) and "order_id" in item.reason and item.external_id.isascii()


INVENTORY_RULES = st.builds(lambda sku_field, sep: joor.Rules(order_type=6, order_type_label="x", sku_field=sku_field,
                                                              sku_separator=sep),
                            st.sampled_from(["upc", "style_color_size"]), st.sampled_from(["-", "/", "::", " "]))
INVENTORY_LOG = [{"status": "pass", "message": "ok", "upc": "0123"}, {"status": "fail", "message": "unknown UPC"}]


@HOSTILE
@given(skus=st.lists(odd_text | huge, min_size=1, max_size=4, unique=True),
       quantities=st.lists(st.integers(-(10**12), 10**12), min_size=4, max_size=4), rules=INVENTORY_RULES,
       log=mutated(INVENTORY_LOG, VALUES) | st.lists(VALUES, max_size=4))
def test_joor_inventory(skus: list[str], quantities: list[int], rules: joor.Rules, log: Any) -> None:
    for sku, quantity in zip(skus, quantities, strict=False):
        item = joor.inventory_item(sku, quantity, rules, "MAIN")
        if isinstance(item, str):
            assert "SKU" in item
            continue
        assert item["warehouse"] == "MAIN" and isinstance(item["inventory"], int) and item["inventory"] >= 0
        json.dumps(item, allow_nan=False)
    entries = log if isinstance(log, list) else [log]
    refused = joor.inventory_refusals(skus, entries)
    assert set(refused) <= set(skus) and all(isinstance(r, str) and r for r in refused.values())
    # a SKU without a "pass" entry is never taken as applied
    passed = {sku for i, sku in enumerate(skus) if i < len(entries) and isinstance(entries[i], dict)
              and str(entries[i].get("status", "")).strip().lower() == "pass"}
    assert set(skus) - passed == set(refused)


# ---------------------------------------------------------------------------- CartRover cart
CART_ORDER = {
    "cust_ref": "WEB-1001", "cust_po_no": "PO-1001", "order_date": "2026-05-01T10:00:00+02:00",
    "ship_company": "Acme", "ship_first_name": "Ada", "ship_last_name": "Lovelace", "ship_address_1": "1 Main St",
    "ship_address_2": "Apt 2", "ship_city": "Springfield", "ship_state": "IL", "ship_zip": "62701",
    "ship_country": "USA", "ship_phone": "555", "ship_e_mail": "ada@example.com", "ship_is_billing": "N",
    "cust_first_name": "Bob", "cust_address_1": "2 Side St", "cust_city": "Springfield", "cust_country": "CAN",
    "ship_code": "Ground", "shipping_instructions": "leave at door", "customer_id": "C-9", "currency_code": "USD",
    "sub_total": "20.00", "shipping_handling": "4.95", "sales_tax": "1.65", "order_discount": "0",
    "grand_total": "26.60", "order_source": "web", "gift_message": "hi", "credit_card_no": "4111111111111111",
    "extra_fields": {"channel": "b2c"},
    "items": [{"item": "SKU-1", "quantity": 2, "price": "10.00", "discount": "0.50", "tax": "0.80",
               "line_item_id": "L1", "description": "Mug", "shipping_surcharge": "1.00", "lot_number": "LOT-4",
               "extra_fields": {"gift": "Y"}},
              {"sku": "SKU-2", "quantity": "1", "price": 0, "addl_discount": "0"}],
}
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "", "text/plain; charset=utf-8"]


def _php_pairs(value: Any, prefix: str, indexed: bool) -> list[tuple[str, str]]:
    """A nested value as PHP/Rails-style form pairs (how rest-client and PHP's http_build_query send them)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _php_pairs(v, f"{prefix}[{k}]" if prefix else str(k), indexed)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _php_pairs(v, f"{prefix}[{i if indexed else ''}]", indexed)]
    return [(prefix, "" if value is None else str(value))]


@st.composite
def cart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A create-order body as a cart may send it: JSON object, JSON array, or form, from hostile orders."""
    orders = draw(st.lists(mutated(CART_ORDER, VALUES) | VALUES, min_size=1, max_size=3))
    shape = draw(st.sampled_from(["object", "array", "form", "indexed form", "text"]))
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    if shape == "object":
        return json.dumps(orders[0], allow_nan=True).encode(), ctype
    if shape == "array":
        return json.dumps(orders, allow_nan=True).encode(), ctype
    if shape == "text":
        return draw(st.binary(max_size=200) | odd_text.map(lambda s: s.encode("utf-8", "surrogatepass"))), ctype
    order = orders[0] if isinstance(orders[0], dict) else {"cust_ref": orders[0]}
    pairs = _php_pairs(order, "", shape == "indexed form")
    raw_pairs = [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in pairs]
    return urlencode(raw_pairs).encode(), ctype


FORM_NOISE = st.text(alphabet="[]=&%0123abc_ ;+\x00", max_size=60).map(
    lambda s: ("cust_ref=R&ship_city=X&items[][item]=A&items[][quantity]=1&" + s).encode())


def _row(item: DownloadedOrder) -> Any:
    """The ledger's row of a pushed order, as the API's order queries return it."""
    assert item.order is not None
    return SimpleNamespace(
        raw=json.loads(json.dumps(item.raw, default=str)), source_type="cartrover_cart",
        data=item.order.model_dump(mode="json"), external_id=item.external_id, cust_ref=item.external_id,
        cust_po_no=item.order.cust_po_no, source_name="cart", created_at=NOW, updated_at=NOW, id=1,
        queue_service="", queue_carrier="", error_code="", error_message="", error_fix="", canceled_at=None,
        to_wms_at=None, sending_canceled=False, on_hold=False, api_status="new", queue_lines=None)


def _push(body: bytes, content_type: str, earliest: date | None = None) -> list[str | DownloadItem]:
    """What POST cart/orders/cartrover does with a body before the ledger: each order refused with a
    message (the envelope's), or handed to the intake as a download item."""
    try:
        data = parse_body(body, content_type)
    except ApiFailure as exc:
        assert exc.message and exc.code == "Invalid"
        return [exc.message]
    out: list[str | DownloadItem] = []
    for raw in data if isinstance(data, list) else [data]:
        problem = cartrover.refusal(raw)
        if problem:
            out.append(problem)
            continue
        item = cartrover.pushed_order(raw, now=NOW, earliest=earliest)
        _valid_storable_item(item)
        assert isinstance(item, DownloadedOrder | SkippedOrder)
        assert not set(cartrover.SECRET_FIELDS) & set(item.raw)
        if isinstance(item, DownloadedOrder) and item.order is not None:
            record = order_record(_row(item), [], cart_level=True, order_extras=True, line_extras=True,
                                  aliases={"SKU-1": ["A"]})
            json.dumps(record, allow_nan=False)  # the read-back is strict JSON
            assert record["cust_ref"] == item.external_id and len(record["items"]) == len(item.order.lines)
        out.append(item)
    return out


@HOSTILE
@given(body=cart_bodies(), earliest=st.none() | st.just(date(2026, 1, 1)))
def test_cart_order_create(body: tuple[bytes, str], earliest: date | None) -> None:
    for result in _push(*body, earliest=earliest):
        assert result  # a message, or an item already checked


@HOSTILE
@given(body=FORM_NOISE)
def test_cart_order_form_noise(body: bytes) -> None:
    assert _push(body, "application/x-www-form-urlencoded")


def test_cart_orders_that_broke_the_translation_are_now_clear_errors() -> None:
    def only(body: bytes, ctype: str = "application/json") -> str | DownloadItem:
        results = _push(body, ctype)
        assert len(results) == 1
        return results[0]

    def error_of(raw: dict[str, Any]) -> str:
        item = only(json.dumps({**CART_ORDER, **raw}).encode())
        assert isinstance(item, DownloadedOrder) and item.order is None and item.fix
        return item.error

    line = CART_ORDER["items"][0]
    assert "plausible" in error_of({"items": [{**line, "discount": "9e999999"}]})  # decimal.Overflow before
    assert "quantity" in error_of({"items": [{**line, "quantity": "1e999999999"}]})  # a 10**999999999 int before
    assert "plausible" in error_of({"grand_total": "1e999999999"})
    for when in EDGE_DATES:
        assert "order_date" in error_of({"order_date": when})  # OverflowError before
    for key in ("²", "9" * 5000, "x"):  # int() of a non-ASCII digit / 5000 digits before
        body = f"cust_ref=R&ship_city=X&items[{key}][item]=A&items[{key}][quantity]=1".encode()
        item = only(body, "application/x-www-form-urlencoded")
        assert isinstance(item, DownloadedOrder) and item.order is not None and item.order.lines[0].sku == "A"
    refused = only(b'{"cust_ref": "R\\ud800", "items": [{"item": "A", "quantity": 1}]}')
    assert isinstance(refused, str) and "surrogate" in refused
    for ref in ("A\x00B", "A\nB"):
        refused = only(json.dumps({**CART_ORDER, "cust_ref": ref}).encode())
        assert isinstance(refused, str) and "control characters" in refused
    item = only(json.dumps({**CART_ORDER, "ship_city": "Spring\x00field"}).encode())
    assert isinstance(item, DownloadedOrder) and item.order is not None and item.order.ship_to.city == "Springfield"
