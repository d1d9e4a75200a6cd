"""In-memory state of the TradeGecko sandbox: indexed tables, collection queries, accounts, tokens.

Everything a request touches is found through a dict or an index, so the emulator keeps a steady
pace with tens of thousands of orders. The order and stock rules live in ``sandbox_rules``.
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# ------------------------------------------------------------------------------------ errors


class ApiError(Exception):
    """An answer other than success; the route layer turns it into a JSON response."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


REASONS = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 414: "Request-URI Too Long", 429: "Too Many Requests"}


def api_error(status: int, message: str) -> ApiError:
    """The (inferred) shape of every error other than 422."""
    return ApiError(status, {"type": REASONS.get(status, "Error"), "message": message})


def invalid(errors: dict[str, list[str]]) -> ApiError:
    """A documented 422: ``{"errors": {"field": ["message", ...]}}``."""
    return ApiError(422, {"errors": errors})


def not_found(resource: str, rid: Any) -> ApiError:
    return api_error(404, f"Couldn't find {resource} with 'id'={rid}")


# ------------------------------------------------------------------------------- value helpers


def stamp(t: float) -> str:
    """ISO-8601 UTC with milliseconds, as the API writes timestamps; sorts as text."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_instant(value: Any) -> str | None:
    """An ISO timestamp or bare date (taken as UTC) in ``stamp`` form; None when unreadable."""
    text = str(value).strip()
    if not text:
        return None
    try:
        if len(text) == 10 and text[4] == "-":
            dt = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except ValueError:
        return None
    return stamp(dt.timestamp())


def parse_date(value: Any) -> str | None:
    """Date-only fields accept ISO timestamps, YYYY-MM-DD and DD-MM-YYYY; stored as YYYY-MM-DD."""
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).strftime("%Y-%m-%d")
        except ValueError:
            pass
    full = parse_instant(text)
    return full[:10] if full else None


def dec(value: Any) -> Decimal | None:
    """A decimal from a string or number; None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def fmt(d: Decimal | int | None) -> str | None:
    """Money and quantities go out as strings such as ``"189.0"`` and ``"166.75"``."""
    if d is None:
        return None
    d = Decimal(d)
    if d == d.to_integral_value():
        return f"{int(d)}.0"
    return format(d.normalize(), "f")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The wire view of a stored row: keys starting with an underscore are internal."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def index_values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


# -------------------------------------------------------------------------------------- tables


class Table:
    """Rows by id, secondary indexes, and the rows in order of last update (for updated_at_min)."""

    def __init__(self, resource: str, indexed: Iterable[str] = (), hidden: Iterable[str] = ("archived",)) -> None:
        self.resource = resource
        self.rows: dict[int, dict[str, Any]] = {}
        self.fields = tuple(indexed)
        self.index: dict[str, dict[str, set[int]]] = {f: {} for f in self.fields}
        self.hidden = frozenset(hidden)
        self.hidden_count = 0
        self.by_update: dict[int, None] = {}
        self._keys: dict[int, tuple[tuple[str, ...], ...]] = {}
        self._status: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, rid: Any) -> dict[str, Any] | None:
        try:
            return self.rows.get(int(rid))
        except (TypeError, ValueError):
            return None

    def require(self, rid: Any) -> dict[str, Any]:
        row = self.get(rid)
        if row is None:
            raise not_found(self.resource, rid)
        return row

    def save(self, row: dict[str, Any], now: str, *, touch: bool = True) -> dict[str, Any]:
        """Insert or re-index a row after it changed; ``touch`` bumps updated_at."""
        rid = int(row["id"])
        if touch:
            row["updated_at"] = now
            row.setdefault("created_at", now)
            self.by_update.pop(rid, None)
            self.by_update[rid] = None
        keys = tuple(tuple(index_values(row.get(f))) for f in self.fields)
        old = self._keys.get(rid)
        if old != keys:
            for f, values in zip(self.fields, old or ((),) * len(self.fields), strict=True):
                for v in values:
                    bucket = self.index[f].get(v)
                    if bucket is not None:
                        bucket.discard(rid)
                        if not bucket:
                            del self.index[f][v]
            for f, values in zip(self.fields, keys, strict=True):
                for v in values:
                    self.index[f].setdefault(v, set()).add(rid)
            self._keys[rid] = keys
        status = row.get("status")
        was = self._status.get(rid)
        if rid not in self._status or was != status:
            self.hidden_count += (status in self.hidden) - (rid in self._status and was in self.hidden)
            self._status[rid] = status
        self.rows[rid] = row
        return row

    def where(self, f: str, value: Any) -> list[dict[str, Any]]:
        """Rows whose indexed field ``f`` equals ``value``, oldest first."""
        return [self.rows[i] for i in sorted(self.index[f].get(str(value), ()))]


# ------------------------------------------------------------------------------------- queries

# Filters that take comma lists as well as ``field[]`` arrays (ids and enumerations; free text never).
ENUM_FILTERS = frozenset({
    "status", "payment_status", "invoice_status", "packed_status", "fulfillment_status", "return_status",
    "returning_status", "shippability_status", "backordering_status", "company_type",
})
TIME_FILTERS = ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max")
MAX_LIMIT = 250
DEFAULT_LIMIT = 50


@dataclass
class Query:
    filters: dict[str, set[str]] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)
    order: tuple[str, bool] = ("id", True)
    limit: int = DEFAULT_LIMIT
    page: int = 1
    include: list[str] = field(default_factory=list)


def parse_query(items: Iterable[tuple[str, str]], allowed: frozenset[str]) -> Query:
    """Read index parameters; blank values and unknown filters are ignored, as the API does."""
    q = Query()
    for raw_key, raw_value in items:
        key = raw_key[:-2] if raw_key.endswith("[]") else raw_key
        value = raw_value.strip()
        if not value:
            continue
        if key == "limit":
            q.limit = _int_param("limit", value)
            if q.limit > MAX_LIMIT:
                raise api_error(400, f"limit must be {MAX_LIMIT} or less")
        elif key == "page":
            q.page = max(1, _int_param("page", value))
        elif key == "order":
            parts = value.split()
            q.order = (parts[0], len(parts) > 1 and parts[1].lower() == "desc")
        elif key == "include":
            q.include += [p.strip() for p in value.split(",") if p.strip()]
        elif key in TIME_FILTERS:
            instant = parse_instant(value)
            if instant is None:
                raise api_error(400, f"{key} must be an ISO-8601 time, got {value!r}")
            q.times[key] = instant
        elif key == "ids" or key in allowed:
            split = key == "ids" or key.endswith("_id") or key in ENUM_FILTERS
            values = [v.strip() for v in value.split(",")] if split else [value]
            q.filters.setdefault(key, set()).update(v for v in values if v)
    return q


def _int_param(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise api_error(400, f"{name} must be a whole number, got {value!r}") from None
    if n < 0:
        raise api_error(400, f"{name} must not be negative")
    return n


def _matches(row: dict[str, Any], q: Query, hidden: frozenset[str]) -> bool:
    if "status" not in q.filters and row.get("status") in hidden:
        return False
    for f, accepted in q.filters.items():
        name = "id" if f == "ids" else f
        if not any(v in accepted for v in index_values(row.get(name))):
            return False
    for key, bound in q.times.items():
        value = row.get("created_at" if key.startswith("created") else "updated_at") or ""
        if (key.endswith("_min") and value < bound) or (key.endswith("_max") and value > bound):
            return False
    return True


def _candidates(table: Table, q: Query) -> Iterable[int] | None:
    """The smallest id set an index gives for this query; None means every row."""
    best: set[int] | None = None
    for f, accepted in q.filters.items():
        if f == "ids":
            found = {int(v) for v in accepted if v.isdigit() and int(v) in table.rows}
        elif f in table.index:
            found = set().union(*(table.index[f].get(v, set()) for v in accepted))
        else:
            continue
        if best is None or len(found) < len(best):
            best = found
    if "updated_at_min" in q.times:
        # The rows updated since the bound, newest first, when they are fewer than what an index
        # gave (a poll for recent changes of a common status: "fulfilled" is nearly every row).
        bound = q.times["updated_at_min"]
        recent: list[int] = []
        for rid in reversed(table.by_update):
            if table.rows[rid]["updated_at"] < bound:
                return recent
            if best is not None and len(recent) >= len(best):
                return best
            recent.append(rid)
        return recent if best is None or len(recent) < len(best) else best
    return best


def _sort_key(name: str) -> Any:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        v = row.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            v = "" if v is None else str(v)
            return (1, v, row["id"])
        return (0, v, row["id"])

    return key


def run_query(table: Table, q: Query) -> tuple[list[dict[str, Any]], int]:
    """Filter, sort (default: newest id first), then page. Returns (page rows, total matching)."""
    offset = (q.page - 1) * q.limit
    plain = not q.filters and not q.times and q.order == ("id", True)
    if plain and table.hidden_count == 0:
        total = len(table.rows)
        return list(itertools.islice(reversed(table.rows.values()), offset, offset + q.limit)), total
    ids = _candidates(table, q)
    pool: Iterator[dict[str, Any]] = (
        iter(table.rows.values()) if ids is None else (table.rows[i] for i in ids)
    )
    matched = [r for r in pool if _matches(r, q, table.hidden)]
    field_name, desc = q.order
    matched.sort(key=_sort_key(field_name), reverse=desc)
    return matched[offset : offset + q.limit], len(matched)


def pagination(total: int, q: Query) -> dict[str, Any]:
    pages = math.ceil(total / q.limit) if q.limit else 0
    return {
        "total_records": total,
        "total_pages": pages,
        "first_page": q.page == 1,
        "last_page": q.page >= pages,
        "out_of_bounds": q.page > max(pages, 1),
        "offset": (q.page - 1) * q.limit,
    }


# ------------------------------------------------------------------------------------ accounts

ACCOUNT_DEFAULTS: dict[str, Any] = {
    "deduct_stock_at": "packed",  # or "fulfilled": when a fulfillment takes stock off the shelf
    "require_finalized": True,  # invoice / pack / fulfil only finalized orders (422 otherwise)
    "default_order_status": "draft",  # when a create omits status
    "reject_duplicate_order_numbers": False,
    "default_tax_treatment": "exclusive",
    "default_currency": "USD",
}
CURRENCIES = {"USD": 1, "EUR": 2, "GBP": 3, "AUD": 4, "CAD": 5, "NZD": 6, "SGD": 7}


@dataclass
class Account:
    id: int
    name: str
    settings: dict[str, Any]
    primary_location_id: int = 0
    created_at: str = ""
    order_seq: int = 0
    idempotency: dict[tuple[str, str, str], tuple[float, int, bytes]] = field(default_factory=dict)
    locations: Table = field(default_factory=lambda: Table("Location", ("label",)))
    companies: Table = field(default_factory=lambda: Table("Company", ("email", "company_code")))
    addresses: Table = field(default_factory=lambda: Table("Address", ("company_id",)))
    variants: Table = field(default_factory=lambda: Table("Variant", ("sku", "product_id")))
    orders: Table = field(
        # status: the admin route a warehouse polls for active orders reads those only, not every order
        default_factory=lambda: Table("Order", ("reference_number", "order_number", "company_id", "status"),
                                      ("deleted",))
    )
    line_items: Table = field(default_factory=lambda: Table("OrderLineItem", ("order_id", "variant_id"), ()))
    fulfillments: Table = field(default_factory=lambda: Table("Fulfillment", ("order_id",), ("deleted",)))
    fulfillment_lines: Table = field(
        default_factory=lambda: Table("FulfillmentLineItem", ("fulfillment_id", "order_line_item_id"), ())
    )
    invoices: Table = field(default_factory=lambda: Table("Invoice", ("order_id",), ("deleted",)))
    payments: Table = field(default_factory=lambda: Table("Payment", (), ("deleted",)))

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "country": "US",
            "created_at": self.created_at,
            "default_tax_treatment": self.settings["default_tax_treatment"],
            "default_order_price_list_id": "retail",
            "default_currency_id": CURRENCIES.get(self.settings["default_currency"], 1),
            "primary_location_id": self.primary_location_id,
            "primary_billing_location_id": self.primary_location_id,
            "default_sales_order_tax_type_id": None,
            "stock_level_warn": False,
            "tax_label": "Tax",
            "time_zone": "UTC",
            "location_ids": sorted(self.locations.rows),
            "user_ids": [self.id],
        }


# ---------------------------------------------------------------------------------- auth state


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass
class AccessToken:
    account_id: int
    app: str  # the OAuth application's client_id, or "" for a privileged token made in the UI
    expires_at: float | None  # None: never (privileged tokens)
    revoked: bool = False


@dataclass
class RefreshToken:
    account_id: int
    app: str
    access: str = ""  # the access token issued with it
    used: bool = False


class Clock:
    """Wall-clock time plus an offset the admin surface can advance (token expiry, cursors)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


class Store:
    """Every account of one sandbox process, their tokens, and the global id sequences."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.clock = Clock()
        self.accounts: dict[int, Account] = {}
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, tuple[int, str, str, float]] = {}
        self._ids: dict[str, itertools.count[int]] = {}

    def next_id(self, resource: str) -> int:
        counter = self._ids.setdefault(resource, itertools.count(1))
        return next(counter)

    def now(self) -> str:
        return stamp(self.clock.now())

    def account(self, aid: Any) -> Account:
        try:
            return self.accounts[int(aid)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(404, {"error": f"no sandbox account {aid}"}) from None

    # ---------------------------------------------------------------- tokens
    def token_owner(self, token: str) -> tuple[AccessToken | None, str]:
        """(token, problem): the problem is the 401 message when the token cannot be used."""
        info = self.tokens.get(token)
        if info is None or info.revoked:
            return None, "The access token is invalid"
        if info.expires_at is not None and self.clock.now() >= info.expires_at:
            return None, "The access token expired"
        return info, ""

    def issue_privileged(self, account_id: int, token: str = "", app: str = "") -> str:
        token = token or "tgp_" + secrets.token_hex(16)
        self.tokens[token] = AccessToken(account_id, app, None)
        return token

    def issue_oauth(self, account_id: int, app: str, lifetime: float | None = None) -> dict[str, Any]:
        life = float(self.options["token_lifetime"] if lifetime is None else lifetime)
        access = "tga_" + secrets.token_hex(16)
        refresh = "tgr_" + secrets.token_hex(16)
        self.tokens[access] = AccessToken(account_id, app, self.clock.now() + life)
        self.refresh_tokens[refresh] = RefreshToken(account_id, app, access)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(life),
            "refresh_token": refresh,
            "scope": "public",
            "created_at": int(self.clock.now()),
        }

    def rate_key(self, token: str) -> str:
        """The API counts calls per (application, account)."""
        info = self.tokens.get(token)
        return f"{info.account_id}:{info.app}" if info else "unauthenticated"
