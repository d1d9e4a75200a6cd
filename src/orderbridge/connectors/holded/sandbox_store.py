"""In-memory state of the Holded sandbox: accounts, contacts, products, stock, documents.

Pure logic, no HTTP: ``sandbox.py`` translates requests into these calls and errors into
Holded's envelopes. Every lookup a request needs is a dict access or a bisect, so the sandbox
stays fast with tens of thousands of documents.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DOC_TYPES = (
    "invoice", "salesreceipt", "creditnote", "salesorder", "proform", "waybill", "estimate",
    "purchase", "purchaseorder", "purchaserefund", "receiptnote",
)
# Numbering-series type of each document type (the names contacts' `numberingSeries` uses).
SERIES_TYPE = {
    "invoice": "invoice", "salesreceipt": "receipt", "creditnote": "creditnote", "salesorder": "salesOrder",
    "proform": "proform", "waybill": "waybill", "estimate": "estimate", "purchase": "purchase",
    "purchaseorder": "purchasesOrder", "purchaserefund": "purchaserefund", "receiptnote": "receiptnote",
}
# Spellings accepted in /numberingseries/{type} (exact accepted set is UNKNOWN: be generous).
SERIES_PATH = {**{k.lower(): v for k, v in SERIES_TYPE.items()}, **{v.lower(): v for v in SERIES_TYPE.values()}}
DEFAULT_FORMATS = {"invoice": "F[YY]%%%%", "receipt": "T[YY]%%%%", "salesOrder": "SO[YY]%%%%",
                   "creditnote": "R[YY]%%%%", "waybill": "A[YY]%%%%", "proform": "P[YY]%%%%",
                   "estimate": "E[YY]%%%%", "purchasesOrder": "PO[YY]%%%%"}
STOCK_OUT_ON_CREATE = frozenset({"invoice", "salesreceipt", "waybill"})
STOCK_BACK_ON_CREATE = frozenset({"creditnote"})
SHIPPABLE = frozenset({"salesorder", "purchaseorder"})
TRACKABLE = frozenset({"salesorder", "waybill"})
CARRIER_KEYS = frozenset({
    "mrw", "ups", "fedex", "tnt", "seur", "nacex", "correos", "asm", "uspostalservice", "dbschenker",
    "royalmail", "bluedart", "palletways", "correosexpress", "tourline", "other",
})
TAXES = [
    {"name": f"IVA {r}%", "amount": str(r), "scope": "sales", "key": f"s_iva_{r}", "group": "iva",
     "type": "percentage"} for r in (21, 10, 4, 0)
] + [{"name": "IRPF 15%", "amount": "-15", "scope": "sales", "key": "s_ret_15", "group": "retencion",
      "type": "percentage"}]


class HoldedFault(Exception):
    """A refusal Holded words as ``{"status": 0, "info": ...}`` (often on HTTP 200)."""

    def __init__(self, info: str, http_status: int = 400) -> None:
        super().__init__(info)
        self.info = info
        self.http_status = http_status


class Missing(HoldedFault):
    def __init__(self, info: str = "Not found") -> None:
        super().__init__(info, 404)


@dataclass
class Quirks:
    """Behaviours the notes record as observed or guessed; each can be switched."""

    errors_on_http_200: bool = True  # business errors as HTTP 200 + status 0
    html_404: bool = True  # unknown routes answer Holded's HTML 404 page with HTTP 200
    auth_on_http_200: bool = False  # a bad key answers HTTP 200 + status 0 instead of 401
    custom_fields_quirk: bool = True  # create splits each customFields entry's properties into rows
    drafts_in_lists: bool = False  # unfiltered lists hide drafts (filter=approved-0 shows them)
    drafts_move_stock: bool = True  # a draft invoice/receipt moves stock when created
    strict_designs: bool = False  # refuse designId values not registered with the account
    honour_invoice_num: bool = False  # an explicit invoiceNum survives approval (else the series wins)
    stock_system: str = "automatic"  # "simple": orders and waybills never move stock
    page_size: int = 500

    def update(self, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if key not in type(self).__dataclass_fields__:
                raise ValueError(f"unknown quirk {key!r}; known: {sorted(type(self).__dataclass_fields__)}")
            current = getattr(self, key)
            setattr(self, key, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in type(self).__dataclass_fields__}


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def now() -> int:
    return int(time.time())


def _num(value: Any, what: str, *, default: float | None = None) -> float:
    if value is None or value == "":
        if default is None:
            raise HoldedFault(f"{what} is required")
        return default
    if isinstance(value, bool):
        raise HoldedFault(f"Invalid {what}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HoldedFault(f"Invalid {what}") from None


def _r2(x: float) -> float:
    return round(x + 0.0, 2)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def whole(x: float) -> float | int:
    """Whole quantities as JSON integers, the way Holded prints units and stock."""
    return int(x) if float(x).is_integer() else x


def fold_custom_fields(raw: Any, quirk: bool) -> list[dict[str, str]]:
    """Holded's create-time handling of customFields (with or without the reported quirk)."""
    if not isinstance(raw, list):
        return []
    out: list[dict[str, str]] = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        if quirk or not {"field", "value"} <= entry.keys():
            out += [{"field": str(k), "value": "" if v is None else str(v)} for k, v in entry.items()]
        else:
            out.append({"field": str(entry["field"]), "value": str(entry["value"])})
    return out


def format_number(fmt: str, counter: int, when: int) -> str:
    year = datetime.fromtimestamp(when, UTC).year
    text = fmt.replace("[YYYY]", f"{year:04d}").replace("[YY]", f"{year % 100:02d}")
    match = re.search(r"%+", text)
    if not match:
        return f"{text}{counter}"
    width = len(match.group(0))
    return text[: match.start()] + f"{counter:0{width}d}" + text[match.end():]


# ------------------------------------------------------------------------------ documents


@dataclass
class Document:
    id: str
    doc_type: str
    seq: int
    date: int
    contact_id: str
    contact_name: str
    items: list[dict[str, Any]]
    warehouse_id: str
    created_at: int
    desc: str = ""
    notes: str = ""
    due_date: int | None = None
    custom_fields: list[dict[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    currency: str = "eur"
    currency_change: float = 1.0
    language: str = "es"
    sales_channel_id: str = ""
    num_serie_id: str = ""
    design_id: str = ""
    payment_method_id: str = ""
    invoice_num: str = ""
    doc_number: str = ""
    approved_at: int | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    tracking: dict[str, Any] | None = None
    shipping: dict[str, str] = field(default_factory=dict)
    canceled: bool = False
    moved_stock: bool = False
    stored_at: float = field(default_factory=time.time)  # sub-second creation time, for latency figures

    _totals: tuple[float, float, float, float] | None = None

    def set_items(self, items: list[dict[str, Any]]) -> None:
        self.items, self.sent, self._totals = items, [0.0] * len(items), None

    def totals(self) -> tuple[float, float, float, float]:
        """(subtotal, discount, tax, total), computed once per set of items."""
        if self._totals is None:
            gross = sum(i["price"] * i["units"] for i in self.items)
            off = sum(i["price"] * i["units"] * i["discount"] / 100 for i in self.items)
            tax = sum(i["price"] * i["units"] * (1 - i["discount"] / 100) * i["tax"] / 100 for i in self.items)
            self._totals = (_r2(gross), _r2(off), _r2(tax), _r2(_r2(gross) - _r2(off) + _r2(tax)))
        return self._totals

    @property
    def total(self) -> float:
        return self.totals()[3]

    @property
    def paid(self) -> float:
        return _r2(sum(p["amount"] for p in self.payments))

    @property
    def pay_status(self) -> int:
        if self.canceled:
            return 3
        if self.paid <= 0:
            return 0
        return 1 if self.paid >= self.total - 0.005 else 2

    def wire(self) -> dict[str, Any]:
        subtotal, discount, tax, total = self.totals()
        paid = self.paid
        out: dict[str, Any] = {
            "id": self.id, "contact": self.contact_id, "contactName": self.contact_name, "desc": self.desc,
            "date": self.date, "dueDate": self.due_date if self.due_date is not None else self.date,
            "notes": self.notes,
            "products": [{k: whole(v) if k == "units" else v for k, v in i.items() if not k.startswith("_")}
                         for i in self.items],
            "tax": tax, "subtotal": subtotal, "discount": discount, "total": total,
            "language": self.language, "status": self.pay_status, "customFields": list(self.custom_fields),
            "docNumber": self.doc_number, "currency": self.currency, "currencyChange": self.currency_change,
            "paymentsTotal": paid, "paymentsPending": _r2(total - paid), "paymentsRefunds": 0,
            "paymentsDetail": list(self.payments), "salesChannelId": self.sales_channel_id or None,
            "warehouseId": self.warehouse_id or None, "numSerieId": self.num_serie_id or None,
            "designId": self.design_id or None, "tags": list(self.tags), "draft": self.approved_at is None,
            **self.shipping,
        }
        if self.approved_at is not None:
            out["approvedAt"] = self.approved_at
        if self.tracking is not None:
            out["tracking"] = dict(self.tracking)
        return out


# -------------------------------------------------------------------------------- account


@dataclass
class Account:
    key: str
    name: str
    quirks: Quirks
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts_by_custom_id: dict[str, list[str]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    sku_index: dict[str, tuple[str, str]] = field(default_factory=dict)  # sku -> (product, stock item)
    variant_owner: dict[str, str] = field(default_factory=dict)  # variant id -> product id
    warehouses: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock: dict[tuple[str, str], float] = field(default_factory=dict)  # (warehouse, product|variant) -> units
    stock_rows: dict[tuple[str, str], str] = field(default_factory=dict)  # (warehouse, product) -> row id
    movements: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    treasuries: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    designs: set[str] = field(default_factory=set)
    docs: dict[str, dict[str, Document]] = field(default_factory=lambda: {t: {} for t in DOC_TYPES})
    docs_by_date: dict[str, list[tuple[int, int, str]]] = field(default_factory=lambda: {t: [] for t in DOC_TYPES})
    docs_by_value: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    send_events: list[dict[str, Any]] = field(default_factory=list)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_seq(self) -> int:
        return next(self._seq)

    # ------------------------------------------------------------------ set-up and seeding
    def bootstrap(self) -> None:
        """A fresh Holded account: one default warehouse, default series, a bank, a payment method."""
        self.add_warehouse({"name": "Main warehouse", "default": True})
        for stype, fmt in DEFAULT_FORMATS.items():
            self.add_series(stype, {"name": "Default", "format": fmt, "last": 0})
        tid = new_id()
        self.treasuries[tid] = {"id": tid, "name": "Bank", "type": "bank", "balance": 0, "accountNumber": "",
                                "iban": "", "swift": "", "bank": "", "bankname": ""}
        pid = new_id()
        self.payment_methods[pid] = {"id": pid, "name": "Card", "dueDays": 0, "bankId": tid}

    def default_warehouse(self) -> str:
        for wid, wh in self.warehouses.items():
            if wh["default"]:
                return wid
        return next(iter(self.warehouses), "")

    def add_warehouse(self, body: Mapping[str, Any]) -> str:
        if not str(body.get("name") or "").strip():
            raise HoldedFault("name is required")
        wid = str(body.get("id") or new_id())
        default = bool(body.get("default")) or not self.warehouses
        if default:
            for wh in self.warehouses.values():
                wh["default"] = False
        address = _mapping(body.get("address"))
        self.warehouses[wid] = {
            "id": wid, "userId": "", "name": str(body["name"]), "email": str(body.get("email") or ""),
            "phone": str(body.get("phone") or ""), "mobile": str(body.get("mobile") or ""),
            "address": dict(address), "default": default, "warehouseRecord": None,
        }
        return wid

    def add_series(self, stype: str, body: Mapping[str, Any]) -> str:
        sid = str(body.get("id") or new_id())
        self.series[sid] = {"id": sid, "name": str(body.get("name") or "Series"),
                            "format": str(body.get("format") or "%%%%"), "last": int(body.get("last") or 0),
                            "type": stype}
        return sid

    def add_channel(self, body: Mapping[str, Any]) -> str:
        if not str(body.get("name") or "").strip():
            raise HoldedFault("name is required")
        cid = str(body.get("id") or new_id())
        self.channels[cid] = {"id": cid, "name": str(body["name"]), "desc": "", "color": "#507C6C",
                              "accNum": body.get("accountNum")}
        return cid

    # ------------------------------------------------------------------------- contacts
    def add_contact(self, body: Mapping[str, Any]) -> str:
        name = str(body.get("name") or "").strip()
        if not name:
            raise HoldedFault("name is required")
        cid = new_id()
        custom_id = str(body.get("CustomId") or body.get("customId") or "")
        bill = _mapping(body.get("billAddress"))
        stamp = now()
        self.contacts[cid] = {
            "id": cid, "customId": custom_id, "name": name, "code": str(body.get("code") or ""),
            "vatnumber": str(body.get("vatnumber") or ""), "tradeName": str(body.get("tradeName") or ""),
            "email": str(body.get("email") or ""), "mobile": str(body.get("mobile") or ""),
            "phone": str(body.get("phone") or ""), "type": str(body.get("type") or "client"),
            "iban": str(body.get("iban") or ""), "swift": str(body.get("swift") or ""),
            "groupId": str(body.get("groupId") or ""), "clientRecord": 0, "supplierRecord": 0,
            "billAddress": {**{k: "" for k in ("address", "city", "postalCode", "province", "country",
                                               "countryCode", "info")}, **{k: str(v) for k, v in bill.items()}},
            "defaults": dict(body.get("defaults") or {}) if isinstance(body.get("defaults"), dict) else {},
            "socialNetworks": {}, "tags": [str(t) for t in body.get("tags") or [] if isinstance(t, str)],
            "notes": [], "contactPersons": [], "shippingAddresses": [],
            "customFields": fold_custom_fields(body.get("customFields"), self.quirks.custom_fields_quirk),
            "isperson": 1 if body.get("isperson") else 0, "createdAt": stamp, "updatedAt": stamp,
        }
        if custom_id:
            self.contacts_by_custom_id.setdefault(custom_id, []).append(cid)
        return cid

    def update_contact(self, cid: str, body: Mapping[str, Any]) -> None:
        contact = self.contacts.get(cid)
        if contact is None:
            raise Missing()
        for key in ("name", "code", "email", "phone", "mobile", "tradeName", "type", "vatnumber"):
            if key in body and body[key] is not None:
                contact[key] = str(body[key])
        if "CustomId" in body or "customId" in body:
            old = contact["customId"]
            if old:
                self.contacts_by_custom_id.get(old, []).remove(cid)
            contact["customId"] = str(body.get("CustomId") or body.get("customId") or "")
            if contact["customId"]:
                self.contacts_by_custom_id.setdefault(contact["customId"], []).append(cid)
        contact["updatedAt"] = now()

    def delete_contact(self, cid: str) -> None:
        contact = self.contacts.pop(cid, None)
        if contact is None:
            raise Missing()
        if contact["customId"]:
            self.contacts_by_custom_id.get(contact["customId"], []).remove(cid)

    def contact_by_code(self, code: str) -> str | None:
        wanted = code.strip().upper()
        for cid, c in self.contacts.items():  # Holded matches the TIN uppercase; no index needed here
            if wanted and c["code"].upper() == wanted:
                return cid
        return None

    # ------------------------------------------------------------------------- products
    def add_product(self, body: Mapping[str, Any]) -> str:
        name = str(body.get("name") or "").strip()
        if not name:
            raise HoldedFault("name is required")
        pid = str(body.get("id") or new_id())
        price = _num(body.get("price"), "price", default=0.0)
        tax = _num(body.get("tax"), "tax", default=21.0)
        variants = []
        for v in body.get("variants") or []:
            if isinstance(v, dict):
                variants.append({"id": str(v.get("id") or new_id()), "barcode": str(v.get("barcode") or ""),
                                 "sku": str(v.get("sku") or ""), "price": _num(v.get("price"), "price", default=price),
                                 "cost": 0, "purchasePrice": 0})
        self.products[pid] = {
            "id": pid, "kind": "variants" if variants else str(body.get("kind") or "simple"), "name": name,
            "desc": str(body.get("desc") or ""), "typeId": "", "contactId": "", "contactName": "",
            "price": price, "tax": tax, "total": _r2(price * (1 + tax / 100)), "rates": [],
            "hasStock": 0 if body.get("hasStock") in (0, False) else 1,
            "barcode": str(body.get("barcode") or ""), "sku": str(body.get("sku") or ""),
            "cost": _num(body.get("cost"), "cost", default=0.0), "purchasePrice": 0,
            "weight": _num(body.get("weight"), "weight", default=0.0), "tags": [], "categoryId": "",
            "factoryCode": "", "attributes": [], "forSale": 1, "forPurchase": 1, "salesChannelId": "",
            "expAccountId": "", "warehouseId": self.default_warehouse(), "variants": variants,
        }
        self._index_product(pid)
        initial = body.get("stock")
        if isinstance(initial, int | float) and not isinstance(initial, bool) and initial and not variants:
            self.move(self.default_warehouse(), pid, float(initial), "initial stock")
        return pid

    def _index_product(self, pid: str) -> None:
        p = self.products[pid]
        if p["sku"] and not p["variants"]:
            self.sku_index.setdefault(p["sku"], (pid, pid))
        for v in p["variants"]:
            self.variant_owner[v["id"]] = pid
            if v["sku"]:
                self.sku_index.setdefault(v["sku"], (pid, v["id"]))

    def _unindex_product(self, pid: str) -> None:
        for sku in [s for s, (owner, _) in self.sku_index.items() if owner == pid]:
            del self.sku_index[sku]
        for v in self.products[pid]["variants"]:
            self.variant_owner.pop(v["id"], None)

    def update_product(self, pid: str, body: Mapping[str, Any]) -> None:
        product = self.products.get(pid)
        if product is None:
            raise Missing()
        self._unindex_product(pid)
        for key in ("name", "desc", "barcode", "sku", "kind"):
            if isinstance(body.get(key), str):
                product[key] = body[key]
        for key, wire in (("subtotal", "price"), ("price", "price"), ("tax", "tax"), ("cost", "cost"),
                          ("weight", "weight")):
            if key in body:
                product[wire] = _num(body[key], key)
        product["total"] = _r2(product["price"] * (1 + product["tax"] / 100))
        self._index_product(pid)

    def delete_product(self, pid: str) -> None:
        if pid not in self.products:
            raise Missing()
        self._unindex_product(pid)
        del self.products[pid]

    def find_sku(self, sku: str) -> tuple[str, str] | None:
        """(product id, stock item id) of the product or variant with this SKU."""
        return self.sku_index.get(sku) if sku else None

    def stock_of(self, pid: str) -> float:
        p = self.products[pid]
        items = [v["id"] for v in p["variants"]] or [pid]
        return sum(self.stock.get((w, i), 0.0) for w in self.warehouses for i in items)

    def product_wire(self, pid: str) -> dict[str, Any]:
        p = dict(self.products[pid])
        p["stock"] = whole(self.stock_of(pid))
        p["variants"] = [{**v, "stock": whole(sum(self.stock.get((w, v["id"]), 0.0) for w in self.warehouses))}
                         for v in p["variants"]]
        return p

    def move(self, warehouse: str, item: str, delta: float, reason: str, doc: Document | None = None,
             sku: str = "") -> None:
        if not delta:
            return
        pid = self.variant_owner.get(item, item)
        self.stock[(warehouse, item)] = self.stock.get((warehouse, item), 0.0) + delta
        self.stock_rows.setdefault((warehouse, pid), new_id())
        self.movements.append({
            "seq": len(self.movements) + 1, "at": now(), "warehouseId": warehouse, "productId": pid,
            "itemId": item, "sku": sku, "delta": delta, "reason": reason,
            "docType": doc.doc_type if doc else None, "docId": doc.id if doc else None,
        })

    def apply_stock_body(self, pid: str, body: Mapping[str, Any]) -> bool:
        """PUT /products/{id}/stock: deltas keyed warehouse -> item; a wrong shape changes nothing."""
        stock = body.get("stock")
        if not isinstance(stock, dict):
            return False
        product = self.products[pid]
        items = {v["id"] for v in product["variants"]} or {pid}
        changed = False
        for wid, per_item in stock.items():
            if wid not in self.warehouses or not isinstance(per_item, dict):
                continue
            for item, delta in per_item.items():
                if item in items and isinstance(delta, int | float) and not isinstance(delta, bool):
                    self.move(wid, item, float(delta), "stock update")
                    changed = True
        return changed

    def warehouse_stock(self, wid: str) -> dict[str, Any]:
        wh = self.warehouses.get(wid)
        if wh is None:
            raise Missing()
        rows = []
        for pid, p in self.products.items():
            if (wid, pid) not in self.stock_rows:
                continue
            if p["variants"]:
                variants = {v["id"]: whole(self.stock.get((wid, v["id"]), 0.0)) for v in p["variants"]}
                rows.append({"_id": self.stock_rows[(wid, pid)], "product_id": pid,
                             "stock": whole(sum(variants.values())), "variants": variants})
            else:
                rows.append({"_id": self.stock_rows[(wid, pid)], "product_id": pid,
                             "stock": whole(self.stock.get((wid, pid), 0.0)), "variants": {}})
        return {"warehouse": {"id": wid, "name": wh["name"], "color": "#3C8DBC", "products": rows}}
