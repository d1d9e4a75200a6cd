"""Holded documents and contacts <-> the canonical model. Pure functions, no I/O.

Reading is tolerant (Holded sends numbers as numbers, numeric strings or Spanish-formatted
strings, and omits or nulls fields at will): a payload either parses into a small typed view or
becomes a ``Problem`` naming what is wrong; nothing here raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from orderbridge.domain.models import Address, Order, PackageLine, Shipment, StockLevel
from orderbridge.domain.validation import utf8_safe

REF_MARKER = "orderbridge ref:"
_MARKER_RE = re.compile(re.escape(REF_MARKER) + r"\s*(\S+)")
_FREE_LINE_RE = re.compile(r"^SKU (\S+)")
MAX_UNITS = 1_000_000  # larger "units" are not an order line of ours
PAYING_TYPES = frozenset({"invoice", "salesreceipt"})
CONTACT_KEYS = ("custom_id", "email", "tax_id")
ShipmentDetail = Literal["order", "line", "unit"]
# Holded carrier keys -> the names sources usually know them by.
CARRIERS = {"uspostalservice": "usps", "correosexpress": "correos express", "dbschenker": "db schenker",
            "royalmail": "royal mail"}


# ------------------------------------------------------------------------- tolerant parsing


def to_decimal(value: Any) -> Decimal | None:
    """A number from a JSON number or a numeric string, Spanish formats included ("3.380,67")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _number(value: Any) -> Any:
    if value is None or value == "":
        return Decimal("0")
    d = to_decimal(value)
    if d is None:
        raise ValueError(f"not a number: {value!r}")
    return d


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return utf8_safe(str(value))
    raise ValueError(f"not text: {type(value).__name__}")


def _optional_int(value: Any) -> Any:
    if value in (None, "", 0, "0", False):
        return None
    d = to_decimal(value)
    if d is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return int(d)


def _list(value: Any) -> Any:
    return [] if value is None or value == "" else value


Num = Annotated[Decimal, BeforeValidator(_number)]
Text = Annotated[str, BeforeValidator(_text)]
Stamp = Annotated[int | None, BeforeValidator(_optional_int)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CustomField(_Wire):
    field: Text = ""
    value: Text = ""


class Tracking(_Wire):
    key: Text = ""
    name: Text = ""
    num: Text = ""
    pickUpDate: Text = ""


class DocumentItem(_Wire):
    name: Text = ""
    desc: Text = ""
    sku: Text = ""
    units: Num = Decimal("0")
    price: Num = Decimal("0")


class Document(_Wire):
    id: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    contact: Text = ""
    docNumber: Text = ""
    date: Stamp = None
    notes: Text = ""
    status: Num = Decimal("0")
    total: Num = Decimal("0")
    paymentsTotal: Num = Decimal("0")
    paymentsPending: Annotated[Decimal | None, BeforeValidator(lambda v: None if v is None else _number(v))] = None
    approvedAt: Stamp = None
    draft: bool | None = None
    customFields: Annotated[list[CustomField], BeforeValidator(_list)] = Field(default_factory=list)
    products: Annotated[list[DocumentItem], BeforeValidator(_list)] = Field(default_factory=list)
    tracking: Tracking | None = None

    @property
    def pending(self) -> Decimal:
        if self.paymentsPending is not None:
            return self.paymentsPending
        return self.total - self.paymentsTotal

    @property
    def is_draft(self) -> bool:
        if self.draft is not None:
            return self.draft
        return self.approvedAt is None and not self.docNumber


class Contact(_Wire):
    id: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    customId: Text = ""
    name: Text = ""
    email: Text = ""
    code: Text = ""
    vatnumber: Text = ""


class ShippedItem(_Wire):
    name: Text = ""
    sku: Text = ""
    total: Num = Decimal("0")
    sent: Num = Decimal("0")
    pending: Num = Decimal("0")


class Variant(_Wire):
    id: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    sku: Text = ""


class Product(_Wire):
    id: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    sku: Text = ""
    hasStock: Num = Decimal("1")
    variants: Annotated[list[Variant], BeforeValidator(_list)] = Field(default_factory=list)


class Named(_Wire):
    """Anything listed by id and name: warehouses, sales channels, numbering series."""

    id: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    name: Text = ""


class StockRow(_Wire):
    id: Text = Field(default="", alias="_id")
    product_id: Text = ""
    stock: Num = Decimal("0")
    variants: Annotated[dict[str, Num], BeforeValidator(lambda v: v if isinstance(v, dict) else {})] = Field(
        default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Why a payload could not be read, in words."""

    message: str


M = TypeVar("M", bound=_Wire)


def parse(model: type[M], raw: Any) -> M | Problem:
    """Read one wire object; a Problem instead of an exception when it is not what Holded sends."""
    what = model.__name__.lower()
    if not isinstance(raw, dict):
        return Problem(f"Holded sent a {type(raw).__name__} where a {what} was expected")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or what
        return Problem(f"Holded {what} {raw.get('id', '')!s:.40} has an unreadable {where}: {first['msg']}")
    except (ValueError, TypeError, ArithmeticError) as exc:
        return Problem(f"Holded {what} could not be read: {exc}")


def parse_list(model: type[M], raw: Any) -> list[M] | Problem:
    if not isinstance(raw, list):
        return Problem(f"Holded sent a {type(raw).__name__} where a list of {model.__name__.lower()}s was expected")
    out: list[M] = []
    for entry in raw:
        item = parse(model, entry)
        if isinstance(item, Problem):
            return item
        out.append(item)
    return out


def stock_rows(raw: Any) -> list[StockRow] | Problem:
    """``GET /warehouses/{id}/stock``: ``{"warehouse": {"products": [...]}}``."""
    warehouse = raw.get("warehouse") if isinstance(raw, dict) else None
    if not isinstance(warehouse, dict):
        return Problem("Holded's warehouse stock answer has no 'warehouse' object")
    return parse_list(StockRow, _list(warehouse.get("products")))


# --------------------------------------------------------------------- references and keys


def reference_of(doc: Document, field_name: str) -> str | None:
    """Our reference on a document: its custom field (both create shapes) or the notes marker."""
    fields = doc.customFields
    for i, cf in enumerate(fields):
        if cf.field == field_name and cf.value:
            return cf.value
        # The documented {field, value} shape, split into rows by Holded's create quirk.
        if cf.field == "field" and cf.value == field_name and i + 1 < len(fields) and fields[i + 1].field == "value":
            return fields[i + 1].value or None
    match = _MARKER_RE.search(doc.notes)
    return match.group(1) if match else None


def contact_keys(order: Order, policy: str, custom_id_prefix: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs to match a contact by, in Holded's own order from the policy's key on."""
    if policy == "generic" or policy not in CONTACT_KEYS:
        return []
    bill = order.bill_to if not order.bill_to.is_empty() else order.ship_to
    values = {
        "custom_id": f"{custom_id_prefix}{order.customer_id}" if order.customer_id else "",
        "email": (bill.email or order.ship_to.email).strip().lower(),
        "tax_id": order.tax_id.strip().upper(),
    }
    start = CONTACT_KEYS.index(policy)
    return [(k, values[k]) for k in CONTACT_KEYS[start:] if values[k]]


def contact_matches(contact: Contact, kind: str, value: str) -> bool:
    if kind == "custom_id":
        return contact.customId == value
    if kind == "email":
        return bool(value) and contact.email.strip().lower() == value
    if kind == "tax_id":
        return bool(value) and value in (contact.code.strip().upper(), contact.vatnumber.strip().upper())
    return False


def contact_body(order: Order, custom_id: str) -> dict[str, Any]:
    bill = order.bill_to if not order.bill_to.is_empty() else order.ship_to
    ship = order.ship_to
    body: dict[str, Any] = {
        "name": bill.company or bill.name or ship.company or ship.name or bill.email or ship.email or "Customer",
        "type": "client",
        "isperson": not (bill.company or ship.company),
        "email": bill.email or ship.email,
        "phone": bill.phone or ship.phone,
        "billAddress": _address(bill),
    }
    if order.tax_id.strip():
        body["code"] = order.tax_id.strip().upper()
    if custom_id:
        body["CustomId"] = custom_id
    return {k: v for k, v in body.items() if v not in ("", None)}


def _address(a: Address) -> dict[str, str]:
    out = {"address": " ".join(p for p in (a.address1, a.address2) if p), "city": a.city, "postalCode": a.zip,
           "province": a.state, "country": a.country}
    if len(a.country) == 2:
        out["countryCode"] = a.country.upper()
    return {k: v for k, v in out.items() if v}


# ------------------------------------------------------------------------- document body


class DocumentOptions(Protocol):
    """What the document body needs from the route's options."""

    approve: bool
    warehouse_id: str
    sales_channel_id: str
    design_id: str
    numbering_series_id: str
    prices_include_tax: bool
    shipping_line: bool
    shipping_line_name: str
    language: str
    tags: list[str]


@dataclass
class DocumentPlan:
    body: dict[str, Any]
    missing_skus: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    total: Decimal = Decimal("0")


_CENT = Decimal("0.01")


def _rate(tax: Decimal, net: Decimal) -> Decimal:
    """Tax as a percentage of net; a whole percentage when it reproduces the tax to the cent."""
    if net <= 0 or tax <= 0:
        return Decimal("0")
    exact = tax / net * 100
    whole = exact.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    if abs(net * whole / 100 - tax) <= _CENT:
        return whole
    return exact.quantize(_CENT, rounding=ROUND_HALF_UP)


def _plain(d: Decimal, places: int = 6) -> float | int:
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize()
    return int(q) if q == q.to_integral_value() else float(q)


def _item(name: str, units: int, gross_unit: Decimal, discount: Decimal, tax: Decimal,
          include_tax: bool) -> tuple[dict[str, Any], Decimal]:
    gross = gross_unit * units
    net = gross - discount - (tax if include_tax else Decimal("0"))
    rate = _rate(tax, net)
    unit = gross_unit / (1 + rate / 100) if include_tax else gross_unit
    pct = discount / gross * 100 if gross > 0 else Decimal("0")
    item = {"name": name, "units": units, "subtotal": _plain(unit), "tax": _plain(rate, 2),
            "discount": _plain(min(pct, Decimal("100")), 4)}
    line_total = unit * units * (1 - pct / 100) * (1 + rate / 100)
    return item, line_total


def plan_document(order: Order, *, cust_ref: str, cust_po_no: str, contact_id: str, known_skus: Container[str],
                  reference_field: str, opts: DocumentOptions) -> DocumentPlan:
    """The ``POST /documents/{docType}`` body for an order, with the SKUs Holded lacks."""
    plan = DocumentPlan(body={})
    items: list[dict[str, Any]] = []
    total = Decimal("0")
    for line in order.lines:
        item, line_total = _item(line.description or line.sku, line.quantity, line.unit_price, line.discount,
                                 line.tax, opts.prices_include_tax)
        if line.sku in known_skus:
            item["sku"] = line.sku
        else:
            plan.missing_skus.append(line.sku)
            item["desc"] = f"SKU {line.sku}"
            plan.warnings.append(f"SKU {line.sku} has no product in Holded: imported as a free line "
                                 "(no stock moved for it)")
        items.append(item)
        total += line_total
    shipping = order.totals.shipping
    if opts.shipping_line and shipping > 0:
        ship_tax = max(order.totals.tax - sum((ln.tax for ln in order.lines), Decimal("0")), Decimal("0"))
        name = f"{opts.shipping_line_name}: {order.shipping_method}" if order.shipping_method else \
            opts.shipping_line_name
        item, line_total = _item(name, 1, shipping, Decimal("0"), ship_tax, opts.prices_include_tax)
        items.append(item)
        total += line_total
    plan.total = total.quantize(_CENT, rounding=ROUND_HALF_UP)
    expected = order.totals.total
    if expected > 0 and abs(plan.total - expected) > Decimal("0.05"):
        plan.warnings.append(f"Holded document total {plan.total} differs from the order total {expected}")
    notes = [order.notes] if order.notes else []
    notes += [f"Order {cust_po_no}", f"{REF_MARKER} {cust_ref}"]
    body: dict[str, Any] = {
        "date": int(order.order_date.timestamp()),
        "contactId": contact_id,
        "items": items,
        "notes": "\n".join(notes),
        # One property per entry: Holded's create turns it into {field, value} (see the notes).
        "customFields": [{reference_field: cust_ref}],
        "approveDoc": opts.approve,
        "applyContactDefaults": False,
    }
    if order.totals.currency:
        body["currency"] = order.totals.currency.lower()
    for key, value in (("warehouseId", opts.warehouse_id), ("salesChannelId", opts.sales_channel_id),
                       ("designId", opts.design_id), ("numSerieId", opts.numbering_series_id),
                       ("language", opts.language)):
        if value:
            body[key] = value
    if opts.tags:
        body["tags"] = list(opts.tags)
    ship = order.ship_to
    for key, value in (("shippingAddress", " ".join(p for p in (ship.address1, ship.address2) if p)),
                       ("shippingPostalCode", ship.zip), ("shippingCity", ship.city),
                       ("shippingProvince", ship.state), ("shippingCountry", ship.country)):
        if value:
            body[key] = value
    plan.body = body
    return plan


# -------------------------------------------------------------------------------- shipments


def tracking_numbers(tracking: Tracking | None) -> list[str]:
    if tracking is None:
        return []
    return [n.strip() for n in tracking.num.split(",") if n.strip()]


def carrier_of(tracking: Tracking | None) -> str:
    if tracking is None or not tracking.key:
        return ""
    if tracking.key == "other":
        return tracking.name
    return CARRIERS.get(tracking.key, tracking.key)


def _pickup(tracking: Tracking | None) -> datetime | None:
    if tracking is None or not tracking.pickUpDate:
        return None
    try:
        return datetime.strptime(tracking.pickUpDate, "%d/%m/%Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def _sku_of(item: ShippedItem, line: DocumentItem | None) -> str:
    if item.sku:
        return item.sku
    if line is not None:
        if line.sku:
            return line.sku
        match = _FREE_LINE_RE.match(line.desc)
        if match:
            return match.group(1)
    return ""


def shipments_from(doc: Document, items: Sequence[ShippedItem], order_ref: str,
                   detail: ShipmentDetail) -> list[Shipment]:
    """Shipments for a sales order's sent units, each with an id that never changes.

    Holded only tells how many units of each line have been sent so far, so a shipment is
    reported per line once all its units are sent (``line``), per sent unit (``unit``), or once
    for the whole order when everything is sent (``order``); lines without a SKU (the shipping
    line) are not goods and are left out.
    """
    def shipment(suffix: str, lines: list[PackageLine]) -> Shipment:
        return Shipment(external_id=f"{doc.id}:{suffix}", order_ref=order_ref, backend_order_id=doc.id,
                        carrier=carrier_of(doc.tracking), tracking_numbers=tracking_numbers(doc.tracking),
                        shipped_at=_pickup(doc.tracking), lines=lines)

    goods: list[tuple[int, str, int, int]] = []
    for pos, item in enumerate(items):
        sku = _sku_of(item, doc.products[pos] if pos < len(doc.products) else None)
        total, sent = int(item.total), min(int(item.sent), int(item.total))
        if sku and 0 < total <= MAX_UNITS:
            goods.append((pos, sku, total, max(sent, 0)))
    if detail == "order":
        if not goods or any(sent < total for _, _, total, sent in goods):
            return []
        lines = [PackageLine(sku=sku, quantity=total) for _, sku, total, _ in goods]
        return [shipment("all", lines)]
    out: list[Shipment] = []
    for pos, sku, total, sent in goods:
        if detail == "line":
            if sent >= total:
                out.append(shipment(str(pos), [PackageLine(sku=sku, quantity=total)]))
            continue
        out += [shipment(f"{pos}:{n}", [PackageLine(sku=sku, quantity=1)]) for n in range(1, sent + 1)]
    return out


def all_sent(items: Sequence[ShippedItem]) -> bool:
    return all(item.pending <= 0 for item in items)


# ------------------------------------------------------------------------------ stock levels


@dataclass(frozen=True)
class StockItem:
    sku: str
    product_id: str


def stock_items(products: Sequence[Product]) -> dict[str, StockItem]:
    """Stock item id (product, or variant) -> its SKU, for products with stock control."""
    out: dict[str, StockItem] = {}
    for p in products:
        if p.hasStock <= 0:
            continue
        if p.variants:
            out.update({v.id: StockItem(v.sku, p.id) for v in p.variants if v.sku})
        elif p.sku:
            out[p.id] = StockItem(p.sku, p.id)
    return out


def sku_index(products: Sequence[Product]) -> set[str]:
    skus = {p.sku for p in products if p.sku and not p.variants}
    return skus | {v.sku for p in products for v in p.variants if v.sku}


def stock_levels(warehouse_id: str, rows: Sequence[StockRow], items: dict[str, StockItem]) -> list[StockLevel]:
    """One level per tracked SKU in this warehouse (0 when Holded has no stock row for it)."""
    units: dict[str, Decimal] = {i.sku: Decimal("0") for i in items.values()}
    for row in rows:
        product = row.product_id or row.id
        if row.variants:
            for variant_id, qty in row.variants.items():
                if variant_id in items:
                    units[items[variant_id].sku] += qty
        elif product in items:
            units[items[product].sku] += row.stock
    return [StockLevel(sku=sku, warehouse=warehouse_id, on_hand=int(q), available=int(q))
            for sku, q in sorted(units.items())]
