"""Wix sandbox: building orders in Wix's own eCommerce format (seeding and bulk generation).

A seeded order may be a complete Wix order, or use shorthands that are expanded here:
``lines: [{sku, quantity, price, taxRate, discount, name, productId, variantId, options}]``,
``shipping: {title, code, price, taxRate}`` and ``buyer: {firstName, lastName, email, phone, company,
addressLine1, city, postalCode, country, subdivision, contactId}``. Money fields are computed the way
Wix reports them (unit price after discounts, line totals before and after tax, price summary).
"""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ZERO_VARIANT = "00000000-0000-0000-0000-000000000000"
STORES_APP_ID = "215238eb-22a5-4c36-9e7b-e7c08025e04e"
CENT = Decimal("0.01")
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CAD": "CA$", "AUD": "A$"}

_FIRST = ["Ada", "Lucía", "Hugo", "Marta", "Pablo", "Elena", "Jorge", "Carmen", "Nora", "Iván"]
_LAST = ["García", "Lovelace", "Martín", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno"]
_PLACES = [
    ("Calle Mayor 1", "Madrid", "28013", "ES", "ES-M"),
    ("Passeig de Gràcia 43", "Barcelona", "08007", "ES", "ES-B"),
    ("Calle Larios 5", "Málaga", "29005", "ES", "ES-MA"),
    ("1 Main St", "Springfield", "62701", "US", "US-IL"),
    ("221 Baker St", "London", "NW1 6XE", "GB", "GB-LND"),
]


def iso(dt: datetime) -> str:
    """Wix's timestamp form; one fixed width so that strings sort like instants."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime:
    """An ISO timestamp (``Z`` or an offset; ``{"$date": ...}`` accepted) as aware UTC."""
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def dec(value: Any, default: str = "0") -> Decimal:
    if isinstance(value, dict):
        value = value.get("amount", default)
    if value is None or value == "":
        value = default
    return Decimal(str(value))


def money(amount: Decimal, currency: str) -> dict[str, str]:
    q = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return {"amount": str(q), "formattedAmount": f"{SYMBOLS.get(currency, currency + ' ')}{q}"}


def _q(d: Decimal) -> Decimal:
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    street, city, postal, country, subdivision = rng.choice(_PLACES)
    return {
        "firstName": first, "lastName": last, "phone": f"+34 6{rng.randrange(10**7, 10**8)}",
        "email": f"{first.lower()}.{rng.randrange(10**6)}@example.com".encode("ascii", "ignore").decode(),
        "addressLine1": street, "city": city, "postalCode": postal, "country": country,
        "subdivision": subdivision, "company": "",
    }


def address_with_contact(p: dict[str, Any]) -> dict[str, Any]:
    contact = {"firstName": p.get("firstName", ""), "lastName": p.get("lastName", ""), "phone": p.get("phone", "")}
    if p.get("company"):
        contact["company"] = p["company"]
    return {
        "address": {
            "addressLine1": p.get("addressLine1", ""), "addressLine2": p.get("addressLine2", ""),
            "city": p.get("city", ""), "postalCode": p.get("postalCode", ""),
            "country": p.get("country", ""), "subdivision": p.get("subdivision", ""),
        },
        "contactDetails": contact,
    }


def build_line(spec: dict[str, Any], currency: str, tax_included: bool) -> dict[str, Any]:
    """A Wix OrderLineItem from the shorthand (a line whose ``price`` is an object is kept as is)."""
    if isinstance(spec.get("price"), dict):
        kept = copy.deepcopy(spec)
        kept.setdefault("id", str(uuid.uuid4()))
        return kept
    qty = int(spec.get("quantity", 1))
    unit = dec(spec.get("price"), "10")
    rate = dec(spec.get("taxRate"), "0")
    discount = _q(dec(spec.get("discount"), "0"))
    gross = unit * qty - discount  # after discounts; includes tax iff prices include tax
    if tax_included:
        tax = _q(gross - gross / (1 + rate))
        net, after = gross - tax, gross
    else:
        net = gross
        tax = _q(net * rate)
        after = net + tax
    name = spec.get("name") or f"Product {spec.get('sku', '')}".strip()
    line: dict[str, Any] = {
        "id": spec.get("id") or str(uuid.uuid4()),
        "productName": {"original": name, "translated": name},
        "quantity": qty,
        "price": money(unit - discount / qty if qty else unit, currency),
        "priceBeforeDiscounts": money(unit, currency),
        "totalDiscount": money(discount, currency),
        "totalPriceBeforeTax": money(net, currency),
        "totalPriceAfterTax": money(after, currency),
        "taxDetails": {"taxableAmount": money(net, currency), "taxRate": str(rate), "totalTax": money(tax, currency)},
        "taxInfo": {"taxAmount": money(tax, currency), "taxableAmount": money(net, currency), "taxRate": str(rate),
                    "taxIncludedInPrice": tax_included, "taxBreakdown": []},
        "physicalProperties": {"sku": spec.get("sku", ""), "shippable": spec.get("shippable", True)},
        "itemType": {"preset": spec.get("itemType", "PHYSICAL")},
        "descriptionLines": [
            {"name": {"original": k, "translated": k}, "plainText": {"original": v, "translated": v}}
            for k, v in (spec.get("options") or {}).items()
        ],
        "paymentOption": "FULL_PAYMENT_ONLINE",
        "refundQuantity": 0,
        "restockQuantity": 0,
    }
    if spec.get("productId"):
        line["catalogReference"] = {
            "catalogItemId": spec["productId"], "appId": STORES_APP_ID,
            "options": {"variantId": spec.get("variantId") or ZERO_VARIANT},
        }
    return line


def build_shipping(spec: dict[str, Any], dest: dict[str, Any], currency: str, tax_included: bool) -> dict[str, Any]:
    price = dec(spec.get("price"), "0")
    rate = dec(spec.get("taxRate"), "0")
    discount = _q(dec(spec.get("discount"), "0"))
    gross = price - discount
    if tax_included:
        tax = _q(gross - gross / (1 + rate))
        net, after = gross - tax, gross
    else:
        net, tax = gross, _q(gross * rate)
        after = net + tax
    return {
        "code": spec.get("code", "standard"), "title": spec.get("title", "Standard"),
        "logistics": {"deliveryTime": spec.get("deliveryTime", "3-5 business days"), "shippingDestination": dest},
        "cost": {
            "price": money(price, currency), "totalPriceBeforeTax": money(net, currency),
            "totalPriceAfterTax": money(after, currency), "discount": money(discount, currency),
            "taxDetails": {"taxableAmount": money(net, currency), "taxRate": str(rate),
                           "totalTax": money(tax, currency)},
        },
        "region": {"name": spec.get("region", "Domestic")},
    }


def price_summary(order: dict[str, Any]) -> dict[str, Any]:
    currency = order.get("currency", "EUR")
    lines = order.get("lineItems") or []
    subtotal = sum((dec(li.get("priceBeforeDiscounts") or li.get("price")) * int(li.get("quantity", 0))
                    for li in lines), Decimal(0))
    discount = sum((dec(li.get("totalDiscount")) for li in lines), Decimal(0))
    tax = sum((dec((li.get("taxDetails") or {}).get("totalTax")) for li in lines), Decimal(0))
    after = sum((dec(li.get("totalPriceAfterTax")) for li in lines), Decimal(0))
    cost = (order.get("shippingInfo") or {}).get("cost") or {}
    shipping = dec(cost.get("price"))
    discount += dec(cost.get("discount"))
    tax += dec((cost.get("taxDetails") or {}).get("totalTax"))
    after += dec(cost.get("totalPriceAfterTax"), str(shipping))
    return {
        "subtotal": money(subtotal, currency), "shipping": money(shipping, currency), "tax": money(tax, currency),
        "discount": money(discount, currency), "total": money(after, currency),
        "totalAdditionalFees": money(Decimal(0), currency),
    }


def build_order(spec: dict[str, Any], *, number: int, currency: str, now: datetime,
                rng: random.Random) -> dict[str, Any]:
    """A complete Wix order from a seed (Wix format, with the shorthands above)."""
    order = copy.deepcopy(spec)
    lines = order.pop("lines", None)
    shipping = order.pop("shipping", None)
    buyer = order.pop("buyer", None)
    order.setdefault("id", str(uuid.uuid4()))
    order.setdefault("number", str(number))
    order.setdefault("currency", currency)
    order.setdefault("taxIncludedInPrices", False)
    cur, incl = order["currency"], bool(order["taxIncludedInPrices"])
    created = parse_time(order["createdDate"]) if order.get("createdDate") else now
    order["createdDate"] = iso(created)
    order["updatedDate"] = iso(parse_time(order["updatedDate"])) if order.get("updatedDate") else iso(now)
    order.setdefault("status", "APPROVED")
    order.setdefault("paymentStatus", "PAID")
    order.setdefault("archived", False)
    order.setdefault("buyerLanguage", "es")
    order.setdefault("siteLanguage", "es")
    order.setdefault("weightUnit", "KG")
    order.setdefault("channelInfo", {"type": "WEB"})
    order.setdefault("appliedDiscounts", [])
    order.setdefault("additionalFees", [])
    order.setdefault("customFields", [])
    p = {**person(rng), **(buyer or {})}
    order.setdefault("buyerInfo", {"contactId": p.get("contactId") or str(uuid.uuid4()), "email": p["email"],
                                   "visitorId": str(uuid.uuid4())})
    order.setdefault("billingInfo", address_with_contact(p))
    if lines is not None:
        order["lineItems"] = [build_line(ln, cur, incl) for ln in lines]
    order.setdefault("lineItems", [])
    for li in order["lineItems"]:
        li.setdefault("id", str(uuid.uuid4()))
    if shipping is not None or "shippingInfo" not in order:
        order["shippingInfo"] = build_shipping(shipping or {}, address_with_contact(p), cur, incl)
    order.setdefault("priceSummary", price_summary(order))
    total = dec(order["priceSummary"].get("total"))
    paid = order["paymentStatus"] in {"PAID", "PARTIALLY_REFUNDED", "FULLY_REFUNDED"}
    order.setdefault("balanceSummary", {
        "balance": money(Decimal(0) if paid else total, cur), "paid": money(total if paid else Decimal(0), cur),
        "refunded": money(Decimal(0), cur), "authorized": money(Decimal(0), cur), "pending": money(Decimal(0), cur),
    })
    order.setdefault("fulfillmentStatus", "NOT_FULFILLED" if order.get("shippingInfo") else "FULFILLED")
    activities = [{"id": str(uuid.uuid4()), "createdDate": order["createdDate"], "type": "ORDER_PLACED"}]
    if order["paymentStatus"] == "PAID":
        activities.append({"id": str(uuid.uuid4()), "createdDate": order["createdDate"], "type": "ORDER_PAID"})
    order.setdefault("activities", activities)
    return order


def generated_spec(i: int, rng: random.Random, skus: list[str], *, paid_ratio: float, start: datetime,
                   spacing: float, tax_rate: str) -> dict[str, Any]:
    """One plausible order for bulk generation (benchmarks)."""
    n_lines = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
    chosen = rng.sample(skus, min(n_lines, len(skus)))
    at = start + timedelta(seconds=i * spacing)
    paid = rng.random() < paid_ratio
    return {
        "createdDate": iso(at), "updatedDate": iso(at),
        "status": "APPROVED", "paymentStatus": "PAID" if paid else "NOT_PAID",
        "lines": [{"sku": s, "quantity": rng.randint(1, 3), "price": f"{rng.randint(5, 120)}.{rng.randint(0, 99):02d}",
                   "taxRate": tax_rate} for s in chosen],
        "shipping": {"title": "Standard", "price": "4.95", "taxRate": tax_rate},
    }


class WixApiError(Exception):
    """An error answer in Wix's format: ``{message, details: {applicationError | validationError}}``."""

    def __init__(self, status: int, message: str, code: str = "", *, field: str = "",
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.field = field
        self.data = data or {}

    def body(self) -> dict[str, Any]:
        if self.field:
            violation = {"field": self.field, "description": self.message, "violatedRule": "VALIDATION",
                         "ruleName": self.code or "INVALID_VALUE", "data": self.data}
            return {"message": self.message, "details": {"validationError": {"fieldViolations": [violation]}}}
        if self.status >= 500:
            return {"message": "", "details": {}}
        error = {"code": self.code or "UNKNOWN", "description": self.message, "data": self.data}
        return {"message": self.message, "details": {"applicationError": error}}
