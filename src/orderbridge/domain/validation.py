"""Turn pydantic validation failures into sentences that name the order and the field."""

from __future__ import annotations

import json

from pydantic import ValidationError

from orderbridge.domain.models import Order


def describe_validation_error(exc: ValidationError, order_label: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "order"
        parts.append(f"{where}: {err['msg']}")
    more = f" (and {len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return f"Order {order_label} is not valid: " + "; ".join(parts) + more


# Field-size limits: an order carrying more than this is refused (in `error`, with the field named)
# rather than stored and sent on, where backends would truncate or reject it unpredictably.
ADDRESS_LIMITS = {"name": 300, "company": 300, "address1": 300, "address2": 300, "city": 200, "state": 100,
                  "zip": 40, "country": 100, "phone": 100, "email": 320}
ORDER_LIMITS = {"source_status": 100, "shipping_method": 300, "notes": 10_000, "customer_id": 300, "tax_id": 100}
LINE_LIMITS = {"description": 4_000, "external_line_id": 300}
EXTRA_BYTES = 64_000  # connector-specific facts, as JSON
MAX_ID_LENGTH = 200  # external ids and order numbers (the ledger's key columns)


def utf8_safe(text: str) -> str:
    """The text with lone surrogates (JSON may carry "\\ud800") replaced: no text column, JSON
    encoder or canonical model accepts them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def storable_text(text: str) -> str:
    """The text as every ledger column takes it: lone surrogates replaced and NUL characters dropped
    (PostgreSQL's text columns refuse NUL, so an order carrying one could not be stored at all)."""
    return utf8_safe(text).replace("\x00", "")


def oversized_fields(order: Order) -> list[str]:
    """Every field of the order longer than its limit, in words ("ship_to.city: 5000 characters, at most 200")."""
    problems: list[str] = []

    def check(where: str, value: str, limit: int) -> None:
        if len(value) > limit:
            problems.append(f"{where}: {len(value)} characters, at most {limit}")

    for side in ("ship_to", "bill_to"):
        address = getattr(order, side)
        for name, limit in ADDRESS_LIMITS.items():
            check(f"{side}.{name}", getattr(address, name), limit)
    for name, limit in ORDER_LIMITS.items():
        check(name, getattr(order, name), limit)
    for i, line in enumerate(order.lines, 1):
        for name, limit in LINE_LIMITS.items():
            check(f"lines[{i}].{name}", getattr(line, name), limit)
    check("totals.currency", order.totals.currency, 10)
    extra = len(json.dumps(order.extra, default=str))
    if extra > EXTRA_BYTES:
        problems.append(f"extra: {extra} bytes, at most {EXTRA_BYTES}")
    return problems


def describe_oversized(problems: list[str], order_label: str) -> str:
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"Order {order_label[:MAX_ID_LENGTH]} has fields too large to accept: " + "; ".join(problems[:5]) + more
