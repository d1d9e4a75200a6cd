"""CartRover's order format (what carts push) to the canonical order, and CartRover's date forms."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder
from orderbridge.domain.models import Order
from orderbridge.domain.validation import MAX_ID_LENGTH, describe_validation_error, storable_text

# Never kept in the ledger nor echoed back: card and bank data some legacy carts still send.
SECRET_FIELDS = ("credit_card_no", "cvv", "expiration_date", "check_account_no")

COUNTRIES = {"USA": "US", "CAN": "CA", "MEX": "MX", "GBR": "GB", "AUS": "AU", "DEU": "DE", "FRA": "FR",
             "ESP": "ES", "ITA": "IT", "NLD": "NL"}

_BARE_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_AMOUNT = Decimal(10) ** 12  # beyond any order; also keeps Decimal arithmetic from overflowing
MAX_QUANTITY = 1_000_000  # the canonical order's limit, checked before the number is made an int

FIX = "correct the order and send it again with the same cust_ref"


class InputProblem(ValueError):
    """A field of a pushed order cannot be read; the message names it."""


def parse_timestamp(value: str, *, end_of_day: bool = False) -> datetime:
    """ISO 8601 with a zone (a '+' decoded to a space is tolerated), or a bare YYYY-M-D date (UTC).

    Naive date-times are read as UTC. With ``end_of_day`` a bare date means its last instant."""
    text = value.strip()
    bare = _BARE_DATE.match(text)
    if bare:
        day = date(int(bare[1]), int(bare[2]), int(bare[3]))
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    # "2024-05-03T10:00:00 00:00": a raw '+' in a query string arrives as a space
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    try:  # a date at the calendar's edge with a zone can fall outside it once in UTC
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value[:40]!r} is out of range") from None


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise InputProblem(f"{key} must be a text value, not {type(value).__name__}")
    return storable_text(str(value)).strip()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _decimal(raw: Mapping[str, Any], key: str, where: str = "") -> Decimal:
    value = raw.get(key)
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise InputProblem(f"{where}{key} must be a number, got {_shown(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputProblem(f"{where}{key} must be a number, got {_shown(value)}") from None
    if not number.is_finite():
        raise InputProblem(f"{where}{key} must be a finite number, got {_shown(value)}")
    if number.copy_abs() >= MAX_AMOUNT:  # copy_abs: abs() would overflow on 1e999999999
        raise InputProblem(f"{where}{key} must be a plausible amount (below {MAX_AMOUNT:,}), got {_shown(value)}")
    return number


def _quantity(raw: Mapping[str, Any], where: str) -> int:
    number = _decimal(raw, "quantity", where)
    if number != number.to_integral_value() or not 0 < number <= MAX_QUANTITY:
        raise InputProblem(f"{where}quantity must be a whole number from 1 to {MAX_QUANTITY:,}, "
                           f"got {_shown(raw.get('quantity'))}")
    return int(number)


def _address(raw: Mapping[str, Any], prefix: str) -> dict[str, str]:
    name = " ".join(p for p in (_text(raw, f"{prefix}_first_name"), _text(raw, f"{prefix}_last_name")) if p)
    country = _text(raw, f"{prefix}_country")
    line2 = ", ".join(p for p in (_text(raw, f"{prefix}_address_2"), _text(raw, f"{prefix}_address_3")) if p)
    return {
        "name": name, "company": _text(raw, f"{prefix}_company"), "address1": _text(raw, f"{prefix}_address_1"),
        "address2": line2, "city": _text(raw, f"{prefix}_city"), "state": _text(raw, f"{prefix}_state"),
        "zip": _text(raw, f"{prefix}_zip"), "country": COUNTRIES.get(country.upper(), country),
        "phone": _text(raw, f"{prefix}_phone"), "email": _text(raw, f"{prefix}_e_mail"),
    }


def _yes(value: Any) -> bool:
    return str(value).strip().lower() in ("y", "yes", "true", "1")


def _index(key: Any) -> int:
    """An explicit line index (items[3]), for ordering; -1 when the key is not a plain number."""
    text = str(key)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else -1


def _lines(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = raw.get("items")
    if isinstance(items, dict):  # form bodies with explicit indices: items[0][item]=...
        items = [items[k] for k in sorted(items, key=_index)]
    if not isinstance(items, list):
        raise InputProblem("items must be a list of lines")
    lines = []
    for i, item in enumerate(items):
        where = f"items[{i}]."
        if not isinstance(item, dict):
            raise InputProblem(f"items[{i}] must be an object with item and quantity")
        sku = _text(item, "item") or _text(item, "sku")
        if not sku:
            raise InputProblem(f"{where}item (the SKU) is missing")
        qty = _quantity(item, where)
        price = _decimal(item, "price", where)
        discount = _decimal(item, "discount", where) * qty + _decimal(item, "addl_discount", where)
        lines.append({"sku": sku, "quantity": qty, "unit_price": price, "discount": discount,
                      "tax": _decimal(item, "tax", where), "description": _text(item, "description"),
                      "external_line_id": _text(item, "line_item_id")})
    return lines


def missing_fields(raw: Mapping[str, Any]) -> list[str]:
    """Required fields absent from a pushed order (CartRover names them in its error)."""
    missing = [] if _present(raw.get("cust_ref")) else ["cust_ref"]
    if not raw.get("items"):
        missing.append("items")
    return missing


def refusal(raw: Any) -> str | None:
    """Why a pushed entry is refused outright (answered with an error and not kept), or None.

    Only the reference decides: an order with a usable cust_ref is kept, in error if it is invalid."""
    if not isinstance(raw, dict):
        return "Each order must be a JSON object with cust_ref and items"
    missing = missing_fields(raw)
    if missing:
        return f"Order missing required field(s): {', '.join(missing)}"
    refs = [raw.get("cust_ref"), raw.get("cust_po_no")]
    texts = [str(v).strip() for v in refs if _present(v)]
    if any(len(text) > MAX_ID_LENGTH for text in texts):
        return f"cust_ref and cust_po_no hold at most {MAX_ID_LENGTH} characters"
    if any(_CONTROL.search(text) for text in texts):
        return "cust_ref and cust_po_no must not contain control characters (line breaks, tabs, NUL)"
    return None


def _present(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list) and str(value).strip() != ""


def clean_raw(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The pushed order as kept (and echoed to the warehouse): no card data, no NUL in its fields."""
    return {k: storable_text(v) if isinstance(v, str) else v for k, v in raw.items() if k not in SECRET_FIELDS}


def to_order(raw: Mapping[str, Any], *, now: datetime) -> Order:
    """The canonical order; InputProblem or pydantic's ValidationError when it cannot be one."""
    cust_ref = _text(raw, "cust_ref")
    order_date_text = _text(raw, "order_date")
    try:
        order_date = parse_timestamp(order_date_text) if order_date_text else now
    except ValueError:
        raise InputProblem(f"order_date must be YYYY-MM-DD or ISO 8601, got {order_date_text!r}") from None
    ship_to = _address(raw, "ship")
    bill_to = ship_to if _yes(raw.get("ship_is_billing", "")) else _address(raw, "cust")
    tax = _decimal(raw, "sales_tax") if _present(raw.get("sales_tax")) else _decimal(raw, "tax")
    extra = {k: _text(raw, k) for k in ("order_source", "ship_code_description", "gift_message",
                                        "special_services", "promo_code") if _present(raw.get(k))}
    return Order.model_validate({
        "external_id": cust_ref, "cust_po_no": _text(raw, "cust_po_no") or cust_ref, "order_date": order_date,
        "source_status": "new", "ship_to": ship_to, "bill_to": bill_to, "lines": _lines(raw),
        "shipping_method": _text(raw, "ship_code"),
        "totals": {"subtotal": _decimal(raw, "sub_total"), "shipping": _decimal(raw, "shipping_handling"),
                   "tax": tax, "discount": _decimal(raw, "order_discount"), "total": _decimal(raw, "grand_total"),
                   "currency": _text(raw, "currency_code")},
        "notes": _text(raw, "shipping_instructions"), "customer_id": _text(raw, "customer_id"), "extra": extra,
    })


def pushed_order(raw: Mapping[str, Any], *, now: datetime, earliest: date | None) -> DownloadItem:
    """One order pushed by a cart, as the engine ingests it (cust_ref must be present)."""
    cust_ref = _text(raw, "cust_ref")
    stored = clean_raw(raw)
    try:
        order = to_order(raw, now=now)
    except InputProblem as exc:
        return DownloadedOrder(external_id=cust_ref, raw=stored, error=str(exc), fix=FIX)
    except ValidationError as exc:
        return DownloadedOrder(external_id=cust_ref, raw=stored, error=describe_validation_error(exc, cust_ref),
                               fix=FIX)
    if earliest and order.order_date.date() < earliest:
        return SkippedOrder(external_id=cust_ref, raw=stored, order_date=order.order_date, final=True,
                            reason=f"placed on {order.order_date.date()}, before the connection's earliest "
                                   f"order date {earliest}")
    return DownloadedOrder(external_id=cust_ref, raw=stored, order=order, source_status="new")
