"""JOOR v2 order payloads <-> the canonical model, and stock levels -> bulk-inventory items.

Pure functions; a bad payload is a result, never an exception: ``classify`` always returns a
DownloadedOrder (maybe with ``error``) or a SkippedOrder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder, SurveyItem
from orderbridge.connectors.fields import FieldReader, printable
from orderbridge.domain.models import Address, Cancellation, Order, OrderLine, Totals
from orderbridge.domain.validation import describe_validation_error, storable_text

SkuField = Literal["upc", "style_color_size"]

# JOOR's order statuses, normalised, and which order_type filter holds each.
APPROVED, PENDING, SHIPPED, CANCELLED, NOTES = "approved", "pending", "shipped", "cancelled", "notes"
STATUS_SPELLINGS = {"approved": APPROVED, "pending": PENDING, "returned": PENDING, "shipped": SHIPPED,
                    "cancelled": CANCELLED, "canceled": CANCELLED, "notes": NOTES, "note": NOTES}
ORDER_TYPE_STATUSES: dict[int, frozenset[str]] = {
    1: frozenset({NOTES}), 2: frozenset({APPROVED, SHIPPED}), 3: frozenset({PENDING}),
    4: frozenset({APPROVED, PENDING, SHIPPED, NOTES}), 5: frozenset({CANCELLED}), 6: frozenset({APPROVED}),
    7: frozenset({SHIPPED}), 8: frozenset({APPROVED, PENDING, SHIPPED, NOTES, CANCELLED}),
}
COUNTRIES = {"us": "US", "usa": "US", "united states": "US", "united states of america": "US",
             "ca": "CA", "canada": "CA", "uk": "GB", "united kingdom": "GB", "great britain": "GB",
             "france": "FR", "italy": "IT", "germany": "DE", "spain": "ES", "japan": "JP", "australia": "AU"}
MAX_ID_LENGTH = 100
UNIDENTIFIED = "joor-unidentified-"
DEFAULT_FIX = "correct the order in JOOR; it is read again when it changes there"


class Problem(Exception):
    """Why a JOOR order cannot become a canonical order, for the merchant, with the fix."""

    def __init__(self, message: str, fix: str = DEFAULT_FIX) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


_read = FieldReader(Problem)
_text, _amount, _quantity = _read.text, _read.amount, _read.quantity


@dataclass(frozen=True)
class Rules:
    """What this connection imports and how it names SKUs (its settings, as the mapping needs them)."""

    order_type: int
    order_type_label: str
    warehouse_code: str = ""
    skip_empty_customer_code: bool = True
    sku_field: SkuField = "upc"
    sku_separator: str = "-"
    earliest: date | None = None


# ------------------------------------------------------------------------------ small parts


def normalize_status(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return STATUS_SPELLINGS.get(value.strip().lower().split()[0])





def order_id_of(raw: Any) -> str:
    """JOOR's order_id, or a stable stand-in when the payload has none usable (so it can still be
    reported): an id the ledger cannot key on (too long, NUL or invalid Unicode) is not used."""
    if isinstance(raw, dict):
        oid = raw.get("order_id")
        if isinstance(oid, str | int) and not isinstance(oid, bool):
            text = printable(oid).strip()
            if text and len(text) <= MAX_ID_LENGTH and storable_text(text) == text:
                return text
    try:
        dumped = json.dumps(raw, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        dumped = repr(type(raw))
    digest = hashlib.sha1(dumped.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{UNIDENTIFIED}{digest}"


def status_text(raw: dict[str, Any]) -> str:
    """JOOR's status as stored beside the order (storable, at most 60 characters)."""
    return storable_text(printable(raw.get("status", "")))[:60]


def parse_time(value: Any, what: str) -> datetime:
    """A JOOR timestamp (ISO 8601; a date alone means midnight UTC) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise Problem(f"{what} is missing")
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise Problem(f"{what} {text[:40]!r} is not a date-time") from None
    try:  # a date at the calendar's edge with a zone can fall outside it once in UTC
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise Problem(f"{what} {text[:40]!r} is out of range") from None


def _time_or_none(raw: dict[str, Any], key: str) -> datetime | None:
    try:
        return parse_time(raw.get(key), key)
    except Problem:
        return None


def country_code(country: str) -> str:
    if not country:
        return ""
    return COUNTRIES.get(country.lower(), country.upper() if len(country) == 2 else country)


def line_sku(item: dict[str, Any], rules: Rules) -> str:
    """The SKU orderbridge uses for a JOOR line: its UPC, or style, color and size joined."""
    if rules.sku_field == "upc":
        return _text(item.get("upc"), "the UPC", 200)
    parts = [_text(item.get(k), k, 100) for k in ("style_number", "color_code", "size")]
    return rules.sku_separator.join(parts) if all(parts) else ""


# ------------------------------------------------------------------------------ eligibility


def not_eligible(raw: dict[str, Any], rules: Rules) -> tuple[str, bool] | None:
    """(reason, final) when this connection must not import the order; None when it should."""
    raw_status = raw.get("status")
    status = normalize_status(raw_status)
    if status == CANCELLED:
        return "cancelled at JOOR", True
    if status == SHIPPED and rules.order_type != 7:
        return ("already shipped at JOOR: shipped orders are imported only by connections set to load Shipped "
                "Orders (otherwise they would be shipped twice)"), True
    if status is None:
        return (f"JOOR status {printable(raw_status)[:40]!r} is unknown to orderbridge, so it cannot tell whether the "
                "order is ready to ship"), False
    if status not in ORDER_TYPE_STATUSES.get(rules.order_type, frozenset()):
        return (f"the order is {status.capitalize()} and this connection loads {rules.order_type_label}: change the "
                "connection's Order Status setting to load it"), False
    warehouse = _text(raw.get("warehouse_code"), "the warehouse code", 100)
    if rules.warehouse_code and warehouse.lower() != rules.warehouse_code.lower():
        return (f"assigned to JOOR warehouse {warehouse or '(none)'!r} and this connection loads warehouse "
                f"{rules.warehouse_code!r} only (its Warehouse Code setting)"), False
    if rules.skip_empty_customer_code and not _text(raw.get("customer_code"), "the customer code", 100):
        return ("the order has no customer code and the connection skips such orders: give the retailer a "
                "customer code in JOOR, or turn off 'Skip Empty Customer Code'"), False
    placed = _time_or_none(raw, "order_date")
    if rules.earliest and placed and placed < datetime.combine(rules.earliest, time(), UTC):
        return f"placed before the connection's earliest order date ({rules.earliest.isoformat()})", True
    return None


# --------------------------------------------------------------------------------- mapping


def _address(block: Any, what: str, raw: dict[str, Any]) -> Address:
    if not isinstance(block, dict):
        return Address()
    country = country_code(_text(block.get("country"), f"the {what} country", 60))
    return Address(
        name=_text(block.get("name") or raw.get("buyer_name"), f"the {what} name", 200),
        company=_text(block.get("company") or raw.get("customer_name"), "the retailer name", 200),
        address1=_text(block.get("address_1"), f"the {what} street address"),
        address2=" ".join(p for p in (_text(block.get("address_2"), f"the {what} second line"),
                                      _text(block.get("address_3"), f"the {what} third line")) if p),
        city=_text(block.get("city"), f"the {what} city", 200),
        state=_text(block.get("state"), f"the {what} state", 100),
        zip=_text(block.get("postal_code") or block.get("zip"), f"the {what} postal code", 40),
        country=country,
        phone=_text(block.get("phone") or raw.get("buyer_phone"), f"the {what} phone number", 60),
        email=_text(raw.get("buyer_email"), "the buyer's email", 200),
    )


def _lines(raw: dict[str, Any], rules: Rules) -> tuple[list[OrderLine], Decimal]:
    items = raw.get("line_items")
    if isinstance(items, dict):  # a single line may arrive unwrapped (as XML-born JSON does)
        items = [items]
    if not isinstance(items, list) or not items:
        raise Problem("the order has no line items")
    lines: list[OrderLine] = []
    subtotal = Decimal("0")
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise Problem(f"line {n} is not an object")
        label = " ".join(p for p in (_text(item.get("style_number"), f"line {n}'s style number", 100),
                                     _text(item.get("color_code"), f"line {n}'s color code", 100),
                                     _text(item.get("size"), f"line {n}'s size", 100)) if p) or f"line {n}"
        sku = line_sku(item, rules)
        if not sku:
            if rules.sku_field == "upc":
                raise Problem(f"line {n} ({label}) has no UPC", fix="add the UPC to the style's sizes in JOOR, or "
                              "set the connection's SKU setting to style_color_size")
            raise Problem(f"line {n} ({label}) lacks a style number, color code or size",
                          fix="complete the style in JOOR")
        qty = _quantity(item.get("quantity"), f"the quantity of {label}")
        price = _amount(item.get("price"), f"the price of {label}")
        if price < 0:
            raise Problem(f"the price of {label} is negative")
        subtotal += price * qty
        description = " / ".join(p for p in (_text(item.get("style_name"), "a style name", 300),
                                             _text(item.get("color_name"), "a color name", 200),
                                             _text(item.get("size"), "a size", 100)) if p)
        lines.append(OrderLine(sku=sku, quantity=qty, unit_price=price, description=description[:500] or label,
                               external_line_id=_text(item.get("line_id"), "a line id", 100) or str(n)))
    return lines, subtotal


def to_order(raw: dict[str, Any], rules: Rules) -> Order:
    """The canonical order; raises Problem (or pydantic's ValidationError) when it cannot be built."""
    oid = order_id_of(raw)
    lines, subtotal = _lines(raw, rules)
    ship_to = _address(raw.get("shipping_address"), "shipping", raw)
    if not ship_to.address1 and not ship_to.city:
        raise Problem("JOOR sent no shipping address", fix="add the retailer's shipping address to the order "
                      "in JOOR; it is read again when the order changes")
    bill_to = _address(raw.get("billing_address"), "billing", raw)
    shipping = _amount(raw.get("shipping_cost"), "the shipping cost")
    discount = abs(_amount(raw.get("order_discount"), "the order discount"))
    total = _amount(raw.get("order_total"), "the order total") if raw.get("order_total") not in (None, "") else \
        subtotal + shipping - discount
    extra: dict[str, Any] = {"joor_status": _text(raw.get("status"), "the status", 60)}
    for key, name in (("po_number", "retailer_po"), ("customer_code", "customer_code"),
                      ("customer_group_name", "customer_group"), ("warehouse_code", "warehouse_code"),
                      ("start_ship_date", "start_ship_date"), ("complete_ship_date", "complete_ship_date"),
                      ("payment_terms", "payment_terms"), ("sales_representative", "sales_rep"),
                      ("order_season_code", "season")):
        if raw.get(key) not in (None, ""):
            extra[name] = _text(raw.get(key), key, 200)
    return Order(
        external_id=oid,
        cust_po_no=oid,
        order_date=parse_time(raw.get("order_date"), "the order date"),
        source_status=_text(raw.get("status"), "the status", 60),
        ship_to=ship_to,
        bill_to=bill_to if not bill_to.is_empty() else ship_to.model_copy(),
        lines=lines,
        shipping_method=_text(raw.get("shipping_method") or raw.get("shipping_method_code"), "the shipping method",
                              100),
        totals=Totals(subtotal=subtotal, shipping=shipping, discount=discount, total=total,
                      currency=_text(raw.get("currency_code"), "the currency", 10).upper()),
        notes=_text(raw.get("notes"), "the order notes", 4000),
        customer_id=_text(raw.get("customer_code"), "the customer code", 100),
        paid=True,  # wholesale orders are on payment terms: nothing to wait for before shipping
        extra=extra,
    )


def classify(raw: Any, rules: Rules) -> DownloadItem:
    """One GET /v2/orders entry as what the engine stores: an order, an order in error, or a skip."""
    oid = order_id_of(raw)
    if not isinstance(raw, dict):
        return SkippedOrder(external_id=oid, reason="JOOR sent an order entry that is not an object")
    raw_status = status_text(raw)
    if oid.startswith(UNIDENTIFIED):
        return SkippedOrder(external_id=oid, raw=raw, source_status=raw_status,
                            reason="JOOR sent an order without a usable order_id; it cannot be imported")
    try:
        refused = not_eligible(raw, rules)
    except Problem as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=f"JOOR order {oid}: {exc.message}", fix=exc.fix,
                               source_status=raw_status)
    if refused:
        return SkippedOrder(external_id=oid, reason=refused[0], raw=raw, source_status=raw_status,
                            order_date=_time_or_none(raw, "order_date"), final=refused[1])
    try:
        order = to_order(raw, rules)
    except Problem as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=f"JOOR order {oid}: {exc.message}", fix=exc.fix,
                               source_status=raw_status)
    except ValidationError as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=describe_validation_error(exc, oid),
                               fix=DEFAULT_FIX, source_status=raw_status)
    except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=f"JOOR order {oid} cannot be read: {exc}",
                               fix="report this order to orderbridge with its raw payload", source_status=raw_status)
    return DownloadedOrder(external_id=oid, raw=raw, order=order, source_status=raw_status)


def survey_item(raw: Any, rules: Rules) -> SurveyItem:
    oid = order_id_of(raw)
    if not isinstance(raw, dict):
        return SurveyItem(oid, "", None, "not an order object")
    try:
        refused = not_eligible(raw, rules)
    except Problem as exc:
        refused = (exc.message, False)
    return SurveyItem(oid, status_text(raw), _time_or_none(raw, "order_date"),
                      refused[0] if refused else "")


def cancellation(raw: Any) -> Cancellation | None:
    """A Cancellation when the order reads cancelled, else None."""
    if not isinstance(raw, dict) or normalize_status(raw.get("status")) != CANCELLED:
        return None
    oid = order_id_of(raw)
    if oid.startswith(UNIDENTIFIED):
        return None
    return Cancellation(external_id=oid, reason="cancelled at JOOR", canceled_at=_time_or_none(raw, "modified_date"))


# ------------------------------------------------------------------------------- inventory


def inventory_item(sku: str, quantity: int, rules: Rules, warehouse: str) -> dict[str, Any] | str:
    """The bulk-inventory item for one SKU, or why it cannot be sent."""
    item: dict[str, Any] = {"warehouse": warehouse, "inventory": max(0, int(quantity))}
    if rules.sku_field == "upc":
        item["upc"] = sku
        return item
    parts = sku.rsplit(rules.sku_separator, 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        return (f"SKU {sku!r} is not style{rules.sku_separator}color{rules.sku_separator}size, so JOOR cannot tell "
                "which size it is: add a SKU alias in that form")
    item.update(style_number=parts[0], color_code=parts[1], size=parts[2])
    return item


def inventory_refusals(skus: list[str], log: list[Any]) -> dict[str, str]:
    """{sku: JOOR's reason} for the items JOOR's inventory_log marks failed (entries follow the items)."""
    refused: dict[str, str] = {}
    for i, sku in enumerate(skus):
        entry = log[i] if i < len(log) else None
        if entry is None:
            refused[sku] = "JOOR's inventory log has no entry for this SKU, so it may not have been applied"
            continue
        if not isinstance(entry, dict):
            entry = {"status": "fail", "message": entry}
        if printable(entry.get("status", "")).strip().lower() != "pass":
            reason = storable_text(printable(entry.get("message") or entry.get("error") or "")).strip()[:300]
            refused[sku] = f"JOOR refused the stock level: {reason or 'no reason given'}"
    return refused
