"""Property tests of the Holded mapping: any payload reads into a valid view or a clear Problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbridge.connectors.holded import mapping
from orderbridge.domain.models import Address, Order, OrderLine, Shipment, Totals

json_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(
    max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=8)
numberish = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from(
    ["3.380,67", "12", "", "abc", "1e3", "-0"]) | st.none()

document_like = st.fixed_dictionaries(
    {"id": st.text(min_size=0, max_size=24) | st.integers(0, 10**6) | st.none()},
    optional={
        "contact": json_scalars, "docNumber": json_scalars, "date": numberish, "notes": json_scalars,
        "status": numberish, "total": numberish, "paymentsPending": numberish, "approvedAt": numberish,
        "customFields": st.lists(st.fixed_dictionaries({}, optional={"field": json_scalars, "value": json_scalars}),
                                 max_size=3) | json_values,
        "products": st.lists(st.fixed_dictionaries({}, optional={
            "sku": json_scalars, "units": numberish, "price": numberish, "desc": json_scalars}), max_size=3),
        "tracking": st.none() | st.fixed_dictionaries({}, optional={"key": json_scalars, "num": json_scalars,
                                                                    "pickUpDate": json_scalars}),
        "extra": json_values,
    },
)
contact_like = st.fixed_dictionaries(
    {"id": json_scalars}, optional={"customId": json_scalars, "email": json_scalars, "code": json_scalars,
                                    "name": json_values, "billAddress": json_values})


@given(document_like | json_values)
@settings(max_examples=300, deadline=None)
def test_any_document_payload_reads_or_says_why(raw: Any) -> None:
    doc = mapping.parse(mapping.Document, raw)
    if isinstance(doc, mapping.Problem):
        assert doc.message.startswith("Holded")
        return
    assert doc.id and isinstance(doc.pending, Decimal) and doc.pending.is_finite()
    mapping.reference_of(doc, "orderbridge_ref")  # never raises
    assert isinstance(doc.is_draft, bool)


@given(contact_like | json_values)
@settings(max_examples=200, deadline=None)
def test_any_contact_payload_reads_or_says_why(raw: Any) -> None:
    contact = mapping.parse(mapping.Contact, raw)
    if isinstance(contact, mapping.Problem):
        assert contact.message
        return
    assert contact.id
    for kind in ("custom_id", "email", "tax_id", "other"):
        assert mapping.contact_matches(contact, kind, "") in (True, False)


shipped_item = st.fixed_dictionaries({}, optional={
    "name": json_scalars, "sku": st.sampled_from(["", "A", "B", None]), "total": numberish, "sent": numberish,
    "pending": numberish})


@given(document_like, st.lists(shipped_item, max_size=4) | json_values, st.sampled_from(["order", "line", "unit"]))
@settings(max_examples=300, deadline=None)
def test_shipments_are_valid_unique_and_never_exceed_what_was_sent(raw_doc: Any, raw_items: Any, detail: str) -> None:
    doc = mapping.parse(mapping.Document, raw_doc)
    items = mapping.parse_list(mapping.ShippedItem, raw_items)
    if isinstance(doc, mapping.Problem) or isinstance(items, mapping.Problem):
        return
    shipments = mapping.shipments_from(doc, items, "REF-1", detail)  # type: ignore[arg-type]
    assert len({s.external_id for s in shipments}) == len(shipments)
    for s in shipments:
        assert isinstance(s, Shipment) and s.order_ref == "REF-1" and s.backend_order_id == doc.id
        assert s.external_id.startswith(doc.id + ":")
    sent = sum(max(0, min(int(i.sent), int(i.total))) for i in items if int(i.total) > 0)
    assert sum(sum(s.quantities().values()) for s in shipments) <= sent


@given(st.integers(0, 5), st.integers(0, 5), st.integers(1, 5))
def test_more_units_sent_only_add_shipments(first: int, more: int, total: int) -> None:
    """Ids are stable: what a later pickup reports contains what an earlier one did."""
    doc = mapping.Document(id="d1", products=[mapping.DocumentItem(sku="A")])
    early, late = (min(first, total), min(first + more, total))
    for detail in ("order", "line", "unit"):
        before = {s.external_id: s for s in mapping.shipments_from(
            doc, [mapping.ShippedItem(sku="A", total=Decimal(total), sent=Decimal(early))], "R", detail)}
        after = {s.external_id: s for s in mapping.shipments_from(
            doc, [mapping.ShippedItem(sku="A", total=Decimal(total), sent=Decimal(late))], "R", detail)}
        assert before.items() <= after.items()


refs = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


@given(refs, st.sampled_from(["quirk", "split", "notes"]), st.text(max_size=20))
def test_reference_survives_every_way_holded_stores_it(ref: str, how: str, noise: str) -> None:
    field_name = "orderbridge_ref"
    raw: dict[str, Any] = {"id": "d1", "notes": noise.replace(mapping.REF_MARKER, "")}
    if how == "quirk":
        raw["customFields"] = [{"field": field_name, "value": ref}]
    elif how == "split":
        raw["customFields"] = [{"field": "field", "value": field_name}, {"field": "value", "value": ref}]
    else:
        raw["notes"] += f"\n{mapping.REF_MARKER} {ref}"
    doc = mapping.parse(mapping.Document, raw)
    assert not isinstance(doc, mapping.Problem)
    assert mapping.reference_of(doc, field_name) == ref


@dataclass
class Opts:
    approve: bool = True
    warehouse_id: str = ""
    sales_channel_id: str = ""
    design_id: str = ""
    numbering_series_id: str = ""
    prices_include_tax: bool = False
    shipping_line: bool = True
    shipping_line_name: str = "Shipping"
    language: str = ""
    tags: list[str] = field(default_factory=list)


money = st.decimals(min_value=0, max_value=5000, places=2)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    lines = []
    for n in range(draw(st.integers(1, 4))):
        qty = draw(st.integers(1, 50))
        price = draw(money)
        rate = draw(st.sampled_from([Decimal("0"), Decimal("0.04"), Decimal("0.10"), Decimal("0.21")]))
        discount = draw(st.decimals(min_value=0, max_value=price * qty, places=2))
        tax = ((price * qty - discount) * rate).quantize(Decimal("0.01"))
        lines.append(OrderLine(sku=f"S{n}", quantity=qty, unit_price=price, discount=discount, tax=tax))
    shipping = draw(money)
    total = sum((ln.unit_price * ln.quantity - ln.discount + ln.tax for ln in lines), Decimal("0")) + shipping
    return Order(external_id="x", cust_po_no="1001", order_date=draw(st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))),
        ship_to=Address(name="A", city="B"), lines=lines, totals=Totals(shipping=shipping, total=total,
                                                                       tax=sum((ln.tax for ln in lines), Decimal(0))))


@given(orders(), st.sets(st.sampled_from(["S0", "S1", "S2", "S3"])), st.booleans())
@settings(max_examples=200, deadline=None)
def test_document_bodies_are_what_holded_accepts(order: Order, known: set[str], include_tax: bool) -> None:
    plan = mapping.plan_document(order, cust_ref="R1", cust_po_no="1001", contact_id="c1", known_skus=known,
                                 reference_field="orderbridge_ref", opts=Opts(prices_include_tax=include_tax))
    body = plan.body
    assert isinstance(body["date"], int) and body["contactId"] == "c1" and body["approveDoc"] is True
    assert body["customFields"] == [{"orderbridge_ref": "R1"}]
    assert len(body["items"]) == len(order.lines) + (1 if order.totals.shipping > 0 else 0)
    for item in body["items"]:
        assert item["units"] >= 1 and item["subtotal"] >= 0 and 0 <= item["discount"] <= 100 and item["tax"] >= 0
    assert plan.missing_skus == [ln.sku for ln in order.lines if ln.sku not in known]
    assert {i.get("sku") for i in body["items"]} - {None} == {ln.sku for ln in order.lines} & known
    if not include_tax:
        # tax-exclusive prices: the document adds up to the order, within Holded's rounding
        assert abs(plan.total - order.totals.total) <= Decimal("0.05") * len(body["items"])


@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", "v1", "v2", "zz"]), numberish), max_size=6))
def test_stock_levels_report_each_tracked_sku_once(rows: list[tuple[str, Any]]) -> None:
    products = [mapping.Product(id="p1", sku="A"),
                mapping.Product(id="p2", variants=[mapping.Variant(id="v1", sku="V1"),
                                                   mapping.Variant(id="v2", sku="V2")]),
                mapping.Product(id="p3", sku="NOSTOCK", hasStock=Decimal(0))]
    raw = {"warehouse": {"products": [{"_id": f"row{n}", "product_id": pid, "stock": qty} if not pid.startswith("v")
                                      else {"_id": f"row{n}", "product_id": "p2", "variants": {pid: qty}}
                                      for n, (pid, qty) in enumerate(rows)]}}
    parsed = mapping.stock_rows(raw)
    if isinstance(parsed, mapping.Problem):
        return
    levels = mapping.stock_levels("w1", parsed, mapping.stock_items(products))
    assert sorted(lv.sku for lv in levels) == ["A", "V1", "V2"]
    assert all(lv.warehouse == "w1" and lv.available == lv.on_hand for lv in levels)


def test_spanish_numbers_and_junk() -> None:
    assert mapping.to_decimal("3.380,67") == Decimal("3380.67")
    assert mapping.to_decimal(" 12.5 ") == Decimal("12.5")
    assert mapping.to_decimal("abc") is None and mapping.to_decimal(float("inf")) is None
    assert mapping.to_decimal(True) is None
