"""Reading an API's loosely typed fields (text, amounts, quantities) for a connector's mapping.

Each mapping raises its own `Problem` (message + fix for the merchant); a FieldReader built with
that class turns anything a payload can hold (wrong types, huge numbers, NaN, NUL) into a value or
that Problem, never a TypeError or an arithmetic overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from orderbridge.domain.validation import storable_text

MAX_AMOUNT = Decimal(10) ** 9  # beyond any order line; keeps Decimal arithmetic from overflowing
MAX_QUANTITY = 1_000_000


def printable(value: Any) -> str:
    """str(value), or "" for an integer too long to print (Python refuses beyond 4300 digits)."""
    try:
        return str(value)
    except ValueError:
        return ""


class FieldReader:
    def __init__(self, problem: Callable[[str], Exception], drop: str = ",") -> None:
        self.problem = problem
        self.drop = drop  # characters people write inside amounts ("$1,200.00")

    def text(self, value: Any, what: str, limit: int = 500) -> str:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            raise self.problem(f"{what} is not text")
        text = storable_text(printable(value)).strip()
        if len(text) > limit:
            raise self.problem(f"{what} is longer than {limit} characters")
        return text

    def amount(self, value: Any, what: str) -> Decimal:
        if value is None or (isinstance(value, str) and not value.strip()):
            return Decimal("0")
        if isinstance(value, bool | dict | list):
            raise self.problem(f"{what} is not a number")
        text = printable(value).strip()
        try:
            amount = Decimal(text.translate({ord(c): None for c in self.drop}))
        except (InvalidOperation, ValueError):
            raise self.problem(f"{what} {text[:30]!r} is not a number") from None
        if not amount.is_finite() or amount.copy_abs() >= MAX_AMOUNT:  # abs() would overflow on 1e999999999
            raise self.problem(f"{what} {text[:30]!r} is not a plausible amount")
        return amount

    def quantity(self, value: Any, what: str) -> int:
        if value is None or isinstance(value, bool):
            raise self.problem(f"{what} is missing")
        amount = self.amount(value, what)
        if amount != amount.to_integral_value() or not 0 < amount <= MAX_QUANTITY:
            raise self.problem(f"{what} {printable(value)[:30]!r} is not a whole number between 1 and {MAX_QUANTITY}")
        return int(amount)
