"""Wix eCommerce JSON <-> orderbridge's canonical model. Pure functions, no I/O.

Downloads never raise: a payload that cannot be mapped becomes ``DownloadedOrder(order=None,
error=..., fix=...)``, an order the connection does not import becomes a ``SkippedOrder`` with its
reason. Amounts stay ``Decimal``; timestamps must carry a time zone (Wix sends ``Z``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder, SurveyItem, WebhookEvent
from orderbridge.connectors.errors import DataError
from orderbridge.domain.models import Address, Cancellation, Order, OrderLine, Totals

CENT = Decimal("0.01")
UNIT = Decimal("0.0001")
LIMIT = Decimal(10) ** 12
ZERO_VARIANT = "00000000-0000-0000-0000-000000000000"
FIX_IN_WIX = "correct the order in Wix (or ask Wix support), then re-pull it"


class MappingError(Exception):
    def __init__(self, message: str, fix: str = FIX_IN_WIX) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class Options:
    """The connection settings mapping depends on (built from the connector's settings)."""

    import_orders: str = "any_payment_status"  # or "paid_only"
    partially_refunded_is_paid: bool = True
    tax_id_fields: tuple[str, ...] = ("NIF", "CIF", "NIF/CIF", "DNI", "NIE", "VAT", "VAT number", "Tax ID")
    missing_sku: str = "error"  # or "product_id", "skip_line"
    earliest_order_date: date | None = None
    carrier_aliases: dict[str, str] = field(default_factory=dict)
    tracking_links: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- safe access
def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _s(x: Any) -> str:
    if isinstance(x, str):
        return x.strip()
    if isinstance(x, int | float) and not isinstance(x, bool):
        return str(x)
    return ""


def _money(x: Any, what: str) -> Decimal | None:
    """A Wix Price (``{amount: "12.50"}``), or a bare number/string; None when absent."""
    if isinstance(x, dict):
        x = x.get("amount")
    if x is None or x == "":
        return None
    if isinstance(x, bool) or not isinstance(x, str | int | float):
        raise MappingError(f"{what} is not an amount: {x!r}"[:300])
    try:
        value = Decimal(str(x).strip())
    except InvalidOperation:
        raise MappingError(f"{what} is not an amount: {x!r}"[:300]) from None
    if not value.is_finite() or abs(value) > LIMIT:
        raise MappingError(f"{what} is out of range: {x!r}"[:300])
    return value


def _amount(x: Any, what: str) -> Decimal:
    return _money(x, what) or Decimal(0)


def _rate(li: dict[str, Any]) -> Decimal:
    """Tax rate as a fraction ("0.21"); a value above 1 is read as a percentage."""
    for holder in (_d(li.get("taxInfo")), _d(li.get("taxDetails"))):
        rate = _money(holder.get("taxRate"), "tax rate")
        if rate is not None:
            if rate < 0:
                raise MappingError(f"tax rate {rate} is negative")
            return rate / 100 if rate > 1 else rate
    return Decimal(0)


def parse_when(value: Any, what: str) -> datetime:
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"the order has no {what}")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MappingError(f"{what} {value!r} is not a timestamp"[:300]) from None
    if dt.tzinfo is None:
        raise MappingError(f"{what} {value!r} has no time zone"[:300])
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise MappingError(f"{what} {value!r} is out of range"[:300]) from None


def _digest(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ statuses
def source_status(raw: dict[str, Any]) -> str:
    return f"{_s(raw.get('status')) or '?'}/{_s(raw.get('paymentStatus')) or '?'}"[:60]


def is_paid(raw: dict[str, Any], opts: Options) -> bool:
    pay = _s(raw.get("paymentStatus"))
    return pay == "PAID" or (pay == "PARTIALLY_REFUNDED" and opts.partially_refunded_is_paid)


def not_eligible(raw: dict[str, Any], opts: Options) -> tuple[str, bool] | None:
    """(reason, final) when this connection does not import the order (now, or ever)."""
    status, pay = _s(raw.get("status")), _s(raw.get("paymentStatus"))
    if status == "CANCELED":
        return "cancelled at Wix: cancelled orders are never imported", True
    if status == "REJECTED":
        return "rejected at Wix (its pending payment failed)", True
    if pay == "FULLY_REFUNDED":
        return "fully refunded at Wix: refunded orders are never imported", True
    if status == "INITIALIZED":
        return "checkout not completed at Wix (status Initialized)", False
    if pay in ("DECLINED", "CANCELED"):
        return f"payment {pay.lower()} at Wix; imported if the buyer pays", False
    if opts.earliest_order_date:
        try:
            created = parse_when(raw.get("createdDate"), "creation date")
        except MappingError:
            created = None
        if created and created.date() < opts.earliest_order_date:
            return f"placed before the earliest order date ({opts.earliest_order_date})", True
    if opts.import_orders == "paid_only" and not is_paid(raw, opts):
        return f"not paid at Wix yet (payment status {pay or 'unknown'}); imported once paid", False
    return None


# ---------------------------------------------------------------------------------- lines
def line_sku(li: dict[str, Any], missing_sku: str) -> str:
    sku = _s(_d(li.get("physicalProperties")).get("sku"))
    if sku or missing_sku != "product_id":
        return sku
    ref = _d(li.get("catalogReference"))
    product = _s(ref.get("catalogItemId"))
    variant = _s(_d(ref.get("options")).get("variantId"))
    return f"{product}:{variant}" if product and variant and variant != ZERO_VARIANT else product


def _line_name(li: dict[str, Any]) -> str:
    name = _d(li.get("productName"))
    return _s(name.get("original")) or _s(name.get("translated")) or "item"


def _description(li: dict[str, Any]) -> str:
    parts = []
    for dl in _l(li.get("descriptionLines")):
        dl = _d(dl)
        label = _s(_d(dl.get("name")).get("original"))
        value = _s(_d(dl.get("plainText")).get("original")) or _s(_d(dl.get("colorInfo")).get("original"))
        if label or value:
            parts.append(f"{label}: {value}" if label and value else label or value)
    name = _line_name(li)
    return f"{name} ({'; '.join(parts)})" if parts else name


def _quantity(li: dict[str, Any], name: str) -> int:
    q = li.get("quantity")
    if isinstance(q, str) and q.strip().isdigit():
        q = int(q.strip())
    if not isinstance(q, int) or isinstance(q, bool) or q <= 0:
        raise MappingError(f"line {name!r} has an invalid quantity {q!r}"[:300])
    return q


def map_line(li: Any, opts: Options, tax_included: bool) -> tuple[OrderLine | None, str]:
    """The canonical line (unit price and discount net of tax) and its tax rate; None to skip it."""
    if not isinstance(li, dict):
        raise MappingError("a line item is not an object")
    name = _line_name(li)
    qty = _quantity(li, name)
    sku = line_sku(li, opts.missing_sku)
    if not sku:
        if opts.missing_sku == "skip_line":
            return None, ""
        raise MappingError(f"line {name!r} has no SKU"[:300],
                           fix="give the product (or variant) a SKU in Wix, then re-pull the order; or change "
                               "the 'lines without a SKU' setting")
    rate = _rate(li)
    tax = _money(_d(li.get("taxInfo")).get("taxAmount"), "line tax")
    if tax is None:
        tax = _amount(_d(li.get("taxDetails")).get("totalTax"), "line tax")
    discount = _amount(li.get("totalDiscount"), "line discount")
    unit = _money(li.get("priceBeforeDiscounts"), "line price")
    if unit is None:
        price = _money(li.get("price"), "line price")
        if price is None:
            raise MappingError(f"line {name!r} has no price"[:300])
        unit = price + discount / qty
    if tax_included:  # Wix prices then include tax: the canonical model keeps them net
        unit, discount = unit / (1 + rate), discount / (1 + rate)
    line = OrderLine(sku=sku, quantity=qty, unit_price=unit.quantize(UNIT), discount=discount.quantize(CENT),
                     tax=tax.quantize(CENT), description=_description(li)[:500],
                     external_line_id=_s(li.get("id")))
    return line, str(rate.normalize()) if rate else "0"


# ------------------------------------------------------------------------------ addresses
def map_address(awc: Any, email: str = "") -> Address:
    awc = _d(awc)
    a, c = _d(awc.get("address")), _d(awc.get("contactDetails"))
    line1 = _s(a.get("addressLine1")) or _s(a.get("addressLine"))
    if not line1:
        street = _d(a.get("streetAddress"))
        line1 = " ".join(p for p in (_s(street.get("name")), _s(street.get("number"))) if p)
    country = _s(a.get("country")).upper()
    sub = _s(a.get("subdivision"))
    state = sub.split("-", 1)[1] if country and sub.upper().startswith(country + "-") else sub
    name = " ".join(p for p in (_s(c.get("firstName")), _s(c.get("lastName"))) if p)
    return Address(name=name, company=_s(c.get("company")), address1=line1, address2=_s(a.get("addressLine2")),
                   city=_s(a.get("city")), state=state, zip=_s(a.get("postalCode")), country=country,
                   phone=_s(c.get("phone")), email=email)


def _ship_to(raw: dict[str, Any], email: str, bill_to: Address) -> tuple[Address, bool]:
    logistics = _d(_d(raw.get("shippingInfo")).get("logistics"))
    for candidate in (logistics.get("shippingDestination"), raw.get("recipientInfo")):
        addr = map_address(candidate, email)
        if addr.address1 or addr.city:
            return addr, False
    pickup = _d(logistics.get("pickupDetails"))
    if pickup:
        addr = map_address({"address": pickup.get("address")}, email)
        if addr.address1 or addr.city:
            return addr.model_copy(update={"name": bill_to.name, "company": bill_to.company,
                                           "phone": bill_to.phone}), True
    if bill_to.address1 or bill_to.city:
        return bill_to, False
    raise MappingError("the order has no shipping or billing address",
                       fix="add the buyer's address to the order in Wix, then re-pull it")


def tax_id(raw: dict[str, Any], opts: Options) -> str:
    """The buyer's tax id: a checkout custom field named like NIF/VAT, else Wix's (Brazil-only) vatId."""
    def norm(t: str) -> str:
        return "".join(ch for ch in t.lower() if ch.isalnum())
    wanted = {norm(t) for t in opts.tax_id_fields}
    for cf in _l(raw.get("customFields")):
        cf = _d(cf)
        titles = {norm(_s(cf.get("title"))), norm(_s(cf.get("translatedTitle")))}
        value = _s(cf.get("value"))
        if value and titles & wanted:
            return "".join(value.split()).upper()[:60]
    vat = _d(_d(_d(raw.get("billingInfo")).get("contactDetails")).get("vatId"))
    return _s(vat.get("id")).upper()[:60]


# ---------------------------------------------------------------------------------- order
def to_order(raw: dict[str, Any], opts: Options) -> Order:
    """Raises MappingError or pydantic's ValidationError; ``to_download_item`` catches both."""
    oid = _s(raw.get("id"))
    if not oid:
        raise MappingError("the order has no id")
    currency = _s(raw.get("currency")).upper()[:3]
    tax_included = raw.get("taxIncludedInPrices") is True
    lines, rates = [], {}
    for li in _l(raw.get("lineItems")):
        line, rate = map_line(li, opts, tax_included)
        if line is not None:
            lines.append(line)
            rates[line.external_line_id or line.sku] = rate
    if not lines:
        raise MappingError("the order has no line items with a SKU" if _l(raw.get("lineItems"))
                           else "the order has no line items")
    buyer = _d(raw.get("buyerInfo"))
    email = _s(buyer.get("email"))
    bill_to = map_address(raw.get("billingInfo"), email)
    ship_to, pickup = _ship_to(raw, email, bill_to)
    ship = _d(raw.get("shippingInfo"))
    cost = _d(ship.get("cost"))
    ps = _d(raw.get("priceSummary"))
    shipping = _amount(ps.get("shipping"), "shipping") if ps.get("shipping") is not None \
        else _amount(cost.get("price"), "shipping")
    total = _money(ps.get("total"), "order total")
    if total is None:
        total = sum((ln.line_total for ln in lines), Decimal(0)) + shipping
    totals = Totals(subtotal=_amount(ps.get("subtotal"), "subtotal").quantize(CENT), shipping=shipping.quantize(CENT),
                    tax=_amount(ps.get("tax"), "tax").quantize(CENT),
                    discount=_amount(ps.get("discount"), "discount").quantize(CENT), total=total.quantize(CENT),
                    currency=currency)
    number = _s(raw.get("number")) or oid
    ship_rate = _rate(cost)
    extra = {
        "wix_number": number, "status": _s(raw.get("status")), "payment_status": _s(raw.get("paymentStatus")),
        "fulfillment_status": _s(raw.get("fulfillmentStatus")), "tax_included_in_prices": tax_included,
        "line_tax_rates": rates, "pickup": pickup, "channel": _s(_d(raw.get("channelInfo")).get("type")),
        "buyer_language": _s(raw.get("buyerLanguage")),
        "shipping": {"title": _s(ship.get("title")), "code": _s(ship.get("code")),
                     "net": str(_amount(cost.get("totalPriceBeforeTax"), "shipping").quantize(CENT)),
                     "tax_rate": str(ship_rate.normalize()) if ship_rate else "0",
                     "tax": str(_amount(_d(cost.get("taxDetails")).get("totalTax"), "shipping tax").quantize(CENT))},
        "additional_fees": [
            {"name": _s(f.get("name")) or _s(f.get("code")) or "fee",
             "net": str(_amount(f.get("priceBeforeTax") or f.get("price"), "fee").quantize(CENT)),
             "tax_rate": str(_rate(f).normalize()) if _rate(f) else "0"}
            for f in map(_d, _l(raw.get("additionalFees")))],
    }
    return Order(
        external_id=oid, cust_po_no=number[:200], order_date=parse_when(
            raw.get("createdDate") or raw.get("purchasedDate"), "creation date"),
        source_status=source_status(raw), ship_to=ship_to, bill_to=bill_to, lines=lines,
        shipping_method=_s(ship.get("title"))[:200], totals=totals, notes=_s(raw.get("buyerNote"))[:2000],
        customer_id=_s(buyer.get("contactId"))[:200], tax_id=tax_id(raw, opts), paid=is_paid(raw, opts), extra=extra,
    )


def _explain(exc: ValidationError) -> str:
    problems = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        problems.append(f"{where}: {e.get('msg', '')}" if where else str(e.get("msg", "")))
    return "; ".join(problems)


def to_download_item(raw: Any, opts: Options) -> DownloadItem:
    """What the engine gets for one Wix order; never raises."""
    if not isinstance(raw, dict):
        return DownloadedOrder(external_id=f"invalid-{_digest(raw)}", raw={"value": str(raw)[:1000]},
                               error="Wix sent an order that is not an object", fix=FIX_IN_WIX)
    external_id = _s(raw.get("id"))[:200] or f"no-id-{_digest(raw)}"
    status = source_status(raw)
    try:
        skip = not_eligible(raw, opts)
        if skip:
            created = None
            try:
                created = parse_when(raw.get("createdDate"), "creation date")
            except MappingError:
                pass
            return SkippedOrder(external_id=external_id, reason=skip[0], raw=raw, source_status=status,
                                order_date=created, final=skip[1])
        order = to_order(raw, opts)
    except MappingError as exc:
        return DownloadedOrder(external_id=external_id, raw=raw, error=f"Wix order {_number(raw)}: {exc.message}",
                               fix=exc.fix, source_status=status)
    except ValidationError as exc:
        return DownloadedOrder(external_id=external_id, raw=raw,
                               error=f"Wix order {_number(raw)} cannot be read: {_explain(exc)}"[:1000],
                               fix=FIX_IN_WIX, source_status=status)
    except (ArithmeticError, ValueError, TypeError) as exc:  # a safety net: bad data is never a crash
        return DownloadedOrder(external_id=external_id, raw=raw,
                               error=f"Wix order {_number(raw)} cannot be read: {exc}"[:1000],
                               fix=FIX_IN_WIX, source_status=status)
    return DownloadedOrder(external_id=external_id, raw=raw, order=order, source_status=status)


def _number(raw: dict[str, Any]) -> str:
    return f"#{_s(raw.get('number'))}" if _s(raw.get("number")) else _s(raw.get("id"))[:60] or "(no id)"


def survey_item(raw: Any, opts: Options) -> SurveyItem:
    raw = _d(raw)
    try:
        created: datetime | None = parse_when(raw.get("createdDate"), "creation date")
    except MappingError:
        created = None
    item = to_download_item(raw, opts)
    reason = item.reason if isinstance(item, SkippedOrder) else (item.error if item.order is None else "")
    return SurveyItem(external_id=item.external_id, source_status=source_status(raw), order_date=created,
                      not_eligible_reason=reason)


def cancellation(raw: Any) -> Cancellation | None:
    raw = _d(raw)
    if _s(raw.get("status")) != "CANCELED" or not _s(raw.get("id")):
        return None
    when = None
    for act in reversed(_l(raw.get("activities"))):
        if _s(_d(act).get("type")) == "ORDER_CANCELED":
            try:
                when = parse_when(_d(act).get("createdDate"), "cancel date")
            except MappingError:
                when = None
            break
    if when is None:
        try:
            when = parse_when(raw.get("updatedDate"), "update date")
        except MappingError:
            when = None
    return Cancellation(external_id=_s(raw.get("id")), reason=f"cancelled at Wix (order {_number(raw)})",
                        canceled_at=when)


# ------------------------------------------------------------------------------- webhooks
ORDER_EVENTS = {"wix.ecom.v1.order_created", "wix.ecom.v1.order_updated", "wix.ecom.v1.order_approved",
                "wix.ecom.v1.order_payment_status_updated", "wix.ecom.v1.fulfillments_updated"}
CANCEL_EVENT = "wix.ecom.v1.order_canceled"


def _nested(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return _d(value)


def _event_entity(event: dict[str, Any]) -> dict[str, Any]:
    """The entity a domain event carries, in the current or the older (``...AsJson``) form."""
    created, updated, action = (_d(event.get(k)) for k in ("createdEvent", "updatedEvent", "actionEvent"))
    if created:
        return _d(created.get("entity")) or _nested(created.get("entityAsJson"))
    if updated:
        return _d(updated.get("currentEntity")) or _nested(updated.get("currentEntityAsJson"))
    body = _d(action.get("body")) or _nested(action.get("bodyAsJson"))
    return _d(body.get("order")) or body


def webhook_event(envelope: dict[str, Any], fallback_id: str, instance_id: str = "") -> WebhookEvent:
    """The hint a verified Wix webhook gives the engine (which de-duplicates on event_id)."""
    event = _nested(envelope.get("data"))
    if not event:
        raise DataError("Webhook carries no Wix domain event", fix="nothing to do; the poller still runs")
    event_id = _s(event.get("id")) or fallback_id
    event_type = _s(envelope.get("eventType"))
    if instance_id and _s(envelope.get("instanceId")) != instance_id:
        return WebhookEvent(event_id=event_id, kind="order", external_ids=[])  # another site's event
    entity = _event_entity(event)
    if event_type == "wix.ecom.v1.fulfillments_updated":
        order_id = _s(entity.get("orderId")) or _s(event.get("entityId"))
    else:
        order_id = _s(event.get("entityId")) or _s(entity.get("id"))
    if not order_id or (event_type not in ORDER_EVENTS and event_type != CANCEL_EVENT):
        return WebhookEvent(event_id=event_id, kind="order", external_ids=[])
    canceled = event_type == CANCEL_EVENT or _s(entity.get("status")) == "CANCELED"
    return WebhookEvent(event_id=event_id, kind="cancel" if canceled else "order", external_ids=[order_id])


# --------------------------------------------------------------------------- fulfillments
# Providers Wix recognises (it fills in the tracking link itself); any other name is shown as is.
AUTO_LINKED = ("fedex", "ups", "usps", "dhl", "canadaPost")
_PROVIDER_NAMES = {
    "fedex": "fedex", "federal express": "fedex", "ups": "ups", "united parcel service": "ups",
    "usps": "usps", "us postal service": "usps", "united states postal service": "usps",
    "uspostalservice": "usps", "dhl": "dhl", "dhl express": "dhl", "dhl parcel": "dhl",
    "canada post": "canadaPost", "canadapost": "canadaPost", "postes canada": "canadaPost",
}
MARKER = "orderbridgeShipment"  # customInfo field that identifies an untracked fulfillment as ours


def _key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


def provider_for(carrier: str, aliases: dict[str, str]) -> str:
    """The ``shippingProvider`` to send Wix for a backend's carrier name."""
    for name, provider in aliases.items():
        if _key(name) == _key(carrier):
            return provider
    key = _key(carrier)
    if key in _PROVIDER_NAMES or key.replace(" ", "") in _PROVIDER_NAMES:
        return _PROVIDER_NAMES.get(key) or _PROVIDER_NAMES[key.replace(" ", "")]
    first = key.split(" ")[0] if key else ""
    return first if first in ("fedex", "ups", "usps", "dhl") else carrier.strip()


def tracking_info(number: str, carrier: str, opts: Options) -> dict[str, str]:
    provider = provider_for(carrier, opts.carrier_aliases) or "other"
    info = {"trackingNumber": number, "shippingProvider": provider}
    if provider not in AUTO_LINKED:
        for name, template in opts.tracking_links.items():
            if _key(name) in (_key(carrier), _key(provider)):
                info["trackingLink"] = template.replace("{tracking}", number)
                break
    return info


@dataclass
class Planned:
    key: str  # tracking number, or the marker of an untracked shipment
    fulfillment: dict[str, Any]


@dataclass
class Plan:
    to_create: list[Planned] = field(default_factory=list)
    present: int = 0  # confirmations Wix already shows
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _remaining(raw_order: dict[str, Any], existing: list[dict[str, Any]], opts: Options) -> list[list[Any]]:
    """[line id, sku, units not yet fulfilled] per Wix line item, in order."""
    lines: list[list[Any]] = []
    for li in map(_d, _l(raw_order.get("lineItems"))):
        try:
            qty = _quantity(li, _line_name(li))
        except MappingError:
            continue
        lines.append([_s(li.get("id")), line_sku(li, opts.missing_sku), qty])
    done: dict[str, int] = {}
    for f in existing:
        for item in map(_d, _l(f.get("lineItems"))):
            q = item.get("quantity")
            lid = _s(item.get("id"))
            full = next((int(ln[2]) for ln in lines if ln[0] == lid), 0)
            done[lid] = done.get(lid, 0) + (q if isinstance(q, int) and not isinstance(q, bool) else full)
    for ln in lines:
        ln[2] = max(0, int(ln[2]) - done.get(str(ln[0]), 0))
    return lines


def _allocate(lines: list[list[Any]], wanted: dict[str, int], number: str, plan: Plan) -> list[dict[str, Any]]:
    """Wix line items for the units wanted per SKU; units of SKUs not on the order go to lines the
    shipment does not name, when that is unambiguous (the backend may use aliased SKUs)."""
    out: dict[str, int] = {}

    def take(ln: list[Any], qty: int) -> int:
        n = min(qty, ln[2])
        if n > 0:
            ln[2] -= n
            out[ln[0]] = out.get(ln[0], 0) + n
        return n

    unknown: dict[str, int] = {}
    for sku, qty in wanted.items():
        matching = [ln for ln in lines if ln[1] == sku]
        if not matching:
            unknown[sku] = qty
            continue
        for ln in matching:
            qty -= take(ln, qty)
        if qty > 0:
            plan.notes.append(f"{qty} unit(s) of {sku} were already fulfilled at Wix")
    if unknown:
        unnamed = [ln for ln in lines if ln[2] > 0 and ln[1] not in wanted]
        if len(unknown) == 1 and len(unnamed) == 1:
            take(unnamed[0], next(iter(unknown.values())))
        elif unnamed and sum(unknown.values()) == sum(ln[2] for ln in unnamed):
            for ln in unnamed:
                take(ln, ln[2])
        else:
            plan.problems.append(f"SKU(s) {', '.join(sorted(unknown))} shipped by the backend are not on "
                                 f"Wix order {number}")
    return [{"id": lid, "quantity": q} for lid, q in out.items()]


def plan_fulfillments(raw_order: dict[str, Any], shipment: Any, existing: list[dict[str, Any]],
                      opts: Options) -> Plan:
    """The Wix fulfillments one backend shipment still needs: one per package when packages carry
    their lines (each with its own tracking number), otherwise one for the whole shipment."""
    plan = Plan()
    number = _number(raw_order)
    lines = _remaining(raw_order, existing, opts)
    tracked = {_s(_d(f.get("trackingInfo")).get("trackingNumber")) for f in existing} - {""}
    marked = {_s(_d(_d(f.get("customInfo")).get("fieldsData")).get(MARKER)) for f in existing} - {""}
    packages = [p for p in shipment.packages if p.lines]
    groups: list[tuple[str, str, dict[str, int], str]] = []
    if packages:
        for i, p in enumerate(packages):
            wanted: dict[str, int] = {}
            for pl in p.lines:
                wanted[pl.sku] = wanted.get(pl.sku, 0) + pl.quantity
            groups.append((p.tracking_number, p.carrier or shipment.carrier, wanted, f"{shipment.external_id}#{i}"))
    else:
        numbers = shipment.all_tracking()
        if len(numbers) > 1:
            plan.notes.append(f"{len(numbers)} tracking numbers without per-package lines: joined in one "
                              "Wix fulfillment")
        groups.append((", ".join(numbers), shipment.carrier, shipment.quantities(), shipment.external_id))
    for tracking, carrier, wanted, marker in groups:
        if (tracking and tracking in tracked) or (not tracking and marker in marked):
            plan.present += 1
            continue
        if wanted:
            items = _allocate(lines, wanted, number, plan)
        else:  # no line detail: the shipment completes the order
            items = [{"id": ln[0], "quantity": ln[2]} for ln in lines if ln[2] > 0]
            for ln in lines:
                ln[2] = 0
        if not items:
            plan.present += 1
            plan.notes.append(f"nothing left to fulfill at Wix for {tracking or 'an untracked shipment'}")
            continue
        body: dict[str, Any] = {"lineItems": items}
        if tracking:
            body["trackingInfo"] = tracking_info(tracking, carrier, opts)
        else:
            body["customInfo"] = {"fieldsData": {MARKER: marker}}
        plan.to_create.append(Planned(key=tracking or marker, fulfillment=body))
    return plan
