"""Property tests of mapping.py: any Wix payload gives a valid Order, a skip or a clear error."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder
from orderbridge.connectors.errors import DataError
from orderbridge.connectors.wix import mapping
from orderbridge.connectors.wix.sandbox_orders import build_order
from orderbridge.domain.models import Order, Shipment

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTS = mapping.Options()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "2026-13-45T99:99:99Z", "2026-05-01T10:00:00",
                     "2026-05-01T10:00:00Z", "PAID", "CANCELED", "INITIALIZED", "FULLY_REFUNDED", "0.21", "21"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4),
    st.fixed_dictionaries({"amount": inner})), max_leaves=12)


def valid_order(seed: int = 1, **spec: Any) -> dict[str, Any]:
    spec.setdefault("lines", [{"sku": "A-1", "quantity": 2, "price": "10.00", "taxRate": "0.21"},
                              {"sku": "B-2", "quantity": 1, "price": "5.50", "taxRate": "0.10", "discount": "0.50"}])
    spec.setdefault("shipping", {"title": "Express", "price": "4.95", "taxRate": "0.21"})
    return build_order(spec, number=10001, currency="EUR", now=datetime(2026, 5, 1, tzinfo=UTC),
                       rng=random.Random(seed))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


BASE = valid_order()
PATHS = _paths(BASE)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def _check(item: Any) -> None:
    assert isinstance(item, DownloadedOrder | SkippedOrder)
    assert item.external_id
    if isinstance(item, SkippedOrder):
        assert item.reason
    elif item.order is None:
        assert item.error and item.fix
    else:
        assert isinstance(item.order, Order)
        Order.model_validate(item.order.model_dump())  # round-trips as a valid canonical order
        assert item.order.order_date.tzinfo is not None


@FAST
@given(json_values)
def test_any_json_is_handled(raw: Any) -> None:
    _check(mapping.to_download_item(raw, OPTS))


@FAST
@given(st.dictionaries(st.sampled_from(sorted(BASE)), json_values, max_size=8))
def test_adversarial_top_level_fields(fields: dict[str, Any]) -> None:
    _check(mapping.to_download_item({**BASE, **fields}, OPTS))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3),
       st.sampled_from(["error", "product_id", "skip_line"]))
def test_adversarial_nested_values(mutations: list[tuple[tuple[Any, ...], Any]], missing_sku: str) -> None:
    doc = BASE
    for path, value in mutations:
        try:
            doc = _set(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    item = mapping.to_download_item(doc, mapping.Options(missing_sku=missing_sku))
    _check(item)
    mapping.survey_item(doc, OPTS)
    mapping.cancellation(doc)


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2)


@FAST
@given(st.lists(st.tuples(st.integers(1, 20), money, st.sampled_from(["0", "0.04", "0.10", "0.21"]),
                          st.integers(0, 50)), min_size=1, max_size=5),
       st.booleans(), st.sampled_from(["PAID", "NOT_PAID", "PARTIALLY_REFUNDED", "PENDING"]))
def test_well_formed_orders_keep_their_money(lines: list[Any], tax_included: bool, payment: str) -> None:
    spec_lines = [{"sku": f"S{i}", "quantity": q, "price": str(p), "taxRate": r,
                   "discount": str(min(p * q, Decimal(d)) / 2)} for i, (q, p, r, d) in enumerate(lines)]
    raw = valid_order(lines=spec_lines, taxIncludedInPrices=tax_included, paymentStatus=payment)
    item = mapping.to_download_item(raw, OPTS)
    assert isinstance(item, DownloadedOrder) and item.order is not None, getattr(item, "error", "")
    order = item.order
    assert order.paid == (payment in ("PAID", "PARTIALLY_REFUNDED"))
    assert [ln.external_line_id for ln in order.lines] == [li["id"] for li in raw["lineItems"]]
    for ln, li in zip(order.lines, raw["lineItems"], strict=True):
        after_tax = Decimal(li["totalPriceAfterTax"]["amount"])
        # unit price and discount are net of tax; the line adds back up to what the buyer paid
        assert abs(ln.line_total - after_tax) <= Decimal("0.01") * (ln.quantity + 1)
    assert order.totals.total == Decimal(raw["priceSummary"]["total"]["amount"])


def test_status_rules() -> None:
    def status(**kw: Any) -> Any:
        return mapping.to_download_item({**BASE, **kw}, OPTS)
    assert isinstance(status(status="CANCELED"), SkippedOrder) and status(status="CANCELED").final
    assert status(paymentStatus="FULLY_REFUNDED").final
    assert not status(status="INITIALIZED").final
    assert not status(paymentStatus="DECLINED").final
    assert status(status="REJECTED").final
    pending = status(paymentStatus="PENDING", status="PENDING")
    assert isinstance(pending, DownloadedOrder) and pending.order is not None and not pending.order.paid
    paid_only_opts = mapping.Options(import_orders="paid_only")
    paid_only = mapping.to_download_item({**BASE, "paymentStatus": "NOT_PAID"}, paid_only_opts)
    assert isinstance(paid_only, SkippedOrder) and not paid_only.final
    no_partial = mapping.Options(partially_refunded_is_paid=False)
    item = mapping.to_download_item({**BASE, "paymentStatus": "PARTIALLY_REFUNDED"}, no_partial)
    assert isinstance(item, DownloadedOrder) and item.order is not None and not item.order.paid


def test_address_variants_and_tax_included_prices() -> None:
    gross = [{"sku": "A", "quantity": 1, "price": "12.10", "taxRate": "0.21"}]
    raw = valid_order(taxIncludedInPrices=True, lines=gross)
    raw["shippingInfo"]["logistics"]["shippingDestination"]["address"] = {
        "addressLine": "Old style 7", "city": "Sevilla", "country": "es", "subdivision": "ES-SE"}
    item = mapping.to_download_item(raw, OPTS)
    assert isinstance(item, DownloadedOrder) and item.order is not None
    o = item.order
    assert (o.ship_to.address1, o.ship_to.state, o.ship_to.country) == ("Old style 7", "SE", "ES")
    assert o.lines[0].unit_price == Decimal("10.0000") and o.lines[0].tax == Decimal("2.10")
    pickup = valid_order()
    pickup["shippingInfo"]["logistics"] = {"pickupDetails": {"address": {"addressLine1": "Shop 1", "city": "Bilbao"},
                                                             "pickupMethod": "STORE_PICKUP"}}
    p = mapping.to_download_item(pickup, OPTS)
    assert isinstance(p, DownloadedOrder) and p.order is not None
    assert p.order.ship_to.city == "Bilbao" and p.order.extra["pickup"] and p.order.ship_to.name


@FAST
@given(st.dictionaries(st.sampled_from(["eventType", "instanceId", "data", "identity"]), json_values, max_size=4),
       json_values)
def test_webhook_envelopes_never_crash(envelope: dict[str, Any], inner: Any) -> None:
    import json

    for candidate in (envelope, {**envelope, "data": json.dumps(inner, default=str)}):
        try:
            event = mapping.webhook_event(candidate, "fallback")
        except DataError:
            continue
        assert event.event_id and event.kind in ("order", "cancel")


@FAST
@given(st.lists(json_values, max_size=4), st.lists(st.tuples(st.sampled_from(["A-1", "B-2", "X"]),
                                                             st.integers(1, 5)), max_size=3))
def test_fulfillment_plans_never_crash(existing: list[Any], lines: list[tuple[str, int]]) -> None:
    shipment = Shipment(external_id="S", order_ref="R", carrier="ups", tracking_numbers=["T"],
                        lines=[{"sku": s, "quantity": q} for s, q in lines])
    plan = mapping.plan_fulfillments(BASE, shipment, [e for e in existing if isinstance(e, dict)], OPTS)
    for planned in plan.to_create:
        assert planned.fulfillment["lineItems"]
        assert all(li["quantity"] > 0 for li in planned.fulfillment["lineItems"])


@pytest.mark.parametrize(("carrier", "provider"), [
    ("UPS", "ups"), ("United Parcel Service", "ups"), ("FedEx 2Day", "fedex"), ("USPS Priority", "usps"),
    ("us postal service", "usps"), ("DHL_Express", "dhl"), ("Canada Post", "canadaPost"), ("SEUR", "SEUR"),
])
def test_carriers(carrier: str, provider: str) -> None:
    assert mapping.provider_for(carrier, {}) == provider
    assert mapping.provider_for(carrier, {carrier.lower(): "custom"}) == "custom"
