"""Property tests of the TradeGecko mapping: any payload gives a valid model or a clear failure."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tg_support import delivery

from orderbridge.connectors.errors import DataError
from orderbridge.connectors.tradegecko import mapping
from orderbridge.connectors.tradegecko.connector import TradeGeckoSettings
from orderbridge.domain.models import Address, Shipment, StockLevel

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["1.0", "2.5", "-3", "0", "1e3", "NaN", "", " 7 ", "2026-01-02T03:04:05Z"]),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=8)

FULFILLMENT_KEYS = ["id", "order_id", "status", "tracking_number", "tracking_company", "service", "shipped_at",
                    "updated_at", "fulfillment_line_item_ids"]
LINE_KEYS = ["id", "fulfillment_id", "order_line_item_id", "quantity", "variant_id", "variant_sku"]
VARIANT_KEYS = ["id", "sku", "status", "manage_stock", "max_online", "stock_on_hand", "committed_stock",
                "available_stock", "locations", "stock_levels", "committed_stock_levels"]
LOCATION_KEYS = ["location_id", "stock_on_hand", "committed", "available"]


def records(keys: list[str], extra: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: (extra if extra is not None and k == "locations" else json_values)
                                               for k in keys})


location_entries = st.lists(st.one_of(records(LOCATION_KEYS), json_values), max_size=4)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ful=st.one_of(records(FULFILLMENT_KEYS), json_values), lines=st.lists(
    st.one_of(records(LINE_KEYS), json_values), max_size=4), ref=st.text(max_size=10),
    skus=st.dictionaries(st.integers(0, 5), st.text(max_size=6), max_size=3))
def test_any_fulfillment_maps_to_a_shipment_or_a_failure(ful: Any, lines: list[Any], ref: str,
                                                         skus: dict[int, str]) -> None:
    result = mapping.map_fulfillment(ful, lines, ref, skus)
    if isinstance(result, mapping.MappingFailure):
        assert result.error and result.external_id
        return
    assert isinstance(result, Shipment)
    Shipment.model_validate(result.model_dump())
    assert all(q > 0 for q in result.quantities().values())
    assert result.shipped_at is None or result.shipped_at.utcoffset() is not None


@settings(max_examples=200)
@given(
    lines=st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 50)), min_size=1, max_size=6),
    tracking=st.lists(st.from_regex(r"[A-Z0-9]{4,10}", fullmatch=True), max_size=3),
)
def test_well_formed_fulfillments_keep_quantities_and_tracking(lines: list[tuple[str, int]],
                                                               tracking: list[str]) -> None:
    ful = {"id": 7, "order_id": 3, "tracking_number": ", ".join(tracking), "tracking_company": "UPS",
           "shipped_at": "2026-01-02T03:04:05.123Z"}
    wire = [{"id": i, "quantity": f"{q}.0", "variant_sku": sku} for i, (sku, q) in enumerate(lines)]
    result = mapping.map_fulfillment(ful, wire, "REF", {})
    assert isinstance(result, Shipment)
    expected: dict[str, int] = {}
    for sku, q in lines:
        if q:
            expected[sku] = expected.get(sku, 0) + q
    assert result.quantities() == expected
    assert result.tracking_numbers == tracking and result.all_tracking() == list(dict.fromkeys(tracking))
    assert (result.external_id, result.backend_order_id, result.order_ref) == ("7", "3", "REF")


def test_fulfillment_line_without_sku_or_with_fractional_quantity_fails_clearly() -> None:
    no_sku = mapping.map_fulfillment({"id": 1}, [{"id": 9, "quantity": "1", "variant_id": 4}], "R", {})
    assert isinstance(no_sku, mapping.MappingFailure) and "no SKU" in no_sku.error
    named = mapping.map_fulfillment({"id": 1}, [{"id": 9, "quantity": "1", "variant_id": 4}], "R", {4: "S-4"})
    assert isinstance(named, Shipment) and named.quantities() == {"S-4": 1}
    half = mapping.map_fulfillment({"id": 1}, [{"id": 9, "quantity": "1.5", "variant_sku": "X"}], "R", {})
    assert isinstance(half, mapping.MappingFailure) and "1.5" in half.error


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.one_of(records(VARIANT_KEYS, location_entries), json_values),
       counted=st.none() | st.sets(st.integers(1, 4), min_size=1, max_size=3),
       untracked=st.none() | st.integers(0, 100))
def test_any_variant_maps_to_stock_levels_or_a_failure(variant: Any, counted: set[int] | None,
                                                       untracked: int | None) -> None:
    labels = {1: "Main", 2: "East", 3: "West"}
    result = mapping.variant_stock(variant, labels, counted, untracked)
    if isinstance(result, mapping.MappingFailure):
        assert result.error
        return
    for level in result:
        assert isinstance(level, StockLevel) and level.sku and level.available >= 0
    if counted is not None and result and result[0].warehouse != "untracked":
        assert {x.warehouse for x in result} == {labels.get(i, str(i)) for i in counted}
    cap = mapping.number(variant.get("max_online")) if isinstance(variant, dict) else None
    if cap is not None and cap >= 0 and result:
        assert sum(x.available for x in result) <= mapping.whole(cap)


def test_variant_stock_per_location_and_legacy_shapes() -> None:
    labels = {1: "Main", 2: "East"}
    modern = {"id": 1, "sku": "A", "locations": [
        {"location_id": 1, "stock_on_hand": "10.0", "committed": "3.0", "available": "7.0"},
        {"location_id": 2, "stock_on_hand": "2", "committed": "5", "available": None}]}
    levels = mapping.variant_stock(modern, labels, None, None)
    assert isinstance(levels, list)
    assert [(x.warehouse, x.on_hand, x.committed, x.available) for x in levels] == [
        ("Main", 10, 3, 7), ("East", 2, 5, 0)]
    legacy = {"id": 2, "sku": "B", "stock_levels": {"1": 4.0}, "committed_stock_levels": {"1": 1.0}}
    levels = mapping.variant_stock(legacy, labels, {1}, None)
    assert isinstance(levels, list) and [(x.warehouse, x.available) for x in levels] == [("Main", 3)]
    capped = mapping.variant_stock({**modern, "max_online": "5"}, labels, None, None)
    assert isinstance(capped, list) and sum(x.available for x in capped) == 5
    assert mapping.variant_stock({**modern, "status": "archived"}, labels, None, None) == []


@settings(max_examples=200)
@given(skus=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=5),
       matches=st.dictionaries(st.text(min_size=1, max_size=4), st.lists(st.fixed_dictionaries(
           {"id": st.integers(1, 5)}, optional={"status": st.sampled_from(["active", "archived"])}), max_size=3)))
def test_sku_resolution_resolves_all_or_names_the_problem(skus: list[str], matches: dict[str, Any]) -> None:
    try:
        resolved = mapping.resolve_variants(skus, matches)
    except DataError as exc:
        assert exc.code in ("unknown_sku", "ambiguous_sku") and exc.fix
        assert any(s in exc.message for s in skus)
        return
    assert set(resolved) == set(skus)


addresses = st.builds(
    Address, name=st.text(max_size=20), address1=st.text(min_size=1, max_size=30), city=st.text(max_size=15),
    zip=st.text(max_size=8), country=st.sampled_from(["US", "GB", "", "Canada"]), email=st.emails() | st.just(""),
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(address=addresses, taken=st.lists(st.text(max_size=30), max_size=5))
def test_address_labels_are_unique_and_payloads_match_their_address(address: Address, taken: list[str]) -> None:
    label = mapping.address_label(address, taken)
    assert label not in taken and len(label) <= 100
    payload = mapping.address_payload(address, label)
    if address.address1.strip():
        assert mapping.address_matches(payload, address)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(quantities=st.lists(st.integers(1, 1000), min_size=1, max_size=5),
       price=st.decimals(min_value=0, max_value=10_000, places=2),
       shipping=st.decimals(min_value=0, max_value=100, places=2),
       field=st.sampled_from(["notes", "order_number", "tags", "none"]))
def test_order_payload_keeps_every_unit_and_the_reference(quantities: list[int], price: Decimal,
                                                          shipping: Decimal, field: str) -> None:
    req = delivery("REF-1", [(f"S{i}", q) for i, q in enumerate(quantities)])
    order = req.order.model_copy(update={
        "lines": [ln.model_copy(update={"unit_price": price}) for ln in req.order.lines],
        "totals": req.order.totals.model_copy(update={"shipping": shipping})})
    req.order = order
    opts = TradeGeckoSettings(order_number_field=field)  # type: ignore[arg-type]
    variants = {f"S{i}": 100 + i for i in range(len(quantities))}
    body = mapping.order_payload(req, variants, mapping.Customer(company_id=5, shipping_address_id=6), opts)
    json.dumps(body)
    sent = body["order"]
    assert sent["reference_number"] == "REF-1" and sent["company_id"] == 5
    product = [ln for ln in sent["order_line_items"] if not ln.get("freeform")]
    assert [int(ln["quantity"]) for ln in product] == quantities
    assert all(Decimal(ln["price"]) == price for ln in product)
    shipping_lines = [ln for ln in sent["order_line_items"] if ln.get("line_type") == "shipping"]
    assert len(shipping_lines) == 1 and Decimal(shipping_lines[0]["price"]) == shipping
    full = "HOUZZ-REF-1-0001"
    placed = {"notes": full in sent.get("notes", ""), "order_number": sent.get("order_number") == full,
              "tags": full in sent.get("tags", []), "none": full not in json.dumps(sent)}
    assert placed[field]


def test_line_discount_becomes_a_percentage() -> None:
    req = delivery("DISC", [("S", 4)])
    req.order.lines[0].discount = Decimal("10.50")  # of 4 x 10.50 = 42.00
    body = mapping.order_payload(req, {"S": 1}, mapping.Customer(company_id=1, shipping_address_id=1),
                                 TradeGeckoSettings())
    assert body["order"]["order_line_items"][0]["discount"] == "25"


@pytest.mark.parametrize("value", [None, True, "x", float("nan"), "1e400000"])
def test_number_rejects_non_numbers(value: Any) -> None:
    assert mapping.number(value) is None
