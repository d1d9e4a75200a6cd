"""State of the JOOR sandbox: brand accounts, their orders with export flags, catalog and inventory.

No HTTP here: ``sandbox.py`` turns requests into calls on ``JoorStore`` and its answers into JSON.
Which behaviours are documented by JOOR and which are inferred is listed in docs/sandboxes/joor.md.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

STATUSES = ("Approved", "Pending", "Shipped", "Cancelled", "Notes")
ORDER_TYPES: dict[int, frozenset[str]] = {
    1: frozenset({"Notes"}), 2: frozenset({"Approved", "Shipped"}), 3: frozenset({"Pending"}),
    4: frozenset({"Approved", "Pending", "Shipped", "Notes"}), 5: frozenset({"Cancelled"}),
    6: frozenset({"Approved"}), 7: frozenset({"Shipped"}), 8: frozenset(STATUSES),
}
NONE, SUCCESS, FAILED = "none", "success", "failed"
EXPORT_LABELS = {NONE: "Not Exported", SUCCESS: "Exported", FAILED: "Failed"}
MAX_COUNT = 500
MAX_INVENTORY_ITEMS = 1000
DEFAULT_WAREHOUSE = "Default"

DEMO_ACCOUNT = {"id": "demo-brand", "name": "Demo Brand", "token": "joor-sandbox-demo-token",
                "warehouses": ["MAIN", "WEST"]}

RETAILERS = [
    ("RT-1001", "Bloom Boutique", "Nina Alvarez", "215 King St", "Charleston", "SC", "29401"),
    ("RT-1002", "Harbor & Pine", "Owen Case", "88 Water St", "Portland", "ME", "04101"),
    ("RT-1003", "Atelier Nord", "Ingrid Sol", "1200 Pearl St", "Boulder", "CO", "80302"),
    ("RT-1004", "The Linen Room", "Maya Chen", "455 Hayes St", "San Francisco", "CA", "94102"),
    ("RT-1005", "Wren & Co", "Theo Banks", "31 Main St", "Nantucket", "MA", "02554"),
    ("RT-1006", "Salt Studio", "Ava Brooks", "702 S Congress Ave", "Austin", "TX", "78704"),
]
STYLES = [("Linen Wrap Dress", "D"), ("Cropped Wool Blazer", "J"), ("Silk Slip Skirt", "S"),
          ("Cotton Poplin Shirt", "T"), ("Wide Leg Trouser", "P"), ("Cashmere Crew", "K"),
          ("Denim Chore Coat", "C"), ("Pleated Midi Skirt", "S")]
COLORS = [("001", "Black"), ("100", "Ivory"), ("410", "Navy"), ("220", "Camel"), ("630", "Sage")]
SIZES = ["XS", "S", "M", "L", "XL"]
SHIP_METHODS = [("UPS-GND", "UPS Ground"), ("FDX-2D", "FedEx 2Day"), ("LTL", "Freight LTL")]
TERMS = ["Net 30", "Net 60", "Credit Card", "Pro Forma"]


class JoorFault(Exception):
    """An API refusal, answered with JOOR's error envelope and this HTTP status."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, name: str) -> datetime:
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise JoorFault(400, f"{name} must be a UTC timestamp YYYY-MM-DDThh:mm:ss.sTZD", parameter=name) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class JOrder:
    order_id: int
    data: dict[str, Any]  # the payload without order_id, status and the dates below
    status: str
    order_date: datetime
    modified_at: datetime
    export_state: str = NONE
    exported_at: datetime | None = None
    export_message: str = ""
    export_count: int = 0  # how many sync=1 answers carried it
    verbatim: dict[str, Any] = field(default_factory=dict)  # admin-seeded fields sent as they are (malformed)

    def render(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "order_date": iso(self.order_date),
                "modified_date": iso(self.modified_at), "export_status": EXPORT_LABELS[self.export_state],
                **self.data, **self.verbatim}

    def state(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "modified_date": iso(self.modified_at),
                "export_status": EXPORT_LABELS[self.export_state], "export_state": self.export_state,
                "exported_at": iso(self.exported_at) if self.exported_at else None,
                "export_count": self.export_count, "export_message": self.export_message,
                "lines": len(self.data.get("line_items") or [])}


@dataclass
class Account:
    key: str
    name: str
    token: str
    warehouses: list[str]
    orders: dict[int, JOrder] = field(default_factory=dict)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)  # UPC -> style, color, size
    by_sku: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (style, color, size) -> UPC
    inventory: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (warehouse, UPC) -> position
    inventory_log: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"id": self.key, "name": self.name, "token": self.token, "warehouses": self.warehouses,
                "orders": len(self.orders), "catalog": len(self.catalog), "inventory_positions": len(self.inventory)}


class JoorStore:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.rng = random.Random(options.get("seed"))
        first = options.get("first_order_id") or self.rng.randrange(4_000_000, 9_000_000, 1000)
        self.ids = itertools.count(int(first))
        self.clock_offset = timedelta(0)
        self.accounts: dict[str, Account] = {}
        accounts = options.get("accounts")
        for spec in [DEMO_ACCOUNT] if accounts is None else accounts:
            self.create_account(dict(spec))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    # ------------------------------------------------------------------------- accounts
    def create_account(self, spec: dict[str, Any]) -> Account:
        key = str(spec.get("id") or f"brand-{len(self.accounts) + 1}")
        token = str(spec.get("token") or uuid.uuid4().hex)
        if key in self.accounts:
            raise AdminError(f"account {key!r} exists")
        if any(a.token == token for a in self.accounts.values()):
            raise AdminError("another account has this token")
        warehouses = [str(w) for w in spec.get("warehouses") or ["MAIN"]]
        acct = Account(key=key, name=str(spec.get("name") or key), token=token,
                       warehouses=[*warehouses, *([DEFAULT_WAREHOUSE] if DEFAULT_WAREHOUSE not in warehouses else [])])
        self.accounts[key] = acct
        return acct

    def account(self, key: str) -> Account:
        if key not in self.accounts:
            raise AdminError(f"no account {key!r}", 404)
        return self.accounts[key]

    def authenticate(self, header: str | None) -> Account:
        """``Authorization: OAuth2 <Base64 token>``; 401 otherwise."""
        scheme, _, value = (header or "").strip().partition(" ")
        if not header:
            raise JoorFault(401, "Authorization header missing: send 'OAuth2 <Base64-encoded API token>'")
        if scheme != "OAuth2" or not value.strip():
            raise JoorFault(401, "Authorization must be 'OAuth2 <Base64-encoded API token>'")
        try:
            token = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise JoorFault(401, "the OAuth2 token is not Base64-encoded") from None
        for acct in self.accounts.values():
            if acct.token == token:
                return acct
        raise JoorFault(401, "Invalid API token")

    # -------------------------------------------------------------------------- catalog
    def add_style(self, acct: Account, spec: dict[str, Any]) -> dict[str, Any]:
        upc = str(spec.get("upc") or "").strip()
        style, color, size = (str(spec.get(k) or "").strip() for k in ("style_number", "color_code", "size"))
        if not upc or not (style and color and size):
            raise AdminError("a catalog entry needs upc, style_number, color_code and size")
        entry = {"upc": upc, "style_number": style, "style_identifier": str(spec.get("style_identifier") or style),
                 "style_name": str(spec.get("style_name") or style), "color_code": color,
                 "color_name": str(spec.get("color_name") or color), "size": size,
                 "price": str(spec.get("price") or "40.00"), "retail_price": str(spec.get("retail_price") or "95.00")}
        acct.catalog[upc] = entry
        acct.by_sku[(style.lower(), color.lower(), size.lower())] = upc
        return entry

    def ensure_catalog(self, acct: Account) -> list[dict[str, Any]]:
        """A demo catalog (styles x colors x sizes) when the account has none yet."""
        if not acct.catalog:
            for n, (name, kind) in enumerate(STYLES):
                style = f"SS26-{kind}{100 + n}"
                for code, color in COLORS[n % 3: n % 3 + 3]:
                    for k, size in enumerate(SIZES):
                        upc = f"0{840000000000 + n * 1000 + int(code) + k:011d}"[-12:]
                        self.add_style(acct, {"upc": upc, "style_number": style, "style_name": name,
                                              "color_code": code, "color_name": color, "size": size,
                                              "price": f"{38 + n * 7}.00", "retail_price": f"{95 + n * 15}.00"})
        return list(acct.catalog.values())

    # --------------------------------------------------------------------------- orders
    def add_order(self, acct: Account, body: dict[str, Any]) -> JOrder:
        body = dict(body)
        lines = body.pop("lines", None)
        omit = [str(k) for k in body.pop("omit", [])]
        verbatim = body.pop("verbatim", None) or {}
        if not isinstance(verbatim, dict):
            raise AdminError("verbatim must be an object of fields to send as they are")
        oid = int(body.pop("order_id", None) or next(self.ids))
        if oid in acct.orders:
            raise AdminError(f"order {oid} exists")
        status = str(body.pop("status", "Approved"))
        if status not in STATUSES:
            raise AdminError(f"status must be one of {STATUSES}")
        now = self.now()
        placed = parse_time(str(body.pop("order_date")), "order_date") if body.get("order_date") else now
        modified = parse_time(str(body.pop("modified_date")), "modified_date") if body.get("modified_date") else now
        data = self.generated(acct, int(lines) if lines is not None else None)
        data.update(body)
        for key in omit:
            data.pop(key, None)
        order = JOrder(order_id=oid, data=data, status=status, order_date=placed, modified_at=modified,
                       verbatim=dict(verbatim))
        acct.orders[oid] = order
        return order

    def generated(self, acct: Account, lines: int | None) -> dict[str, Any]:
        """A realistic wholesale order: a retailer, its addresses, size runs of a few styles."""
        rng = self.rng
        code, name, buyer, street, city, state, zipc = rng.choice(RETAILERS)
        catalog = self.ensure_catalog(acct)
        if lines is None:
            styles = sorted({c["style_number"] for c in catalog})
            picked = [c for c in catalog if c["style_number"] in rng.sample(styles, rng.randint(1, 3))]
            items = [c for c in picked if rng.random() < 0.8] or picked[:1]
        else:
            items = [catalog[i % len(catalog)] for i in range(max(0, lines))]
        line_items = []
        for n, c in enumerate(items, 1):
            line_items.append({"line_id": str(n), "style_number": c["style_number"],
                               "style_identifier": c["style_identifier"], "style_name": c["style_name"],
                               "color_code": c["color_code"], "color_name": c["color_name"], "size": c["size"],
                               "upc": c["upc"], "quantity": rng.choice([2, 3, 4, 6, 6, 8, 12]), "price": c["price"],
                               "retail_price": c["retail_price"]})
        subtotal = sum((Decimal(i["price"]) * i["quantity"] for i in line_items), Decimal("0"))
        ship_code, ship_name = rng.choice(SHIP_METHODS)
        address = {"code": f"{code}-S1", "name": buyer, "company": name, "address_1": street, "address_2": "",
                   "address_3": "", "city": city, "state": state, "postal_code": zipc, "country": "United States",
                   "phone": f"555-01{rng.randint(10, 99)}"}
        start = self.now().date() + timedelta(days=30)
        return {
            "po_number": f"PO-{rng.randint(10000, 99999)}", "customer_code": code, "customer_name": name,
            "customer_group_name": "Specialty", "buyer_name": buyer,
            "buyer_email": f"{buyer.split()[0].lower()}@example.com", "buyer_phone": address["phone"],
            "warehouse_code": acct.warehouses[0], "warehouse_name": f"{acct.warehouses[0]} Warehouse",
            "currency_code": "USD", "price_type": "Wholesale USD", "payment_terms": rng.choice(TERMS),
            "shipping_method_code": ship_code, "shipping_method": ship_name, "sales_representative": "House Account",
            "order_season_code": "SS26", "start_ship_date": start.isoformat(),
            "complete_ship_date": (start + timedelta(days=30)).isoformat(),
            "shipping_cost": "0.00", "order_discount": "0.00", "order_total": f"{subtotal:.2f}", "notes": "",
            "billing_address": {**address, "code": f"{code}-B1"}, "shipping_address": address,
            "line_items": line_items,
        }

    def order(self, acct: Account, oid: Any) -> JOrder:
        try:
            return acct.orders[int(oid)]
        except (KeyError, ValueError):
            raise AdminError(f"no order {oid}", 404) from None

    def touch(self, order: JOrder) -> None:
        order.modified_at = max(self.now(), order.modified_at + timedelta(milliseconds=1))

    # ------------------------------------------------------------------------ GET /v2/orders
    def list_orders(self, acct: Account, q: dict[str, str]) -> dict[str, Any]:
        sync = _choice(q, "sync", (0, 1), 1)
        order_type = _choice(q, "order_type", tuple(ORDER_TYPES), 2)
        export_status = _choice(q, "export_status", tuple(range(1, 8)), 2 if sync else 1)
        check = _choice(q, "check", (0, 1, 2, 3), 1 if sync else 0)
        start_from = _int(q, "start_from", 0, 0, 10**9)
        count = _int(q, "count", 50, 1, MAX_COUNT)
        if ("date_start" in q) != ("date_end" in q):
            raise JoorFault(400, "date_start and date_end must be supplied together",
                            parameter="date_end" if "date_start" in q else "date_start")
        lo = parse_time(q["date_start"], "date_start") if "date_start" in q else None
        hi = parse_time(q["date_end"], "date_end") if "date_end" in q else None
        if lo and hi and lo > hi:
            raise JoorFault(400, "date_start is after date_end", parameter="date_start")
        customer, group = q.get("customer_code", ""), q.get("customer_group_name", "")
        matching = []
        for order in sorted(acct.orders.values(), key=lambda o: o.order_id):
            if order.status not in ORDER_TYPES[order_type] or not _export_match(order, export_status):
                continue
            if lo and hi and not lo <= order.modified_at <= hi:
                continue
            if customer and str(order.data.get("customer_code", "")) != customer:
                continue
            if group and str(order.data.get("customer_group_name", "")) != group:
                continue
            if sync and check in (1, 3) and _missing_fields(order):
                # JOOR's export check: the order is marked Failed and left out of the answer.
                order.export_state, order.export_message = FAILED, "missing required fields: " + ", ".join(
                    _missing_fields(order))
                continue
            matching.append(order)
        page = matching[start_from:start_from + count]
        if sync:
            now = self.now()
            for order in page:
                order.export_state, order.exported_at, order.export_message = SUCCESS, now, ""
                order.export_count += 1
        nxt = start_from + len(page)
        return {"total": len(matching), "start_from": start_from, "count": len(page),
                "next_start_from": nxt if nxt < len(matching) else None, "orders": [o.render() for o in page]}

    # --------------------------------------------------------------- POST /v2/bulk-inventory
    def bulk_inventory(self, acct: Account, body: Any, q: dict[str, str]) -> dict[str, Any]:
        overwrite = _choice(q, "overwrite", (0, 1), 0)
        dec_pending = _choice(q, "dec_pending", (0, 1), 0)
        container = body.get("inventory_items") if isinstance(body, dict) else None
        items = container.get("inventory_item") if isinstance(container, dict) else None
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items:
            raise JoorFault(400, "the body must hold inventory_items.inventory_item with at least one item",
                            field="inventory_items")
        if len(items) > MAX_INVENTORY_ITEMS:
            raise JoorFault(400, f"at most {MAX_INVENTORY_ITEMS} inventory items per request", field="inventory_item")
        if overwrite:
            acct.inventory.clear()
        pending = self.pending_units(acct) if dec_pending else {}
        log = [self._apply_item(acct, item, pending) for item in items]
        acct.inventory_log.extend(log)
        return {"sku_count": sum(1 for e in log if e["status"] == "pass"), "inventory_log": log}

    def _apply_item(self, acct: Account, item: Any, pending: dict[str, int]) -> dict[str, Any]:
        entry: dict[str, Any] = {"sku": "", "inventory_log_id": str(uuid.uuid4()), "status": "fail"}
        if not isinstance(item, dict):
            return {**entry, "message": "inventory_item is not an object"}
        upc = str(item.get("upc") or "").strip()
        style, color, size = (str(item.get(k) or "").strip() for k in ("style_number", "color_code", "size"))
        entry["sku"] = upc or "-".join(p for p in (style, color, size) if p)
        if upc:
            if upc not in acct.catalog:
                return {**entry, "message": f"UPC {upc} is not in the style library"}
        elif style and color and size:
            upc = acct.by_sku.get((style.lower(), color.lower(), size.lower()), "")
            if not upc:
                return {**entry, "message": f"no SKU with style number {style}, color code {color} and size {size}"}
            ident = str(item.get("style_identifer") or "").strip()
            if ident and ident != acct.catalog[upc]["style_identifier"]:
                return {**entry, "message": f"style_identifer {ident} does not match style {style}"}
        elif item.get("style_id") or item.get("style_color_id"):
            return {**entry, "message": "JOOR ids (style_id, style_color_id, size_code) are not emulated: send upc"}
        else:
            return {**entry, "message": "identify the SKU by upc, or by style_number + color_code + size"}
        raw_qty = item.get("inventory")
        if isinstance(raw_qty, bool) or not str(raw_qty if raw_qty is not None else "").strip().lstrip("-").isdigit():
            return {**entry, "message": f"inventory must be an integer (got {raw_qty!r})"}
        quantity = int(str(raw_qty).strip())
        if quantity < 0:
            return {**entry, "message": "inventory must not be negative"}
        warehouse = str(item.get("warehouse") or DEFAULT_WAREHOUSE).strip()
        if warehouse not in acct.warehouses:
            return {**entry, "message": f"warehouse {warehouse!r} is not set up in Order Settings"}
        when = str(item.get("inventory_date") or "").strip()
        if when and not _valid_inventory_date(when):
            return {**entry, "message": "inventory_date must be YYYY-MM-DD or MM-DD-YYYY"}
        made_to_order = bool(item.get("made_to_order"))
        if made_to_order:
            quantity = 0
        acct.inventory[(warehouse, upc)] = {
            "warehouse": warehouse, "upc": upc, **{k: acct.catalog[upc][k] for k in
                                                   ("style_number", "color_code", "size")},
            "inventory": quantity, "available_to_sell": max(0, quantity - pending.get(upc, 0)),
            "inventory_date": when, "made_to_order": made_to_order, "updated_at": iso(self.now())}
        return {**entry, "status": "pass"}

    @staticmethod
    def pending_units(acct: Account) -> dict[str, int]:
        out: dict[str, int] = {}
        for order in acct.orders.values():
            if order.status == "Pending":
                for line in order.data.get("line_items") or []:
                    if isinstance(line, dict) and str(line.get("quantity", "")).isdigit():
                        out[str(line.get("upc"))] = out.get(str(line.get("upc")), 0) + int(line["quantity"])
        return out


def _choice(q: dict[str, str], name: str, allowed: tuple[int, ...], default: int) -> int:
    if name not in q or q[name] == "":
        return default
    try:
        value = int(q[name])
    except ValueError:
        value = -1
    if value not in allowed:
        raise JoorFault(400, f"{name} must be one of {', '.join(map(str, allowed))}", parameter=name)
    return value


def _int(q: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    if name not in q or q[name] == "":
        return default
    try:
        value = int(q[name])
    except ValueError:
        raise JoorFault(400, f"{name} must be an integer", parameter=name) from None
    if not lo <= value <= hi:
        raise JoorFault(400, f"{name} must be between {lo} and {hi}", parameter=name)
    return value


def _export_match(order: JOrder, code: int) -> bool:
    modified_since = order.export_state == SUCCESS and order.exported_at is not None and \
        order.modified_at > order.exported_at
    return {
        1: True,
        2: order.export_state in (NONE, FAILED),
        3: order.export_state == SUCCESS,
        4: modified_since,
        5: order.export_state in (NONE, FAILED) or modified_since,
        6: order.export_state == NONE,
        7: order.export_state == NONE or modified_since,
    }[code]


def _missing_fields(order: JOrder) -> list[str]:
    return [k for k in ("customer_code", "shipping_address", "line_items") if not order.data.get(k)]


def _valid_inventory_date(text: str) -> bool:
    for fmt in ("%Y-%m-%d", "%m-%d-%Y"):
        try:
            datetime.strptime(text, fmt)
            return True
        except ValueError:
            continue
    return False
