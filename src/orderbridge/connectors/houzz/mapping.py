"""Houzz order payloads <-> the canonical model. Pure functions; a bad payload is a result, never
an exception: ``classify`` always returns a DownloadedOrder (maybe with ``error``) or a SkippedOrder.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder, SurveyItem
from orderbridge.connectors.fields import FieldReader
from orderbridge.domain.models import Address, Cancellation, Order, OrderLine, Totals
from orderbridge.domain.validation import describe_validation_error


class Program(StrEnum):
    SELLER = "seller"
    VENDOR = "vendor"


class Status(StrEnum):
    """Houzz order statuses, normalised (Houzz spells some of them several ways)."""

    NEW = "new"
    IN_PRODUCTION = "in_production"
    CHARGED = "charged"
    FAILED_TO_CHARGE = "failed_to_charge"
    SHIPPED = "shipped"
    CANCELED = "canceled"


STATUS_SPELLINGS = {
    "new": Status.NEW, "placed": Status.NEW, "inproduction": Status.IN_PRODUCTION,
    "processing": Status.IN_PRODUCTION, "charged": Status.CHARGED, "failedtocharge": Status.FAILED_TO_CHARGE,
    "shipped": Status.SHIPPED, "canceled": Status.CANCELED, "cancelled": Status.CANCELED, "cancel": Status.CANCELED,
}
LABELS = {Status.NEW: "New", Status.IN_PRODUCTION: "In Production", Status.CHARGED: "Charged",
          Status.FAILED_TO_CHARGE: "Failed to Charge", Status.SHIPPED: "Shipped", Status.CANCELED: "Cancelled"}
RANK = {Status.NEW: 0, Status.IN_PRODUCTION: 1, Status.CHARGED: 2}
CANCEL_REASONS = {"1": "out of stock / cannot fulfil", "2": "buyer requested", "3": "pricing error",
                  "4": "cannot ship to address", "5": "discontinued", "6": "other"}
MAX_ID_LENGTH = 100

US_CA_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA",
    "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM",
    "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC", "south dakota": "SD",
    "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
    "alberta": "AB", "british columbia": "BC", "manitoba": "MB", "new brunswick": "NB",
    "newfoundland and labrador": "NL", "nova scotia": "NS", "ontario": "ON", "prince edward island": "PE",
    "quebec": "QC", "québec": "QC", "saskatchewan": "SK", "northwest territories": "NT", "nunavut": "NU",
    "yukon": "YT",
}
COUNTRIES = {"us": "US", "usa": "US", "united states": "US", "united states of america": "US",
             "ca": "CA", "can": "CA", "canada": "CA"}


class Problem(Exception):
    """Why a Houzz order cannot become a canonical order, for the merchant, with the fix."""

    def __init__(self, message: str, fix: str = "correct the order in Houzz Seller Central") -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


_read = FieldReader(Problem, drop="$,")
_text, _amount, _quantity = _read.text, _read.amount, _read.quantity


@dataclass(frozen=True)
class Rules:
    """What this connection imports (its settings, as the mapping needs them)."""

    program: Program
    wait_for: Status  # the earliest status imported (later open statuses are imported too)
    earliest: date | None
    tz: tzinfo


# ------------------------------------------------------------------------------ small parts


def normalize_status(value: Any) -> Status | None:
    if not isinstance(value, str | int):
        return None
    return STATUS_SPELLINGS.get(re.sub(r"[\s_\-]", "", str(value)).lower())


def order_id_of(raw: Any) -> str:
    """The OrderId, or a stable stand-in when the payload has none (so it can still be reported)."""
    if isinstance(raw, dict):
        oid = raw.get("OrderId")
        if isinstance(oid, str | int) and not isinstance(oid, bool):
            text = str(oid).strip()
            if text and len(text) <= MAX_ID_LENGTH:
                return text
    digest = hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"houzz-unidentified-{digest}"


def parse_created(value: Any, tz: tzinfo) -> datetime:
    """Houzz's ``Created`` (``YYYY-MM-DD HH:MM:SS`` in the account's time zone) as UTC."""
    if not isinstance(value, str):
        raise Problem(f"the order date {value!r} is not a date-time")
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise Problem(f"the order date {text[:40]!r} is not a date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)


def _created_or_none(raw: dict[str, Any], tz: tzinfo) -> datetime | None:
    try:
        return parse_created(raw.get("Created"), tz)
    except (Problem, ValueError, OverflowError):
        return None


def state_code(state: str, country: str) -> str:
    if len(state) == 2:
        return state.upper()
    return US_CA_STATES.get(state.lower(), state) if country in ("US", "CA") else state


def country_code(country: str) -> str:
    if not country:
        return "US"  # the marketplace is US/Canada; Houzz omits the country for US addresses
    return COUNTRIES.get(country.lower(), country.upper() if len(country) == 2 else country)


def program_hint(raw: dict[str, Any]) -> tuple[Program, str] | None:
    """Which Houzz program an order comes from, with the evidence; None when it cannot be told."""
    items = [i for i in raw.get("OrderItems") or [] if isinstance(i, dict)] if isinstance(
        raw.get("OrderItems"), list) else []
    products = [i for i in items if str(i.get("Type", "Product")).lower() == "product"]
    if "Allowance" in raw and "Commission" not in raw:
        return Program.VENDOR, "it carries a vendor Allowance"
    if products and all("Cost" in i and "Price" not in i for i in products):
        return Program.VENDOR, "its lines carry a wholesale Cost and no retail Price"
    if "Commission" in raw and "Allowance" not in raw:
        return Program.SELLER, "it carries a seller Commission"
    status = normalize_status(raw.get("Status"))
    if status in (Status.NEW, Status.IN_PRODUCTION, Status.FAILED_TO_CHARGE):
        return Program.SELLER, f"it is {LABELS[status]}, a status only Seller orders have"
    return None


# ------------------------------------------------------------------------------ eligibility


def not_eligible(raw: dict[str, Any], rules: Rules) -> tuple[str, bool] | None:
    """(reason, final) when this connection must not import the order; None when it should."""
    raw_status = raw.get("Status")
    status = normalize_status(raw_status)
    if status is None:
        return (f"Houzz status {str(raw_status)[:40]!r} is unknown to orderbridge, so it cannot tell whether "
                "the order is ready to ship; it will be imported if Houzz moves it to a known status"), False
    if status == Status.SHIPPED:
        return ("already shipped at Houzz: shipped orders are never imported (mark orders shipped in Houzz "
                "before connecting so they are not sent twice)"), True
    if status == Status.CANCELED:
        return "cancelled at Houzz", True
    hint = program_hint(raw)
    if hint and hint[0] != rules.program:
        other = "Houzz Vendor" if hint[0] == Program.VENDOR else "Houzz Seller"
        mine = "Houzz Seller" if rules.program == Program.SELLER else "Houzz Vendor"
        return (f"this looks like a {other} order ({hint[1]}) but the connection type is {mine}: a wrong "
                f"connection type is the usual cause of missing Houzz orders; if you sell through the "
                f"{other.split()[1]} program, use a {other} connection"), False
    created = _created_or_none(raw, rules.tz)
    if rules.earliest and created and created < datetime.combine(rules.earliest, time(), rules.tz):
        return f"placed before the connection's earliest order date ({rules.earliest.isoformat()})", True
    if status == Status.FAILED_TO_CHARGE:
        return ("Houzz could not charge the buyer's card (Failed to Charge); it is imported once Houzz shows it "
                "Charged"), False
    if RANK[status] < RANK[rules.wait_for]:
        if rules.program == Program.VENDOR:
            return f"Houzz Vendor connections load Charged orders only; this order is {LABELS[status]}", False
        how = "mark it Processed" if rules.wait_for == Status.IN_PRODUCTION else "charge it"
        return (f"the order is {LABELS[status]} and this connection waits for {LABELS[rules.wait_for]} orders: "
                f"{how} in Houzz Seller Central, or change the connection's Order Status setting"), False
    return None


# --------------------------------------------------------------------------------- mapping


def _address(raw: dict[str, Any]) -> Address:
    addr = raw.get("Address")
    if not isinstance(addr, dict) or not addr:
        raise Problem("Houzz sent no ship-to address", fix="check the address in Houzz Seller Central; the "
                      "order is imported again once Houzz sends it complete")
    country = country_code(_text(addr.get("Country"), "the country", 60))
    return Address(
        name=_text(raw.get("CustomerName"), "the customer name", 200),
        address1=_text(addr.get("Address"), "the street address"),
        address2=_text(addr.get("Address1"), "the second address line"),
        city=_text(addr.get("City"), "the city", 200),
        state=state_code(_text(addr.get("State"), "the state", 100), country),
        zip=_text(addr.get("Zip"), "the ZIP code", 40),
        country=country,
        phone=_text(addr.get("Phone"), "the phone number", 60),
    )


def _lines(raw: dict[str, Any], program: Program) -> tuple[list[OrderLine], Totals, list[dict[str, str]]]:
    items = raw.get("OrderItems")
    if not isinstance(items, list | dict) or not items:
        raise Problem("the order has no items")
    lines: list[OrderLine] = []
    coupons: list[dict[str, str]] = []
    shipping = _amount(raw.get("FlatShipping"), "the flat shipping")
    tax = discount = subtotal = Decimal("0")
    for n, item in enumerate(items if isinstance(items, list) else [items], 1):
        if not isinstance(item, dict):
            raise Problem(f"item {n} is not an object")
        kind = _text(item.get("Type") or "Product", f"item {n}'s type", 60)
        price = _amount(item.get("Price"), f"item {n}'s price")
        if kind.lower() != "product":  # coupons and discounts: an order-level discount
            discount += abs(price) * (_quantity(item.get("Quantity") or 1, f"item {n}'s quantity"))
            coupons.append({"type": kind, "sku": _text(item.get("SKU"), "a coupon code", 200), "amount": str(price)})
            continue
        sku = _text(item.get("SKU"), f"item {n}'s SKU", 200)
        if not sku:
            raise Problem(f"item {n} ({_text(item.get('Title'), 'its title')[:60] or 'no title'}) has no SKU",
                          fix="give the listing a SKU in Houzz Seller Central")
        qty = _quantity(item.get("Quantity"), f"the quantity of {sku}")
        cost = _amount(item.get("Cost"), f"the cost of {sku}")
        # Vendors invoice Houzz at the wholesale Cost; sellers sell at the retail Price.
        unit = (cost if "Cost" in item else price) if program == Program.VENDOR else (
            price if "Price" in item else cost)
        if unit < 0:
            raise Problem(f"the price of {sku} is negative")
        line_tax = _amount(item.get("Tax"), f"the tax of {sku}") * qty
        line_ship = _amount(item.get("Shipping"), f"the shipping of {sku}") * qty
        if line_tax < 0 or line_ship < 0:
            raise Problem(f"the tax or shipping of {sku} is negative")
        tax += line_tax
        shipping += line_ship
        subtotal += unit * qty
        lines.append(OrderLine(sku=sku, quantity=qty, unit_price=unit, tax=line_tax,
                               description=_text(item.get("Title"), f"the title of {sku}", 2000)[:500],
                               external_line_id=_text(item.get("ProductId"), "a product id", 200) or str(n)))
    if not lines:
        raise Problem("the order has no product lines")
    computed = subtotal + shipping + tax - discount
    total = computed
    if program == Program.SELLER and _text(raw.get("OrderTotal"), "the order total", 60):
        total = _amount(raw.get("OrderTotal"), "the order total")
    totals = Totals(subtotal=subtotal, shipping=shipping, tax=tax, discount=discount, total=total, currency="USD")
    return lines, totals, coupons


def to_order(raw: dict[str, Any], rules: Rules) -> Order:
    """The canonical order; raises Problem (or pydantic's ValidationError) when it cannot be built."""
    oid = order_id_of(raw)
    status = normalize_status(raw.get("Status"))
    lines, totals, coupons = _lines(raw, rules.program)
    ship_to = _address(raw)
    extra: dict[str, Any] = {"program": rules.program.value, "houzz_status": str(raw.get("Status", ""))}
    for key, name in (("ShipByDate", "ship_by"), ("OrderTotal", "houzz_order_total"),
                      ("Commission", "commission"), ("Allowance", "allowance")):
        if raw.get(key) not in (None, ""):
            extra[name] = _text(raw.get(key), key, 60)
    if coupons:
        extra["coupons"] = coupons
    return Order(
        external_id=oid,
        cust_po_no=oid,
        order_date=parse_created(raw.get("Created"), rules.tz),
        source_status=str(raw.get("Status", ""))[:60],
        ship_to=ship_to,
        bill_to=ship_to.model_copy(),  # Houzz exposes one address; backends that need a bill-to get it
        lines=lines,
        shipping_method=_text(raw.get("ShippingMethod"), "the shipping method", 100),
        totals=totals,
        notes=_text(raw.get("Comments"), "the buyer's comments", 4000),
        paid=status in (Status.CHARGED, Status.SHIPPED),
        extra=extra,
    )


def classify(raw: Any, rules: Rules) -> DownloadItem:
    """One getOrders entry as what the engine stores: an order, an order in error, or a skip."""
    oid = order_id_of(raw)
    if not isinstance(raw, dict):
        return SkippedOrder(external_id=oid, reason="Houzz sent an order entry that is not an object")
    raw_status = str(raw.get("Status", ""))[:60]
    if oid.startswith("houzz-unidentified-"):
        return SkippedOrder(external_id=oid, raw=raw, source_status=raw_status,
                            reason="Houzz sent an order without a usable OrderId; it cannot be imported")
    refused = not_eligible(raw, rules)
    if refused:
        return SkippedOrder(external_id=oid, reason=refused[0], raw=raw, source_status=raw_status,
                            order_date=_created_or_none(raw, rules.tz), final=refused[1])
    try:
        order = to_order(raw, rules)
    except Problem as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=f"Houzz order {oid}: {exc.message}", fix=exc.fix,
                               source_status=raw_status)
    except ValidationError as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=describe_validation_error(exc, oid),
                               fix="correct the order in Houzz Seller Central", source_status=raw_status)
    except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
        return DownloadedOrder(external_id=oid, raw=raw, error=f"Houzz order {oid} cannot be read: {exc}",
                               fix="report this order to orderbridge with its raw payload",
                               source_status=raw_status)
    return DownloadedOrder(external_id=oid, raw=raw, order=order, source_status=raw_status)


def survey_item(raw: Any, rules: Rules) -> SurveyItem:
    oid = order_id_of(raw)
    if not isinstance(raw, dict):
        return SurveyItem(oid, "", None, "not an order object")
    refused = not_eligible(raw, rules)
    return SurveyItem(oid, str(raw.get("Status", ""))[:60], _created_or_none(raw, rules.tz),
                      refused[0] if refused else "")


def cancellation(raw: Any, tz: tzinfo) -> Cancellation | None:
    """A Cancellation when the order reads cancelled, else None."""
    if not isinstance(raw, dict) or normalize_status(raw.get("Status")) != Status.CANCELED:
        return None
    oid = order_id_of(raw)
    if oid.startswith("houzz-unidentified-"):
        return None
    code = str(raw.get("CancelCode", "") or "").strip()
    comments = str(raw.get("CancelComments", "") or "").strip()[:300]
    parts = [p for p in (CANCEL_REASONS.get(code, f"code {code}" if code else ""), comments) if p]
    unique = [p for i, p in enumerate(parts) if p.lower() not in (q.lower() for q in parts[:i])]
    reason = "cancelled at Houzz" + (f": {'; '.join(unique)}" if unique else "")
    when = None
    if raw.get("CancelDate"):
        try:
            when = parse_created(raw.get("CancelDate"), tz)
        except (Problem, ValueError, OverflowError):
            when = None
    return Cancellation(external_id=oid, reason=reason, canceled_at=when)
