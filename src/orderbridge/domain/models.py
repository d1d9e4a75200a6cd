"""Canonical model: what every connector's mapping produces and consumes.

Field names follow CartRover's order format where one exists (``cust_po_no``, ``cust_ref``,
``ship_*``), so API clients of the systems we replace find familiar names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class OrderStatus(StrEnum):
    """Order statuses, as CartRover's API names them."""

    NEW = "new"
    AT_WMS = "at_wms"
    PARTIAL = "partial"
    SHIPPED = "shipped"
    CONFIRMED = "confirmed"
    ERROR = "error"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELED})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


class Address(_Model):
    name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = Field(default="", description="ISO 3166-1 alpha-2 where known")
    phone: str = ""
    email: str = ""

    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in type(self).model_fields)


class OrderLine(_Model):
    sku: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Decimal = Field(default=Decimal("0"), ge=0)
    discount: Decimal = Field(default=Decimal("0"), ge=0, description="total discount on the line")
    tax: Decimal = Field(default=Decimal("0"), ge=0, description="total tax on the line")
    description: str = ""
    external_line_id: str = ""

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount + self.tax


class Totals(_Model):
    subtotal: Decimal = Decimal("0")
    shipping: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")
    total: Decimal = Decimal("0")
    currency: str = ""


class Order(_Model):
    """An order as the hub understands it, independent of any source or backend."""

    external_id: str = Field(min_length=1, max_length=200, description="the source's order id")
    cust_po_no: str = Field(min_length=1, max_length=200, description="full order number at the source")
    order_date: datetime
    source_status: str = ""
    ship_to: Address
    bill_to: Address = Field(default_factory=Address)
    lines: list[OrderLine] = Field(min_length=1, max_length=10_000)
    shipping_method: str = ""
    totals: Totals = Field(default_factory=Totals)
    notes: str = ""
    customer_id: str = ""
    tax_id: str = ""
    paid: bool = True
    extra: dict[str, Any] = Field(default_factory=dict, description="connector-specific facts")

    @field_validator("order_date")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        # Time zones are explicit everywhere: naive datetimes are refused by the mappings,
        # so here we only normalise to UTC.
        if v.tzinfo is None:
            raise ValueError("order_date must carry a time zone")
        return v.astimezone(UTC)

    @model_validator(mode="after")
    def _ship_to_present(self) -> Order:
        if not self.ship_to.address1 and not self.ship_to.city:
            raise ValueError("ship_to has neither a street address nor a city")
        return self

    def quantities(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.sku] = out.get(line.sku, 0) + line.quantity
        return out


class PackageLine(_Model):
    sku: str
    quantity: int = Field(gt=0)


class Package(_Model):
    tracking_number: str = ""
    carrier: str = ""
    service: str = ""
    lines: list[PackageLine] = Field(default_factory=list)


class Shipment(_Model):
    """A shipment reported by a backend; several per order are normal."""

    external_id: str = Field(min_length=1, description="the backend's shipment id")
    order_ref: str = Field(description="our reference for the order (cust_ref) or the backend order id")
    backend_order_id: str = ""
    carrier: str = ""
    service: str = ""
    tracking_numbers: list[str] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    lines: list[PackageLine] = Field(default_factory=list)
    shipped_at: datetime | None = None

    def quantities(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines or [pl for p in self.packages for pl in p.lines]:
            out[line.sku] = out.get(line.sku, 0) + line.quantity
        return out

    def all_tracking(self) -> list[str]:
        seen: list[str] = []
        for t in [*self.tracking_numbers, *(p.tracking_number for p in self.packages)]:
            if t and t not in seen:
                seen.append(t)
        return seen


class StockLevel(_Model):
    sku: str
    warehouse: str = ""
    on_hand: int = 0
    committed: int = 0
    available: int = 0


class Cancellation(_Model):
    external_id: str
    reason: str = ""
    canceled_at: datetime | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)
