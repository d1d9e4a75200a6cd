"""An emulator of the Houzz Marketplace API (Seller and Vendor programs).

One gateway, ``/api?method=<name>&format=xml|json``: reads are GET with query parameters, writes
are POST with a raw XML body. Three headers authenticate every call. Answers carry the
``Ack``/``Version``/``Timestamp`` envelope; business errors are ``Ack=Error`` with an ``Errors``
list. Several accounts (seller or vendor program, each with its own credentials, scopes, orders
and listings) live in one instance; ``/__sandbox__/`` seeds, drives and inspects them.
Every choice made where Houzz's behaviour is unknown is listed in docs/sandboxes/houzz.md.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree as ET

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.connectors.sandbox_kit import FixedWindowLimiter, RateLimitExceeded, SandboxKit

API_VERSION = "149"
TS = "%Y-%m-%d %H:%M:%S"
HDR_APP, HDR_USER, HDR_TOKEN = "X-HOUZZ-API-APP-NAME", "X-HOUZZ-API-USER-NAME", "X-HOUZZ-API-SSL-TOKEN"

# Internal statuses. Pending / AuthFailed exist only for auto-authorising seller accounts: such
# orders are not released to the seller yet, so the API does not show them.
PENDING, AUTH_FAILED = "Pending", "AuthFailed"
PLACED, IN_PRODUCTION, CHARGED, FAILED, SHIPPED, CANCELED = (
    "Placed", "InProduction", "Charged", "FailedToCharge", "Shipped", "Canceled",
)
VISIBLE = (PLACED, IN_PRODUCTION, CHARGED, FAILED, SHIPPED, CANCELED)
OPEN = (PLACED, IN_PRODUCTION, CHARGED, FAILED)
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "new": (PLACED,), "placed": (PLACED,), "inproduction": (IN_PRODUCTION,), "processing": (IN_PRODUCTION,),
    "charged": (CHARGED,), "failedtocharge": (FAILED,), "shipped": (SHIPPED,), "canceled": (CANCELED,),
    "cancelled": (CANCELED,), "active": OPEN, "all": VISIBLE,
}
ADMIN_STATUSES = {**{k: v[0] for k, v in STATUS_FILTERS.items() if len(v) == 1},
                  "pending": PENDING, "authfailed": AUTH_FAILED}
CANCEL_CODES = {1: "Out of stock / cannot fulfil", 2: "Buyer requested", 3: "Pricing error",
                4: "Cannot ship to address", 5: "Discontinued", 6: "Other"}
METHODS = ("getOrders", "getOrder", "updateOrder", "updateInventory", "getListings", "getListing")
WRITES = {"updateOrder", "updateInventory"}
SCOPE_OF = {"getOrders": "orders", "getOrder": "orders", "updateOrder": "orders",
            "updateInventory": "inventory", "getListings": "inventory", "getListing": "inventory"}
LIST_ITEMS = {"Orders": "Order", "OrderItems": "OrderItem", "Listings": "Listing", "Errors": "Error"}
XML_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")

DEFAULT_OPTIONS: dict[str, Any] = {
    "rate_limit": {"calls": 60, "period": 60},  # per Application ID; False turns it off
    "auth_failure_status": 200,  # or 401: HTTP status of InvalidCredentials answers
    "max_page_size": 1000,
    "default_page_size": 100,
    "new_status_label": "Placed",  # or "New": how a new order's Status reads
    "canceled_spelling": "Canceled",  # or "Cancelled"
    "numbers_as_strings": True,
    "auto_authorize_minutes": 30,
    "auth_expiry_days": 7,  # 0 disables the reversion of unshipped Charged orders
    "buyer_cancel_minutes": 30,
    "strict_tracking": False,  # refuse tracking values holding several numbers
    "tracking_max_length": 0,  # 0: no limit
    "strict_cancel_codes": False,  # refuse CancelCode outside 1..6
    "accept_json_bodies": False,
    "get_order_enabled": True,  # False: getOrder answers UnknownMethod (clients must fall back)
    "canceled_filter": "both",  # which Status filter spellings getOrders accepts: both|Canceled|Cancelled
    "seed": None,  # None: fresh order ids on every start (a restarted sandbox never reuses one)
    "accounts": None,  # None: two demo accounts; a list: exactly these
}

DEMO_ACCOUNTS = [
    {"id": "demo-seller", "app_name": "orderbridge-demo", "user_name": "demo-seller",
     "token": "ZGVtby1zZWxsZXItdG9rZW4tZm9yLXRoZS1ob3V6ei1zYW5kYm94LTAwMDAwMDAwMDA=", "program": "seller"},
    {"id": "demo-vendor", "app_name": "orderbridge-demo", "user_name": "demo-vendor",
     "token": "ZGVtby12ZW5kb3ItdG9rZW4tZm9yLXRoZS1ob3V6ei1zYW5kYm94LTAwMDAwMDAwMDA=", "program": "vendor"},
]


class HouzzFault(Exception):
    """A business error, answered as ``Ack=Error`` (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(self, code: str, message: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class HOrder:
    order_id: str
    data: dict[str, Any]  # the order in Houzz's format, without OrderId and Status
    status: str
    created: str  # UTC, TS format: the index key
    placed_at: datetime
    charged_at: datetime | None = None
    shipment: dict[str, Any] | None = None
    cancel: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    received_at: float = field(default_factory=time.time)  # when the sandbox stored it (for latency figures)


@dataclass
class Account:
    key: str
    app_name: str
    user_name: str
    token: str
    program: str
    mode: str
    scopes: set[str]
    orders: dict[str, HOrder] = field(default_factory=dict)
    by_status: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    listings: dict[str, dict[str, Any]] = field(default_factory=dict)
    listing_index: dict[str, list[str]] = field(default_factory=dict)  # status (lower case) or "all" -> SKUs
    by_product: dict[str, str] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    inventory_log: list[dict[str, Any]] = field(default_factory=list)
    charge_failures: dict[str, list[str]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        counts = {s: len(v) for s, v in self.by_status.items() if v}
        return {"id": self.key, "app_name": self.app_name, "user_name": self.user_name, "token": self.token,
                "program": self.program, "mode": self.mode, "scopes": sorted(self.scopes),
                "orders": len(self.orders), "orders_by_status": counts, "listings": len(self.listings)}


# ------------------------------------------------------------------------------ helpers


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _num(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value).strip() or "0")
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def parse_when(value: str, *, end_of_day: bool = False) -> str:
    """A From/To value (a date, or a date-time with optional offset) as a UTC TS key."""
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text} {'23:59:59' if end_of_day else '00:00:00'}"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.strftime(TS)


def _to_element(tag: str, value: Any) -> ET.Element:
    el = ET.Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            if XML_NAME.match(str(k)):
                el.append(_to_element(str(k), v))
    elif isinstance(value, list):
        item_tag = LIST_ITEMS.get(tag, tag[:-1] if tag.endswith("s") and len(tag) > 1 else "Item")
        for v in value:
            el.append(_to_element(item_tag, v))
    elif value is not None:
        el.text = str(value)
    return el


def _root_name(method: str) -> str:
    name = re.sub(r"[^\w]", "", method) or "Api"
    name = name if XML_NAME.match(name) else "Api"
    return name[0].upper() + name[1:] + "Response"


def _parse_xml(body: bytes) -> tuple[str, dict[str, str]]:
    if not body.strip():
        raise HouzzFault("MissingParameter", "The request body is empty; send the XML request document.")
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", body, re.IGNORECASE):
        raise HouzzFault("InvalidParameter", "Document type declarations are not accepted.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise HouzzFault("InvalidParameter", f"The request body is not well-formed XML: {exc}") from None
    return root.tag, {child.tag.lower(): (child.text or "").strip() for child in root}


def _int_param(q: dict[str, str], name: str, default: int) -> int:
    raw = q.get(name.lower(), "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HouzzFault("InvalidParameter", f"{name} must be an integer, got {raw!r}.") from None
    if value < 0:
        raise HouzzFault("InvalidParameter", f"{name} must not be negative.")
    return value


# --------------------------------------------------------------------------------- state


class HouzzSandbox:
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        opts = dict(options or {})
        unknown = sorted(set(opts) - set(DEFAULT_OPTIONS))
        if unknown:
            raise ValueError(f"unknown houzz sandbox options {unknown}; known: {sorted(DEFAULT_OPTIONS)}")
        self.opt: dict[str, Any] = {**DEFAULT_OPTIONS, **opts}
        rl = self.opt["rate_limit"]
        limiter = FixedWindowLimiter(calls=60, period=60.0, enabled=bool(rl))
        if isinstance(rl, dict):
            limiter.configure({"enabled": rl.get("enabled", True), "calls": rl.get("calls", 60),
                               "period": rl.get("period", 60)})
        seed = self.opt["seed"]
        self.kit = SandboxKit("houzz", rate_limit=limiter, seed=int(seed or 0))
        self.rng = random.Random(seed)
        self.accounts: dict[str, Account] = {}
        self.by_app: dict[str, dict[str, Account]] = {}
        self.offset = 0.0  # emulator clock = wall clock + offset
        self.timers: list[tuple[float, int, str, str, str, str]] = []
        self.seq = itertools.count(1)
        self.used_ids: set[str] = set()
        self.product_ids = itertools.count(500001)
        for spec in DEMO_ACCOUNTS if self.opt["accounts"] is None else self.opt["accounts"]:
            self.create_account(dict(spec))

    # -------------------------------------------------------------------------- clock
    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def stamp(self) -> str:
        now = self.now()
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 10000:02d}Z"

    def schedule(self, when: datetime, acct: Account, order: HOrder, kind: str, token: str = "") -> None:
        heapq.heappush(self.timers, (when.timestamp(), next(self.seq), acct.key, order.order_id, kind, token))

    def tick(self) -> None:
        """Apply what the clock has made due: auto-authorisations and authorisation expiries."""
        now_ts = self.now().timestamp()
        while self.timers and self.timers[0][0] <= now_ts:
            due, _, key, oid, kind, token = heapq.heappop(self.timers)
            acct = self.accounts.get(key)
            order = acct.orders.get(oid) if acct else None
            if acct is None or order is None:
                continue
            at = datetime.fromtimestamp(due, UTC)
            if kind == "authorize" and order.status == PENDING:
                failures = acct.charge_failures.get(oid)
                if failures:
                    reason = failures.pop(0)
                    self.set_status(acct, order, AUTH_FAILED)
                    self.log(acct, order, "AutoAuthorize", "error", by="houzz", to=AUTH_FAILED, message=reason)
                else:
                    self.charge_ok(acct, order, at)
                    self.log(acct, order, "AutoAuthorize", "ok", by="houzz", to=CHARGED)
            elif kind == "expire" and order.status == CHARGED and order.charged_at and \
                    order.charged_at.isoformat() == token:
                self.set_status(acct, order, IN_PRODUCTION)
                self.log(acct, order, "AuthorizationExpired", "ok", by="houzz", to=IN_PRODUCTION)

    def charge_ok(self, acct: Account, order: HOrder, at: datetime) -> None:
        self.set_status(acct, order, CHARGED)
        self.arm_expiry(acct, order, at)

    def arm_expiry(self, acct: Account, order: HOrder, at: datetime) -> None:
        """A card authorisation lasts N days; unshipped, the order then reverts to InProduction."""
        order.charged_at = at
        days = float(self.opt["auth_expiry_days"] or 0)
        if days > 0:
            self.schedule(at + timedelta(days=days), acct, order, "expire", at.isoformat())

    # ------------------------------------------------------------------------ accounts
    def create_account(self, spec: dict[str, Any]) -> Account:
        try:
            app, user, token = (str(spec[k]).strip() for k in ("app_name", "user_name", "token"))
        except KeyError as exc:
            raise AdminError(f"an account needs {exc.args[0]}") from None
        if not (app and user and token):
            raise AdminError("app_name, user_name and token must not be empty")
        program = str(spec.get("program", "seller")).lower()
        mode = str(spec.get("mode", "legacy")).lower()
        scopes = {str(s).lower() for s in spec.get("scopes", ["orders", "inventory"])}
        key = str(spec.get("id") or user)
        if program not in ("seller", "vendor") or mode not in ("legacy", "auto_accept"):
            raise AdminError("program is seller|vendor and mode is legacy|auto_accept")
        if scopes - {"orders", "inventory"}:
            raise AdminError("scopes are 'orders' and 'inventory'")
        if key in self.accounts or user in self.by_app.get(app, {}):
            raise AdminError(f"account {key!r} (or user {user!r} of app {app!r}) exists", 409)
        acct = Account(key, app, user, token, program, mode if program == "seller" else "legacy", scopes)
        self.accounts[key] = acct
        self.by_app.setdefault(app, {})[user] = acct
        return acct

    def account(self, key: str) -> Account:
        acct = self.accounts.get(key)
        if acct is None:
            raise AdminError(f"no account {key!r}", 404)
        return acct

    def authenticate(self, request: Request) -> Account:
        status = int(self.opt["auth_failure_status"])
        app, user, token = (request.headers.get(h, "").strip() for h in (HDR_APP, HDR_USER, HDR_TOKEN))
        missing = [h for h, v in ((HDR_APP, app), (HDR_USER, user), (HDR_TOKEN, token)) if not v]
        if missing:
            raise HouzzFault("InvalidCredentials", f"Missing header {', '.join(missing)}.", status=status)
        users = self.by_app.get(app)
        if users is None:
            raise HouzzFault("InvalidCredentials", "Application ID (app name) not recognised.", status=status)
        acct = users.get(user)
        if acct is None:
            raise HouzzFault("InvalidCredentials", "User name not recognised for this Application ID.",
                             status=status)
        if acct.token != token:
            raise HouzzFault("InvalidCredentials", "The token does not match this user name.", status=status)
        return acct

    # -------------------------------------------------------------------------- orders
    def set_status(self, acct: Account, order: HOrder, status: str) -> None:
        entry = (order.created, order.order_id)
        old = acct.by_status.get(order.status, [])
        i = bisect.bisect_left(old, entry)
        if i < len(old) and old[i] == entry:
            del old[i]
        bisect.insort(acct.by_status.setdefault(status, []), entry)
        order.status = status

    def new_order_id(self) -> str:
        while True:
            digits = f"{self.rng.randrange(10**15, 10**16)}"
            oid = "-".join(digits[i:i + 4] for i in range(0, 16, 4))
            if oid not in self.used_ids:
                return oid

    def add_order(self, acct: Account, body: dict[str, Any]) -> HOrder:
        data = dict(body)
        oid = str(data.pop("OrderId", "") or "").strip() or self.new_order_id()
        if oid in acct.orders:
            raise AdminError(f"order {oid} exists in account {acct.key}", 409)
        wanted = str(data.pop("Status", "") or "")
        if wanted:
            status = ADMIN_STATUSES.get(re.sub(r"[\s_\-]", "", wanted).lower())
            if status is None:
                raise AdminError(f"unknown Status {wanted!r}")
        elif acct.program == "vendor":
            status = CHARGED
        else:
            status = PENDING if acct.mode == "auto_accept" else PLACED
        try:
            created = parse_when(str(data["Created"])) if data.get("Created") else self.now().strftime(TS)
        except ValueError:
            raise AdminError(f"Created {data.get('Created')!r} is not a date-time") from None
        data = {"Created": created, **{k: v for k, v in data.items() if k != "Created"}}
        self._fill_defaults(acct, data)
        placed = datetime.strptime(created, TS).replace(tzinfo=UTC)
        order = HOrder(oid, data, status, created, placed)
        acct.orders[oid] = order
        self.used_ids.add(oid)
        bisect.insort(acct.by_status.setdefault(status, []), (created, oid))
        if status == CHARGED:
            self.arm_expiry(acct, order, self.now())
        elif status == PENDING:
            self.schedule(placed + timedelta(minutes=float(self.opt["auto_authorize_minutes"])),
                          acct, order, "authorize")
        return order

    def _fill_defaults(self, acct: Account, data: dict[str, Any]) -> None:
        """Program-specific prices and the OrderTotal identity, for fields the seed left out."""
        items = data.get("OrderItems")
        if not isinstance(items, list):
            return
        total, subtotal, ok = Decimal("0"), Decimal("0"), True
        for item in items:
            if not isinstance(item, dict):
                ok = False
                continue
            item.setdefault("Type", "Product")
            item.setdefault("Quantity", "1")
            price = _num(item.get("Price"))
            if acct.program == "seller" and "Cost" not in item and price is not None:
                item["Cost"] = _money(price * Decimal("0.85"))  # the seller's net of Houzz's commission
            if acct.program == "vendor" and "Cost" not in item and price is not None:
                item["Cost"] = _money(price * Decimal("0.6"))
            qty = _num(item.get("Quantity"))
            unit = _num(item.get("Price" if "Price" in item else "Cost"))
            ship, tax = _num(item.get("Shipping", "0")), _num(item.get("Tax", "0"))
            if qty is None or unit is None or ship is None or tax is None:
                ok = False
                continue
            if str(item.get("Type")).lower() == "product":
                subtotal += unit * qty
                total += unit * qty + (ship + tax) * qty
            else:
                total += unit
        flat = _num(data.setdefault("FlatShipping", "0.00"))
        if ok and flat is not None and "OrderTotal" not in data:
            data["OrderTotal"] = _money(total + flat)
        if acct.program == "seller":
            data.setdefault("Commission", _money(subtotal * Decimal("0.15")))
        else:
            data.setdefault("Allowance", _money(subtotal * Decimal("0.03")))

    def visible(self, order: HOrder) -> bool:
        return order.status in VISIBLE

    def label(self, status: str) -> str:
        if status == PLACED:
            return str(self.opt["new_status_label"])
        if status == CANCELED:
            return str(self.opt["canceled_spelling"])
        return status

    def render_order(self, order: HOrder) -> dict[str, Any]:
        out: dict[str, Any] = {"OrderId": order.order_id, "Status": self.label(order.status)}
        out.update(order.data)
        if order.shipment:
            out.update({k: order.shipment[k] for k in ("TrackingNumber", "ShippedVia", "ShipDate")})
        if order.cancel:
            out.update({k: order.cancel[k] for k in ("CancelCode", "CancelComments", "CancelDate")})
        return out

    def query(self, acct: Account, statuses: tuple[str, ...], lo: str, hi: str,
              start: int, count: int) -> tuple[int, list[HOrder]]:
        """Orders with these statuses created in [lo, hi], by (Created, OrderId): total and one page."""
        bounds = []
        for s in statuses:
            keys = acct.by_status.get(s, [])
            i, j = bisect.bisect_left(keys, (lo, "")), bisect.bisect_right(keys, (hi, "\U0010ffff"))
            if i < j:
                bounds.append((keys, i, j))
        total = sum(j - i for _, i, j in bounds)
        if len(bounds) == 1:
            keys, i, j = bounds[0]
            page = keys[i + start:min(j, i + start + count)]
        else:
            merged = heapq.merge(*(keys[i:j] for keys, i, j in bounds))
            page = list(itertools.islice(merged, start, start + count))
        return total, [acct.orders[oid] for _, oid in page]

    def log(self, acct: Account, order: HOrder, action: str, result: str, **info: Any) -> dict[str, Any]:
        entry = {"seq": next(self.seq), "at": self.now().isoformat(), "OrderId": order.order_id,
                 "action": action, "result": result, **info}
        order.history.append(entry)
        acct.actions.append(entry)
        return entry

    # ----------------------------------------------------------------------- updateOrder
    def update_order(self, acct: Account, fields: dict[str, str]) -> dict[str, Any]:
        oid = fields.get("orderid", "").strip()
        action_raw = fields.get("action", "").strip()
        if not oid:
            raise HouzzFault("MissingParameter", "OrderId is required.")
        order = acct.orders.get(oid)
        if order is None or not self.visible(order):
            raise HouzzFault("OrderNotFound", f"Order {oid} was not found.", OrderId=oid)
        if not action_raw:
            raise HouzzFault("MissingParameter", "Action is required (Process, Charge, Ship or Cancel).")
        action = {"process": "Process", "charge": "Charge", "ship": "Ship", "cancel": "Cancel"}.get(
            action_raw.lower())
        if action is None:
            raise HouzzFault("InvalidAction", f"Unknown Action {action_raw!r}: use Process, Charge, Ship or Cancel.")
        before = order.status
        info: dict[str, Any] = {"by": "api", "from": before}
        try:
            result = self._transition(acct, order, action, fields, info)
        except HouzzFault as fault:
            self.log(acct, order, action, "error", error=fault.code, message=fault.message, to=order.status, **info)
            fault.extra.update(OrderId=oid, Status=self.label(order.status))
            raise
        self.log(acct, order, action, result, to=order.status, **info)
        return {"OrderId": oid, "Status": self.label(order.status)}

    def _transition(self, acct: Account, order: HOrder, action: str, f: dict[str, str],
                    info: dict[str, Any]) -> str:
        s = order.status
        refuse = f"{action} is not allowed on an order in status {self.label(s)}."
        if acct.program == "vendor" and action in ("Process", "Charge"):
            raise HouzzFault("InvalidAction", f"Vendor orders are charged by Houzz: {action} is not available "
                             "in the Vendor program.")
        if action == "Process":
            if s == PLACED:
                self.set_status(acct, order, IN_PRODUCTION)
                return "ok"
            if s in (IN_PRODUCTION, CHARGED):
                return "noop"
            raise HouzzFault("InvalidStateTransition", refuse)
        if action == "Charge":
            if s == CHARGED:
                return "noop"
            if s == PLACED:
                raise HouzzFault("InvalidStateTransition", "Process the order before charging it.")
            if s not in (IN_PRODUCTION, FAILED):
                raise HouzzFault("InvalidStateTransition", refuse)
            failures = acct.charge_failures.get(order.order_id)
            if failures:
                reason = failures.pop(0)
                self.set_status(acct, order, FAILED)
                raise HouzzFault("ChargeFailed", reason)
            self.charge_ok(acct, order, self.now())
            return "ok"
        if action == "Ship":
            return self._ship(acct, order, f, info)
        return self._cancel(acct, order, f, info)

    def _ship(self, acct: Account, order: HOrder, f: dict[str, str], info: dict[str, Any]) -> str:
        method, tracking = f.get("shippingmethod", ""), f.get("trackingnumber", "")
        info.update(ShippingMethod=method, TrackingNumber=tracking,
                    tracking_list=[t for t in re.split(r"[,;\s]+", tracking) if t])
        if not method or not tracking:
            raise HouzzFault("MissingParameter", "Ship needs ShippingMethod and TrackingNumber.")
        limit = int(self.opt["tracking_max_length"] or 0)
        if limit and len(tracking) > limit:
            raise HouzzFault("InvalidParameter", f"TrackingNumber is longer than {limit} characters.")
        if self.opt["strict_tracking"] and re.search(r"[,;\s]", tracking):
            raise HouzzFault("InvalidParameter", "TrackingNumber must hold a single tracking number.")
        if order.status == SHIPPED:
            if order.shipment and order.shipment["TrackingNumber"] == tracking:
                return "noop"
            raise HouzzFault("InvalidStateTransition", "The order is already shipped with another tracking number.")
        if order.status != CHARGED:
            raise HouzzFault("InvalidStateTransition",
                             f"Only Charged orders can be shipped; this order is {self.label(order.status)}.")
        self.set_status(acct, order, SHIPPED)
        order.shipment = {"TrackingNumber": tracking, "ShippedVia": method, "ShipDate": self.now().strftime(TS),
                          "tracking_list": info["tracking_list"]}
        return "ok"

    def _cancel(self, acct: Account, order: HOrder, f: dict[str, str], info: dict[str, Any]) -> str:
        raw_code = f.get("cancelcode", "")
        info.update(CancelCode=raw_code, Comments=f.get("comments", ""))
        try:
            code = int(raw_code)
        except ValueError:
            raise HouzzFault("InvalidParameter", "CancelCode must be an integer.") from None
        if code <= 0 or (self.opt["strict_cancel_codes"] and code not in CANCEL_CODES):
            raise HouzzFault("InvalidParameter", f"CancelCode {code} is not a valid cancel code.")
        if order.status == CANCELED:
            return "noop"
        if order.status == SHIPPED:
            raise HouzzFault("InvalidStateTransition", "A shipped order cannot be cancelled.")
        self.do_cancel(acct, order, code, f.get("comments", ""))
        return "ok"

    def do_cancel(self, acct: Account, order: HOrder, code: int, comments: str) -> None:
        self.set_status(acct, order, CANCELED)
        order.cancel = {"CancelCode": str(code), "CancelComments": comments or CANCEL_CODES.get(code, ""),
                        "CancelDate": self.now().strftime(TS)}

    # ------------------------------------------------------------------------- inventory
    def add_listing(self, acct: Account, body: dict[str, Any]) -> dict[str, Any]:
        sku = str(body.get("SKU", "")).strip()
        if not sku:
            raise AdminError("a listing needs a SKU")
        existing = acct.listings.get(sku)
        before = str(existing.get("Status", "")) if existing else None
        listing = existing or {"SKU": sku, "history": []}
        listing.update({k: v for k, v in body.items() if k != "history"})
        listing["SKU"] = sku
        listing.setdefault("ProductId", str(next(self.product_ids)))
        listing["ProductId"] = str(listing["ProductId"])
        listing.setdefault("Quantity", "0")
        listing.setdefault("Status", "Active")
        listing.setdefault("Title", sku)
        acct.listings[sku] = listing
        acct.by_product[listing["ProductId"]] = sku
        if existing is None:
            acct.listing_index.setdefault("all", []).append(sku)
        self.reindex_listing(acct, sku, before, str(listing["Status"]))
        return listing

    @staticmethod
    def reindex_listing(acct: Account, sku: str, before: str | None, after: str) -> None:
        if before is not None and before.lower() == after.lower():
            return
        if before is not None:
            acct.listing_index[before.lower()].remove(sku)  # status changes are rare
        acct.listing_index.setdefault(after.lower(), []).append(sku)

    def update_inventory(self, acct: Account, f: dict[str, str]) -> dict[str, Any]:
        sku = f.get("sku", "")
        if not sku:
            raise HouzzFault("MissingParameter", "SKU is required.")
        action = f.get("action", "")
        if not action:
            raise HouzzFault("MissingParameter", "Action is required (update).")
        if action.lower() != "update":
            raise HouzzFault("InvalidAction", f"Unknown Action {action!r}: use update.")
        changes: dict[str, Any] = {}
        if "quantity" in f:
            try:
                qty = int(f["quantity"])
            except ValueError:
                raise HouzzFault("InvalidParameter", "Quantity must be an integer.") from None
            if qty < 0:
                raise HouzzFault("InvalidParameter", "Quantity must not be negative.")
            changes["Quantity"] = str(qty)
        for name in ("Price", "MSRP", "Status", "ShippingLeadTimeMin", "ShippingLeadTimeMax"):
            if name.lower() in f:
                changes[name] = f[name.lower()]
        if not changes:
            raise HouzzFault("MissingParameter", "Nothing to update: send Quantity, Price or Status.")
        listing = acct.listings.get(sku)
        if listing is None:
            raise HouzzFault("SkuNotFound", f"No listing with SKU {sku}.", SKU=sku)
        entry = {"seq": next(self.seq), "at": self.now().isoformat(), "SKU": sku,
                 "previous": listing.get("Quantity"), **changes}
        if "Status" in changes:
            self.reindex_listing(acct, sku, str(listing.get("Status", "")), str(changes["Status"]))
        listing.update(changes)
        listing["history"].append(entry)
        acct.inventory_log.append(entry)
        return {"ProductId": listing["ProductId"], "SKU": sku}

    @staticmethod
    def listing_view(listing: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in listing.items() if k != "history"}

    # ---------------------------------------------------------------------- generation
    def generate(self, acct: Account, spec: dict[str, Any]) -> list[str]:
        count = int(spec.get("count", 1))
        if not 0 < count <= 200_000:
            raise AdminError("count must be between 1 and 200000")
        rng = random.Random(spec.get("seed", self.rng.random()))
        skus = list(spec.get("skus") or acct.listings) or [f"HZ-{i:04d}" for i in range(1, 51)]
        now = self.now()
        lo = _admin_time(spec.get("created_from"), now - timedelta(hours=1))
        hi = _admin_time(spec.get("created_to"), now)
        span = max((hi - lo).total_seconds(), 0.0)
        max_lines = max(1, int(spec.get("max_lines", 3)))
        ids = []
        for _ in range(count):
            created = lo + timedelta(seconds=rng.random() * span)
            body: dict[str, Any] = {
                "Created": created.strftime(TS), "CustomerName": rng.choice(NAMES),
                "Address": _address(rng), "FlatShipping": rng.choice(("0.00", "0.00", "49.00")),
                "ShippingMethod": rng.choice(("Standard", "Standard", "Expedited", "Freight")),
                "OrderItems": [_item(rng, sku, acct.listings.get(sku), acct.program)
                               for sku in rng.sample(skus, min(len(skus), rng.randint(1, max_lines)))],
            }
            if spec.get("status"):
                body["Status"] = spec["status"]
            ids.append(self.add_order(acct, body).order_id)
        return ids


NAMES = ("Jane Q Doe", "John Smith", "María José García", "Zoë Müller", "Søren Ødegård", "Chloé Lefèvre",
         "Nguyễn Văn An", "O'Brien Connor", "Ana-Lucía de la Cruz", "Björk Guðmundsdóttir")
PLACES = (("Springfield", "IL", "62701"), ("Austin", "TX", "73301"), ("Portland", "OR", "97201"),
          ("Brooklyn", "NY", "11201"), ("San José", "CA", "95112"), ("Toronto", "ON", "M5V 2T6"))


def _address(rng: random.Random) -> dict[str, str]:
    city, state, zip_code = rng.choice(PLACES)
    return {"Address": f"{rng.randint(1, 9999)} {rng.choice(('Main St', 'Oak Ave', 'Elm Rd', 'Rue Ste-Anne'))}",
            "Address1": rng.choice(("", "", "Apt 4B", "Suite 200")), "City": city, "State": state, "Zip": zip_code,
            "Country": "CA" if state == "ON" else "US", "Phone": f"555-{rng.randint(1000, 9999)}"}


def _item(rng: random.Random, sku: str, listing: dict[str, Any] | None, program: str) -> dict[str, Any]:
    price = _num((listing or {}).get("Price")) or Decimal(rng.randint(20, 2000))
    item = {"Type": "Product", "SKU": sku, "ProductId": (listing or {}).get("ProductId", ""),
            "Title": (listing or {}).get("Title", f"Product {sku}"), "Quantity": str(rng.randint(1, 3)),
            "Price": _money(price), "Shipping": "0.00", "Tax": _money(price * Decimal("0.08"))}
    if program == "vendor":  # vendors see the wholesale cost Houzz pays, not the retail price
        item["Cost"] = _money(price * Decimal("0.6"))
        del item["Price"]
    return item


def _admin_time(value: Any, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return datetime.strptime(parse_when(str(value)), TS).replace(tzinfo=UTC)
    except ValueError:
        raise AdminError(f"{value!r} is not a date-time") from None


# ------------------------------------------------------------------------------ the app


def create_app(options: dict[str, Any] | None = None) -> Starlette:
    return _App(HouzzSandbox(options)).build()


class _App:
    def __init__(self, sb: HouzzSandbox) -> None:
        self.sb = sb

    # ------------------------------------------------------------------------ rendering
    def _plain(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._plain(v) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float | Decimal):
            return str(value) if self.sb.opt["numbers_as_strings"] else (
                float(value) if isinstance(value, Decimal) else value)
        return value

    def envelope(self, method: str, fmt: str, payload: dict[str, Any], *, error: HouzzFault | None = None,
                 headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"Ack": "Error" if error else "Success", "Version": API_VERSION,
                                "Timestamp": self.sb.stamp()}
        if error:
            body.update(error.extra)
            short = re.sub(r"(?<!^)(?=[A-Z])", " ", error.code)
            body["Errors"] = [{"ErrorCode": error.code, "ShortMessage": short, "LongMessage": error.message}]
        body.update(payload)
        status = error.status if error else 200
        if fmt == "json":
            return Response(json.dumps(self._plain(body)), status_code=status, media_type="application/json",
                            headers=headers)
        xml = ET.tostring(_to_element(_root_name(method), body), encoding="utf-8", xml_declaration=True)
        return Response(xml, status_code=status, media_type="text/xml", headers=headers)

    # ------------------------------------------------------------------------------ api
    async def api(self, request: Request) -> Response:
        sb = self.sb
        q = {k.lower(): v for k, v in request.query_params.items()}
        fmt = q.get("format", "xml").strip().lower() or "xml"
        wanted = q.get("method", "").strip()
        method = next((m for m in METHODS if m.lower() == wanted.lower()), None)
        try:
            if fmt not in ("xml", "json"):
                fmt = "xml"
                raise HouzzFault("InvalidParameter", "format must be xml or json.")
            if not wanted:
                raise HouzzFault("MissingParameter", "The method parameter is required.")
            if method is None or (method == "getOrder" and not sb.opt["get_order_enabled"]):
                raise HouzzFault("UnknownMethod", f"Unknown method {wanted!r}.")
            acct = sb.authenticate(request)
            if SCOPE_OF[method] not in acct.scopes:
                what = "List and process orders" if SCOPE_OF[method] == "orders" else "Update product inventory"
                raise HouzzFault("PermissionDenied", f"This API registration lacks the '{what}' permission.",
                                 status=403 if int(sb.opt["auth_failure_status"]) == 401 else 200)
            sb.tick()
            if method in WRITES:
                if request.method != "POST":
                    raise HouzzFault("InvalidParameter", f"{method} needs a POST with an XML request body.")
                fields = await self._body_fields(request, method)
                payload = sb.update_order(acct, fields) if method == "updateOrder" else sb.update_inventory(
                    acct, fields)
            else:
                payload = self._read(acct, method, q)
        except HouzzFault as fault:
            return self.envelope(method or wanted, fmt, {}, error=fault)
        return self.envelope(method, fmt, payload)

    async def _body_fields(self, request: Request, method: str) -> dict[str, str]:
        body = await request.body()
        if body.lstrip().startswith(b"{"):
            if not self.sb.opt["accept_json_bodies"]:
                raise HouzzFault("InvalidParameter", "The request body must be an XML document.")
            try:
                data = json.loads(body)
            except ValueError:
                raise HouzzFault("InvalidParameter", "The request body is not valid JSON.") from None
            if not isinstance(data, dict):
                raise HouzzFault("InvalidParameter", "The request body must be an object.")
            return {str(k).lower(): str(v).strip() for k, v in data.items()}
        root, fields = _parse_xml(body)
        expected = method[0].upper() + method[1:] + "Request"
        if root.lower() != expected.lower():
            raise HouzzFault("InvalidParameter", f"The request document must be <{expected}>, not <{root}>.")
        return fields

    def _read(self, acct: Account, method: str, q: dict[str, str]) -> dict[str, Any]:
        sb = self.sb
        if method == "getOrder":
            oid = q.get("orderid", "").strip()
            if not oid:
                raise HouzzFault("MissingParameter", "OrderId is required.")
            order = acct.orders.get(oid)
            if order is None or not sb.visible(order):
                raise HouzzFault("OrderNotFound", f"Order {oid} was not found.")
            return {"Order": sb.render_order(order)}
        start = _int_param(q, "Start", 0)
        size = min(_int_param(q, "NumberOfItems", int(sb.opt["default_page_size"])), int(sb.opt["max_page_size"]))
        if method == "getOrders":
            raw_status = q.get("status", "All") or "All"
            key = re.sub(r"[\s_\-]", "", raw_status).lower()
            statuses = STATUS_FILTERS.get(key)
            accepted = str(sb.opt["canceled_filter"]).lower()
            if key in ("canceled", "cancelled") and accepted != "both" and key != accepted:
                statuses = None
            if statuses is None:
                raise HouzzFault("InvalidParameter", f"Unknown Status {raw_status!r}.")
            try:
                lo = parse_when(q["from"]) if q.get("from") else ""
                hi = parse_when(q["to"], end_of_day=True) if q.get("to") else "9999"
            except ValueError:
                raise HouzzFault("InvalidParameter", "From and To must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS.") from None
            total, page = sb.query(acct, statuses, lo, hi, start, size)
            return {"TotalOrderCount": total, "Orders": [sb.render_order(o) for o in page]}
        if method == "getListing":
            sku = q.get("sku", "").strip() or acct.by_product.get(q.get("productid", "").strip(), "")
            if not sku and not q.get("productid"):
                raise HouzzFault("MissingParameter", "SKU or productId is required.")
            listing = acct.listings.get(sku)
            if listing is None:
                raise HouzzFault("SkuNotFound", f"No listing with SKU {sku or q.get('productid')}.")
            return {"Listing": sb.listing_view(listing)}
        wanted = (q.get("status", "All") or "All").lower()
        skus = acct.listing_index.get(wanted, [])
        rows = [sb.listing_view(acct.listings[sku]) for sku in skus[start:start + size]]
        return {"TotalListingCount": len(skus), "Listings": rows}

    def rate_limited(self, request: Request, exc: RateLimitExceeded) -> Response:
        q = {k.lower(): v for k, v in request.query_params.items()}
        fmt = "json" if q.get("format", "").lower() == "json" else "xml"
        retry = str(max(1, round(exc.retry_after)))
        fault = HouzzFault("RateLimited", "Too many requests for this Application ID: slow down.", status=429)
        return self.envelope(q.get("method", "Api"), fmt, {}, error=fault, headers={"Retry-After": retry})

    # ---------------------------------------------------------------------------- admin
    def admin(self, fn: Any) -> Any:
        async def handler(request: Request) -> Response:
            self.sb.tick()
            try:
                body = await request.json() if request.method == "POST" and await request.body() else {}
                return JSONResponse(await fn(request, body))
            except AdminError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
            except (ValueError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return handler

    def build(self) -> Starlette:
        sb = self.sb

        def acct_of(request: Request) -> Account:
            return sb.account(request.path_params["acct"])

        def order_of(request: Request) -> tuple[Account, HOrder]:
            acct = acct_of(request)
            order = acct.orders.get(request.path_params["oid"])
            if order is None:
                raise AdminError(f"no order {request.path_params['oid']!r} in account {acct.key}", 404)
            return acct, order

        def order_state(order: HOrder, history: bool = True) -> dict[str, Any]:
            out = {"OrderId": order.order_id, "status": order.status, "Created": order.created,
                   "received_at": order.received_at, "visible": sb.visible(order), "shipment": order.shipment,
                   "cancel": order.cancel}
            if history:
                out["history"] = order.history
            return out

        async def accounts(request: Request, body: Any) -> Any:
            if request.method == "POST":
                return sb.create_account(dict(body)).public()
            return [a.public() for a in sb.accounts.values()]

        async def account(request: Request, body: Any) -> Any:
            return acct_of(request).public()

        async def listings(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            if request.method == "POST":
                return [sb.add_listing(acct, dict(x)) for x in (body if isinstance(body, list) else [body])]
            return list(acct.listings.values())

        async def listing(request: Request, body: Any) -> Any:
            found = acct_of(request).listings.get(request.path_params["sku"])
            if found is None:
                raise AdminError("no such listing", 404)
            return found

        async def orders(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            if request.method == "POST":
                items = body if isinstance(body, list) else [body]
                return [order_state(sb.add_order(acct, dict(x)), False) for x in items]
            wanted = request.query_params.get("status")
            history = request.query_params.get("history", "1") != "0"
            return [order_state(o, history) for o in acct.orders.values() if not wanted or o.status == wanted]

        async def bulk(request: Request, body: Any) -> Any:
            ids = sb.generate(acct_of(request), dict(body))
            return {"created": len(ids), "order_ids": ids}

        async def order(request: Request, body: Any) -> Any:
            _, o = order_of(request)
            return {**order_state(o), "order": sb.render_order(o)}

        async def cancel(request: Request, body: Any) -> Any:
            acct, o = order_of(request)
            by = str(body.get("by", "houzz"))
            if o.status == CANCELED:
                return order_state(o)
            if o.status == SHIPPED:
                raise AdminError("a shipped order cannot be cancelled", 409)
            if by == "buyer":
                window = timedelta(minutes=float(sb.opt["buyer_cancel_minutes"]))
                if sb.now() - o.placed_at > window:
                    raise AdminError("buyers can cancel only within "
                                     f"{sb.opt['buyer_cancel_minutes']} minutes of placing the order", 409)
            code = int(body.get("code", 2 if by == "buyer" else 6))
            before = o.status
            sb.do_cancel(acct, o, code, str(body.get("reason", "")))
            sb.log(acct, o, "Cancel", "ok", by=by, **{"from": before, "to": CANCELED, "CancelCode": str(code)})
            return order_state(o)

        async def fail_charge(request: Request, body: Any) -> Any:
            acct, o = order_of(request)
            reason = str(body.get("reason", "The card was declined."))
            acct.charge_failures.setdefault(o.order_id, []).extend([reason] * int(body.get("count", 1)))
            return {"OrderId": o.order_id, "pending_failures": acct.charge_failures[o.order_id]}

        async def force_status(request: Request, body: Any) -> Any:
            acct, o = order_of(request)
            wanted = ADMIN_STATUSES.get(re.sub(r"[\s_\-]", "", str(body.get("status", ""))).lower())
            if wanted is None:
                raise AdminError(f"unknown status {body.get('status')!r}")
            before = o.status
            if wanted == CHARGED:
                sb.charge_ok(acct, o, sb.now())
            else:
                sb.set_status(acct, o, wanted)
            sb.log(acct, o, "SetStatus", "ok", by="admin", **{"from": before, "to": wanted})
            return order_state(o)

        async def actions(request: Request, body: Any) -> Any:
            wanted = request.query_params.get("action")
            return [a for a in acct_of(request).actions if not wanted or a["action"] == wanted]

        async def inventory_updates(request: Request, body: Any) -> Any:
            return acct_of(request).inventory_log

        async def clock(request: Request, body: Any) -> Any:
            if request.method == "POST":
                sb.offset += float(body.get("advance_seconds", 0))
                sb.tick()
            return {"now": sb.now().isoformat(), "offset_seconds": sb.offset}

        async def options(request: Request, body: Any) -> Any:
            return {k: v for k, v in sb.opt.items() if k != "accounts"}

        a = self.admin
        admin_routes = [
            Route("/accounts", a(accounts), methods=["GET", "POST"]),
            Route("/accounts/{acct}", a(account), methods=["GET"]),
            Route("/accounts/{acct}/listings", a(listings), methods=["GET", "POST"]),
            Route("/accounts/{acct}/listings/{sku:path}", a(listing), methods=["GET"]),
            Route("/accounts/{acct}/orders", a(orders), methods=["GET", "POST"]),
            Route("/accounts/{acct}/orders/bulk", a(bulk), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}", a(order), methods=["GET"]),
            Route("/accounts/{acct}/orders/{oid}/cancel", a(cancel), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}/fail_next_charge", a(fail_charge), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}/status", a(force_status), methods=["POST"]),
            Route("/accounts/{acct}/actions", a(actions), methods=["GET"]),
            Route("/accounts/{acct}/inventory_updates", a(inventory_updates), methods=["GET"]),
            Route("/clock", a(clock), methods=["GET", "POST"]),
            Route("/options", a(options), methods=["GET"]),
        ]
        return sb.kit.app(
            [Route("/api", self.api, methods=["GET", "POST"])],
            admin_routes,
            rate_limited_response=self.rate_limited,
            rate_key=lambda r: r.headers.get(HDR_APP, "") or "anonymous",
        )

