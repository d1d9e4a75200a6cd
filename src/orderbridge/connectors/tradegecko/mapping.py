"""TradeGecko wire records <-> the canonical model. Pure functions: no I/O, no clock.

A record that cannot be mapped becomes a ``MappingFailure`` saying why, never an exception; an
order that cannot be sent raises ``DataError`` naming what to fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Protocol

from pydantic import ValidationError

from orderbridge.connectors.base import DeliveryRequest
from orderbridge.connectors.errors import DataError
from orderbridge.domain.models import Address, Package, PackageLine, Shipment, StockLevel
from orderbridge.domain.validation import utf8_safe

ZERO = Decimal(0)


@dataclass(frozen=True)
class MappingFailure:
    external_id: str
    error: str


class OrderOptions(Protocol):
    """The settings the order mapping reads (TradeGeckoSettings provides them)."""

    @property
    def order_status(self) -> str: ...

    @property
    def stock_location_id(self) -> int | None: ...

    @property
    def order_number_field(self) -> str: ...

    @property
    def ship_method_field(self) -> str: ...

    @property
    def shipping_line_label(self) -> str: ...

    @property
    def send_prices(self) -> bool: ...

    @property
    def price_list_id(self) -> str | None: ...

    @property
    def tax_treatment(self) -> str: ...

    @property
    def tax_type_id(self) -> int | None: ...

    @property
    def tax_rate_from_source(self) -> bool: ...

    @property
    def order_discount_line(self) -> bool: ...

    @property
    def discount_line_label(self) -> str: ...

    @property
    def tags(self) -> list[str]: ...

    @property
    def tag_with_source(self) -> bool: ...

    @property
    def customer_type(self) -> str: ...


# ------------------------------------------------------------------------------ values


def number(value: Any) -> Decimal | None:
    """Quantities and money arrive as strings, numbers or null."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    # Beyond 10^15 it is garbage, not stock or money (and would make huge integers).
    return d if d.is_finite() and d.adjusted() <= 15 else None


def whole(d: Decimal) -> int:
    """Units that can be sold: fractions are dropped."""
    return int(d.to_integral_value(rounding=ROUND_FLOOR))


def decimal_text(d: Decimal) -> str:
    return format(d.normalize(), "f") if d != d.to_integral_value() else str(int(d))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def api_time(dt: datetime) -> str:
    """UTC with milliseconds, the form the API's filters document."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def record_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # isdecimal, not isdigit: int() refuses superscripts; ids beyond 18 digits are garbage, not records.
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 18:
        return int(value.strip())
    return None


# ------------------------------------------------------------------------------ SKUs


def resolve_variants(
    skus: Iterable[str], matches: Mapping[str, Sequence[Mapping[str, Any]]], product: str = "TradeGecko"
) -> dict[str, int]:
    """SKU -> variant id; DataError naming every unknown or ambiguous SKU."""
    unknown: list[str] = []
    ambiguous: list[str] = []
    out: dict[str, int] = {}
    for sku in dict.fromkeys(skus):
        found = [v for v in matches.get(sku, []) if v.get("status", "active") == "active"]
        ids = sorted({i for i in (record_id(v.get("id")) for v in found) if i is not None})
        if not ids:
            unknown.append(sku)
        elif len(ids) > 1:
            ambiguous.append(f"{sku} (variants {', '.join(map(str, ids))})")
        else:
            out[sku] = ids[0]
    if unknown:
        label = "SKU" if len(unknown) == 1 else "SKUs"
        raise DataError(f"{label} {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} unknown to {product}",
                        fix="add an alias or create the product", code="unknown_sku")
    if ambiguous:
        raise DataError(
            f"SKU {'; '.join(ambiguous)} matches several {product} products",
            fix=f"make the SKU unique in {product} (archive or rename the duplicate), or map it with an alias",
            code="ambiguous_sku",
        )
    return out


# ------------------------------------------------------------------------- customers


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def buyer(request: DeliveryRequest) -> Address:
    order = request.order
    return order.bill_to if not order.bill_to.is_empty() else order.ship_to


def customer_lookup(request: DeliveryRequest) -> tuple[str, str]:
    """(filter, value) that finds this buyer's company: email, else a company code we set."""
    order, who = request.order, buyer(request)
    email = who.email or order.ship_to.email
    if email:
        return "email", email.strip()
    return "company_code", company_code(request)


def company_code(request: DeliveryRequest) -> str:
    order, who = request.order, buyer(request)
    prefix = f"{request.source_connection}:" if request.source_connection else ""
    if order.customer_id:
        return f"{prefix}{order.customer_id}"[:80]
    key = _norm(f"{who.name}|{who.company}|{who.zip}|{who.address1}")
    return f"{prefix}{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def company_payload(request: DeliveryRequest, company_type: str) -> dict[str, Any]:
    who = buyer(request)
    name = who.company if company_type == "business" and who.company else who.name
    name = name or who.company or who.email or request.order.ship_to.name or f"Customer of {request.cust_ref}"
    out: dict[str, Any] = {"name": name[:255], "company_type": company_type, "company_code": company_code(request)}
    email = who.email or request.order.ship_to.email
    if email:
        out["email"] = email
    if who.phone or request.order.ship_to.phone:
        out["phone_number"] = who.phone or request.order.ship_to.phone
    if request.order.tax_id:
        out["tax_number"] = request.order.tax_id
    return out


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def address_payload(addr: Address, label: str) -> dict[str, Any]:
    first, last = _split_name(addr.name)
    out = {
        "label": label, "address1": addr.address1 or addr.city, "address2": addr.address2, "city": addr.city,
        "state": addr.state, "zip_code": addr.zip, "country": addr.country, "company_name": addr.company,
        "first_name": first, "last_name": last, "phone_number": addr.phone, "email": addr.email,
    }
    if len(addr.country) == 2:
        out["country_code"] = addr.country.upper()
    return {k: v for k, v in out.items() if v}


MATCH_FIELDS = ("address1", "address2", "city", "state", "zip_code", "company_name", "first_name", "last_name")


def address_matches(wire: Mapping[str, Any], addr: Address) -> bool:
    """An existing address is reused when street, city, zip, country and names all agree."""
    want = address_payload(addr, "")
    for key in MATCH_FIELDS:
        if _norm(str(wire.get(key) or "")) != _norm(str(want.get(key) or "")):
            return False
    have_country = str(wire.get("country_code") or wire.get("country") or "")
    return not addr.country or _norm(have_country) == _norm(want.get("country_code", addr.country))


def address_label(addr: Address, taken: Iterable[str]) -> str:
    """Labels are unique per company: "1 Main St, Springfield", with a short suffix if taken."""
    base = ", ".join(p for p in (addr.address1, addr.city) if p)[:60] or "Address"
    used = {str(t) for t in taken}
    if base not in used:
        return base
    digest = hashlib.sha256(_norm(str(address_payload(addr, ""))).encode()).hexdigest()
    for n in range(4, 17):
        candidate = f"{base} #{digest[:n]}"
        if candidate not in used:
            return candidate
    return f"{base} #{digest}"


# ------------------------------------------------------------------------------ orders


@dataclass(frozen=True)
class Customer:
    company_id: int | None = None  # an existing company, or None to create one in the order
    company: Mapping[str, Any] | None = None  # the nested new company
    shipping_address_id: int | None = None
    shipping_address: Mapping[str, Any] | None = None
    billing_address_id: int | None = None
    billing_address: Mapping[str, Any] | None = None  # neither: billing is the shipping address


def ship_method_label(request: DeliveryRequest) -> str:
    mapped = " ".join(p for p in (request.carrier, request.service) if p)
    return mapped or request.order.shipping_method


def order_payload(
    request: DeliveryRequest, variants: Mapping[str, int], customer: Customer, opts: OrderOptions
) -> dict[str, Any]:
    """The ``{"order": {...}}`` body that creates the order."""
    order = request.order
    method = ship_method_label(request)
    notes = []
    if opts.order_number_field == "notes":
        notes.append(f"Order number: {request.cust_po_no}")
    if opts.ship_method_field == "notes" and method:
        notes.append(f"Ship method: {method}")
    if order.notes:
        notes.append(order.notes)
    tags = list(opts.tags)
    if opts.tag_with_source and request.source_connection:
        tags.append(request.source_connection)
    if opts.order_number_field == "tags":
        tags.append(request.cust_po_no)
    body: dict[str, Any] = {
        "status": opts.order_status,
        "issued_at": order.order_date.astimezone(UTC).date().isoformat(),
        "reference_number": request.cust_ref,
        "order_line_items": _lines(request, variants, opts, method),
    }
    if opts.order_number_field == "order_number":
        body["order_number"] = request.cust_po_no
    optional = {
        "notes": "\n".join(notes), "tags": list(dict.fromkeys(tags)),
        "email": buyer(request).email or order.ship_to.email,
        "phone_number": order.ship_to.phone or buyer(request).phone,
        "currency_iso": order.totals.currency.upper(), "stock_location_id": opts.stock_location_id,
        "default_price_list_id": opts.price_list_id,
        "tax_treatment": opts.tax_treatment if opts.tax_treatment != "account_default" else None,
        "company_id": customer.company_id, "company": dict(customer.company) if customer.company else None,
        "shipping_address_id": customer.shipping_address_id, "billing_address_id": customer.billing_address_id,
        "shipping_address": dict(customer.shipping_address) if customer.shipping_address else None,
        "billing_address": dict(customer.billing_address) if customer.billing_address else None,
    }
    body.update({k: v for k, v in optional.items() if v not in (None, "", [])})
    return {"order": body}


def _percent(part: Decimal, whole_: Decimal) -> Decimal:
    return min(Decimal(100), (part / whole_ * 100).quantize(Decimal("0.0001")))


def _lines(
    request: DeliveryRequest, variants: Mapping[str, int], opts: OrderOptions, method: str
) -> list[dict[str, Any]]:
    order = request.order
    out: list[dict[str, Any]] = []
    for line in order.lines:
        item: dict[str, Any] = {"variant_id": variants[line.sku], "quantity": str(line.quantity)}
        gross = line.unit_price * line.quantity
        if opts.send_prices:
            item["price"] = decimal_text(line.unit_price)
            if line.discount > 0 and gross > 0:
                item["discount"] = decimal_text(_percent(line.discount, gross))
        net = gross - line.discount
        if opts.tax_rate_from_source and line.tax > 0 and net > 0:
            item["tax_rate_override"] = decimal_text(_percent(line.tax, net))
        if opts.tax_type_id:
            item["tax_type_id"] = opts.tax_type_id
        out.append(item)
    shipping = order.totals.shipping
    label_method = opts.ship_method_field == "shipping_line" and bool(method)
    if shipping > 0 or label_method:
        charge: dict[str, Any] = {
            "freeform": True, "line_type": "shipping", "quantity": "1",
            "label": method if label_method else opts.shipping_line_label,
            "price": decimal_text(shipping if opts.send_prices else ZERO),
        }
        if opts.tax_type_id:
            charge["tax_type_id"] = opts.tax_type_id
        out.append(charge)
    extra = order.totals.discount - sum((ln.discount for ln in order.lines), ZERO)
    if opts.order_discount_line and opts.send_prices and extra > 0:
        out.append({"freeform": True, "line_type": "discount", "quantity": "1",
                    "label": opts.discount_line_label, "price": decimal_text(-extra)})
    return out


# -------------------------------------------------------------------------- shipments

TRACKING_SPLIT = re.compile(r"[,;\s]+")


def map_fulfillment(
    ful: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]],
    order_ref: str,
    skus: Mapping[int, str],
) -> Shipment | MappingFailure:
    """One fulfillment -> one Shipment. ``skus`` names variants whose lines lack ``variant_sku``."""
    fid = record_id(ful.get("id")) if isinstance(ful, Mapping) else None
    if fid is None:
        return MappingFailure("?", "a fulfillment without an id")
    qty: dict[str, int] = {}
    for line in lines:
        if not isinstance(line, Mapping):
            return MappingFailure(str(fid), "a fulfillment line is not an object")
        vid = record_id(line.get("variant_id"))
        sku = line.get("variant_sku") or (skus.get(vid) if vid is not None else None)
        if not isinstance(sku, str) or not sku.strip():
            return MappingFailure(str(fid), f"fulfillment line {line.get('id')} has no SKU")
        amount = number(line.get("quantity"))
        if amount is None or amount < 0 or amount != amount.to_integral_value():
            return MappingFailure(str(fid), f"fulfillment line {line.get('id')} has quantity {line.get('quantity')!r}")
        if amount > 0:
            qty[sku.strip()] = qty.get(sku.strip(), 0) + int(amount)
    carrier = _text(ful.get("tracking_company"))
    service = _text(ful.get("service"))
    tracking = [t for t in TRACKING_SPLIT.split(_text(ful.get("tracking_number"))) if t]
    shipped = parse_time(ful.get("shipped_at")) or parse_time(ful.get("updated_at"))
    try:
        package_lines = [PackageLine(sku=s, quantity=q) for s, q in qty.items()]
        if len(tracking) <= 1:
            packages = [Package(tracking_number=tracking[0] if tracking else "", carrier=carrier, service=service,
                                lines=package_lines)]
        else:  # several numbers in one fulfillment: which box holds what is not known
            packages = [Package(tracking_number=t, carrier=carrier, service=service) for t in tracking]
        order_id = record_id(ful.get("order_id"))
        return Shipment(
            external_id=str(fid), order_ref=order_ref, backend_order_id=str(order_id) if order_id else "",
            carrier=carrier, service=service, tracking_numbers=tracking, packages=packages, lines=package_lines,
            shipped_at=shipped,
        )
    except ValidationError as exc:
        return MappingFailure(str(fid), f"fulfillment {fid} cannot be read: {exc.errors()[0]['msg']}")


def _text(value: Any) -> str:
    return utf8_safe(value.strip() if isinstance(value, str) else ("" if value is None else str(value)))


# ------------------------------------------------------------------------------ stock


def _cell(entry: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    on_hand = number(entry.get("stock_on_hand")) or ZERO
    committed = number(entry.get("committed", entry.get("committed_stock"))) or ZERO
    available = number(entry.get("available", entry.get("available_stock")))
    return on_hand, committed, on_hand - committed if available is None else available


def variant_stock(
    variant: Mapping[str, Any],
    locations: Mapping[int, str],
    counted: set[int] | None,
    untracked_quantity: int | None,
) -> list[StockLevel] | MappingFailure:
    """Stock per counted location of one variant (0 where it has none). [] when it is not sold."""
    if not isinstance(variant, Mapping):
        return MappingFailure("?", "a variant is not an object")
    vid = str(variant.get("id", "?"))
    sku = _text(variant.get("sku"))
    if not sku or variant.get("status", "active") != "active":
        return []
    if variant.get("manage_stock") is False:
        if untracked_quantity is None:
            return []
        return [StockLevel(sku=sku, warehouse="untracked", on_hand=untracked_quantity,
                           available=untracked_quantity)]
    cells: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    entries = variant.get("locations")
    if isinstance(entries, list):
        for entry in entries:
            lid = record_id(entry.get("location_id")) if isinstance(entry, Mapping) else None
            if lid is None:
                return MappingFailure(vid, f"variant {vid} has a stock entry without a location")
            assert isinstance(entry, Mapping)
            cells[lid] = _cell(entry)
    elif isinstance(variant.get("stock_levels"), Mapping):  # the deprecated {location: qty} hash
        committed = variant.get("committed_stock_levels")
        committed = committed if isinstance(committed, Mapping) else {}
        for key, qty in variant["stock_levels"].items():
            lid = record_id(key)
            if lid is not None:
                on_hand, held = number(qty) or ZERO, number(committed.get(key)) or ZERO
                cells[lid] = (on_hand, held, on_hand - held)
    elif counted is None:
        levels = [StockLevel(sku=sku, on_hand=whole(c[0]), committed=whole(c[1]), available=max(0, whole(c[2])))
                  for c in [_cell(variant)]]
        return _cap(levels, variant.get("max_online"))
    wanted = sorted(counted if counted is not None else set(locations) | set(cells))
    levels = []
    for lid in wanted:
        on_hand, committed, available = cells.get(lid, (ZERO, ZERO, ZERO))
        levels.append(StockLevel(sku=sku, warehouse=locations.get(lid, str(lid)), on_hand=whole(on_hand),
                                 committed=whole(committed), available=max(0, whole(available))))
    return _cap(levels, variant.get("max_online"))


def _cap(levels: list[StockLevel], max_online: Any) -> list[StockLevel]:
    """Channels must not show more than ``max_online``: trim locations in order until they fit."""
    cap = number(max_online)
    if cap is None or cap < 0:
        return levels
    room = whole(cap)
    for level in levels:
        level.available = min(level.available, room)
        room -= level.available
    return levels
