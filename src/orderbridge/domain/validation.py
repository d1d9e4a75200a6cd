"""Turn pydantic validation failures into sentences that name the order and the field."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, order_label: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "order"
        parts.append(f"{where}: {err['msg']}")
    more = f" (and {len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return f"Order {order_label} is not valid: " + "; ".join(parts) + more
