"""The TradeGecko sandbox's records and rules: validation (422s), the order life cycle, stock.

Stock follows the documented semantics: ``active`` and ``finalized`` orders commit their product
lines' unshipped quantity at the order's location; a fulfillment takes stock off the shelf (at
``packed`` or at ``fulfilled``, per account setting) and releases that much of the commitment;
``void`` releases everything and returns the stock of packed, unshipped fulfillments.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from orderbridge.connectors.tradegecko.sandbox_store import (
    CURRENCIES,
    Account,
    ApiError,
    Store,
    dec,
    fmt,
    invalid,
    parse_date,
    parse_instant,
    public,
)

COMPANY_TYPES = ("business", "supplier", "consumer")
WRITABLE_ORDER_STATUSES = ("draft", "active", "finalized")
COMMITTING = frozenset({"active", "finalized"})
LINE_TYPES = ("product", "discount", "shipping", "rounding", "fee", "gift_wrap")
ZERO = Decimal(0)

COUNTRY_CODES = {
    "united states": "US", "united states of america": "US", "usa": "US", "canada": "CA",
    "united kingdom": "GB", "great britain": "GB", "uk": "GB", "australia": "AU", "new zealand": "NZ",
    "singapore": "SG", "germany": "DE", "france": "FR", "spain": "ES", "italy": "IT", "mexico": "MX",
    "ireland": "IE", "netherlands": "NL",
}


class Errors(dict[str, list[str]]):
    def add(self, key: str, message: str) -> None:
        msgs = self.setdefault(key, [])
        if message not in msgs:
            msgs.append(message)

    def raise_if_any(self) -> None:
        if self:
            raise invalid(dict(self))


def text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return str(value).strip() or None


def body_dict(data: Any, key: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid({key: ["must be an object"]})
    return data


# ------------------------------------------------------------------------------- locations


def create_location(store: Store, acct: Account, data: dict[str, Any]) -> dict[str, Any]:
    errors = Errors()
    label = text(data, "label")
    if not label:
        errors.add("label", "can't be blank")
    elif any(r["status"] == "active" for r in acct.locations.where("label", label)):
        errors.add("label", "has already been taken")
    if not text(data, "address1"):
        errors.add("address1", "can't be blank")
    country = text(data, "country")
    if not country or len(country) != 2:
        errors.add("country", "must be a two-letter country code")
    errors.raise_if_any()
    row: dict[str, Any] = {
        "id": store.next_id("location"), "label": label, "address1": text(data, "address1"),
        "address2": text(data, "address2"), "suburb": text(data, "suburb"), "city": text(data, "city"),
        "state": text(data, "state"), "zip_code": text(data, "zip_code"), "country": (country or "").upper(),
        "holds_stock": bool(data.get("holds_stock", True)), "status": "active",
    }
    acct.locations.save(row, store.now())
    if not acct.primary_location_id:
        acct.primary_location_id = row["id"]
    return row


def update_location(store: Store, acct: Account, row: dict[str, Any], data: dict[str, Any]) -> None:
    for key in ("label", "address1", "address2", "suburb", "city", "state", "zip_code", "country"):
        if key in data:
            row[key] = text(data, key)
    if "holds_stock" in data:
        row["holds_stock"] = bool(data["holds_stock"])
    acct.locations.save(row, store.now())


def archive(store: Store, acct: Account, row: dict[str, Any], table: str) -> None:
    row["status"] = "archived"
    getattr(acct, table).save(row, store.now())


# -------------------------------------------------------------------------------- variants


def create_variant(store: Store, acct: Account, data: dict[str, Any]) -> dict[str, Any]:
    errors = Errors()
    name = text(data, "name") or text(data, "product_name") or text(data, "sku")
    if not name:
        errors.add("name", "can't be blank")
    prices: dict[str, Decimal | None] = {}
    for key in ("retail_price", "wholesale_price", "buy_price"):
        prices[key] = dec(data.get(key)) if data.get(key) not in (None, "") else None
        if data.get(key) not in (None, "") and prices[key] is None:
            errors.add(key, "is not a number")
    loc_id = data.get("initial_stock_location_id") or acct.primary_location_id
    initial = dec(data.get("initial_stock_level")) if data.get("initial_stock_level") is not None else None
    if data.get("initial_stock_level") is not None and initial is None:
        errors.add("initial_stock_level", "is not a number")
    if initial is not None and acct.locations.get(loc_id) is None:
        errors.add("initial_stock_location", "is invalid")
    errors.raise_if_any()
    product_id = data.get("product_id") or store.next_id("product")
    row: dict[str, Any] = {
        "id": store.next_id("variant"), "product_id": product_id, "sku": text(data, "sku"),
        "upc": text(data, "upc"), "supplier_code": text(data, "supplier_code"), "name": name,
        "product_name": text(data, "product_name") or name, "product_status": "active",
        "product_type": text(data, "product_type"), "opt1": text(data, "opt1"), "opt2": text(data, "opt2"),
        "opt3": text(data, "opt3"), "status": "active",
        "manage_stock": bool(data.get("manage_stock", True)), "keep_selling": bool(data.get("keep_selling", False)),
        "max_online": fmt(dec(data.get("max_online"))), "sellable": True, "purchasable": True,
        "composite": False, "online_ordering": bool(data.get("online_ordering", False)), "taxable": True,
        "retail_price": fmt(prices["retail_price"]), "wholesale_price": fmt(prices["wholesale_price"]),
        "buy_price": fmt(prices["buy_price"]),
        "variant_prices": [
            {"price_list_id": k.removesuffix("_price"), "value": fmt(v)} for k, v in prices.items() if v is not None
        ],
        "weight": text(data, "weight"), "weight_unit": text(data, "weight_unit"), "image_ids": [],
        "_stock": {},
    }
    if initial is not None:
        row["_stock"][int(loc_id)] = [initial, ZERO]
    acct.variants.save(row, store.now())
    return row


def update_variant(store: Store, acct: Account, row: dict[str, Any], data: dict[str, Any]) -> None:
    for key in ("sku", "upc", "supplier_code", "name", "opt1", "opt2", "opt3", "product_type"):
        if key in data:
            row[key] = text(data, key)
    for key in ("retail_price", "wholesale_price", "buy_price", "max_online"):
        if key in data:
            value = dec(data[key]) if data[key] not in (None, "") else None
            if data[key] not in (None, "") and value is None:
                raise invalid({key: ["is not a number"]})
            row[key] = fmt(value)
    for key in ("manage_stock", "keep_selling", "online_ordering"):
        if key in data:
            row[key] = bool(data[key])
    acct.variants.save(row, store.now())


def stock_cell(variant: dict[str, Any], location_id: int) -> list[Decimal]:
    """[on hand, committed] of one variant at one location."""
    cells: dict[int, list[Decimal]] = variant["_stock"]
    return cells.setdefault(int(location_id), [ZERO, ZERO])


def render_variant(acct: Account, row: dict[str, Any]) -> dict[str, Any]:
    out = public(row)
    cells: dict[int, list[Decimal]] = row["_stock"]
    on_hand = sum((c[0] for c in cells.values()), ZERO)
    committed = sum((c[1] for c in cells.values()), ZERO)
    out.update(
        stock_on_hand=fmt(on_hand), committed_stock=fmt(committed), available_stock=fmt(on_hand - committed),
        incoming_stock="0.0",
        locations=[
            {"location_id": lid, "stock_on_hand": fmt(c[0]), "committed": fmt(c[1]), "incoming": "0.0",
             "available": fmt(c[0] - c[1]), "bin_location": None, "reorder_point": None,
             "production_committed": "0.0", "production_incoming": "0.0"}
            for lid, c in sorted(cells.items())
        ],
        # deprecated, still emitted by the API
        stock_levels={str(lid): float(c[0]) for lid, c in cells.items()},
        committed_stock_levels={str(lid): float(c[1]) for lid, c in cells.items()},
    )
    return out


def render_stock_level(acct: Account, row: dict[str, Any]) -> dict[str, Any]:
    v = render_variant(acct, row)
    return {
        "id": row["id"], "variant_id": row["id"], "stock_on_hand": v["stock_on_hand"],
        "committed_stock": v["committed_stock"], "available_stock": v["available_stock"], "incoming_stock": "0.0",
        "locations": [{k: loc[k] for k in ("location_id", "stock_on_hand", "committed", "incoming")}
                      for loc in v["locations"]],
    }


# ----------------------------------------------------------------------- companies, addresses


def build_company(store: Store, data: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], Errors]:
    errors = Errors()
    if not text(data, "name"):
        errors.add(prefix + "name", "can't be blank")
    ctype = text(data, "company_type")
    if not ctype:
        errors.add(prefix + "company_type", "can't be blank")
    elif ctype not in COMPANY_TYPES:
        errors.add(prefix + "company_type", "is not included in the list")
    tags = data.get("tags") or []
    row = {
        "id": 0, "name": text(data, "name"), "company_type": ctype, "email": text(data, "email"),
        "phone_number": text(data, "phone_number"), "fax": text(data, "fax"), "website": text(data, "website"),
        "description": text(data, "description"), "company_code": text(data, "company_code"),
        "tax_number": text(data, "tax_number"), "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "assignee_id": data.get("assignee_id"), "default_price_list_id": text(data, "default_price_list_id"),
        "default_payment_term_id": data.get("default_payment_term_id"),
        "default_payment_method_id": data.get("default_payment_method_id"),
        "default_stock_location_id": data.get("default_stock_location_id"),
        "default_tax_type_id": data.get("default_tax_type_id"),
        "default_discount_rate": fmt(dec(data.get("default_discount_rate"))),
        "status": "active", "address_ids": [], "contact_ids": [], "note_ids": [],
    }
    return row, errors


def save_company(store: Store, acct: Account, row: dict[str, Any]) -> dict[str, Any]:
    row["id"] = store.next_id("company")
    return acct.companies.save(row, store.now())


def create_company(store: Store, acct: Account, data: dict[str, Any]) -> dict[str, Any]:
    row, errors = build_company(store, data)
    errors.raise_if_any()
    return save_company(store, acct, row)


def update_company(store: Store, acct: Account, row: dict[str, Any], data: dict[str, Any]) -> None:
    for key in ("name", "email", "phone_number", "fax", "website", "description", "company_code", "tax_number"):
        if key in data:
            row[key] = text(data, key)
    if "company_type" in data:
        if data["company_type"] not in COMPANY_TYPES:
            raise invalid({"company_type": ["is not included in the list"]})
        row["company_type"] = data["company_type"]
    if "status" in data:
        if data["status"] not in ("active", "disabled", "archived"):
            raise invalid({"status": ["is not included in the list"]})
        row["status"] = data["status"]
    if isinstance(data.get("tags"), list):
        row["tags"] = [str(t) for t in data["tags"]]
    acct.companies.save(row, store.now())


def country_code(data: dict[str, Any]) -> str | None:
    code = text(data, "country_code")
    if code:
        return code.upper()
    country = text(data, "country")
    if not country:
        return None
    if len(country) == 2:
        return country.upper()
    return COUNTRY_CODES.get(country.lower())


def build_address(
    acct: Account, data: dict[str, Any], company_id: int | None, prefix: str = ""
) -> tuple[dict[str, Any], Errors]:
    errors = Errors()
    if not text(data, "address1"):
        errors.add(prefix + "address1", "can't be blank")
    label = text(data, "label")
    if label and company_id and label_taken(acct, company_id, label):
        errors.add(prefix + "label", "has already been taken")
    row = {
        "id": 0, "company_id": company_id, "label": label, "address1": text(data, "address1"),
        "address2": text(data, "address2"), "city": text(data, "city"), "state": text(data, "state"),
        "suburb": text(data, "suburb"), "zip_code": text(data, "zip_code"), "country": text(data, "country"),
        "country_code": country_code(data), "company_name": text(data, "company_name"),
        "first_name": text(data, "first_name"), "last_name": text(data, "last_name"),
        "phone_number": text(data, "phone_number"), "email": text(data, "email"), "status": "active",
    }
    return row, errors


def label_taken(acct: Account, company_id: int, label: str, except_id: int = 0) -> bool:
    return any(
        a["label"] == label and a["status"] == "active" and a["id"] != except_id
        for a in acct.addresses.where("company_id", company_id)
    )


def save_address(store: Store, acct: Account, row: dict[str, Any]) -> dict[str, Any]:
    row["id"] = store.next_id("address")
    acct.addresses.save(row, store.now())
    company = acct.companies.rows[int(row["company_id"])]
    company["address_ids"].append(row["id"])
    acct.companies.save(company, store.now())
    return row


def create_address(store: Store, acct: Account, data: dict[str, Any]) -> dict[str, Any]:
    company = acct.companies.get(data.get("company_id"))
    if company is None:
        raise invalid({"company_id": ["can't be blank"]})
    row, errors = build_address(acct, data, company["id"])
    errors.raise_if_any()
    return save_address(store, acct, row)


def update_address(store: Store, acct: Account, row: dict[str, Any], data: dict[str, Any]) -> None:
    if "label" in data and text(data, "label") and label_taken(acct, row["company_id"], str(text(data, "label")),
                                                                 row["id"]):
        raise invalid({"label": ["has already been taken"]})
    for key in ("label", "address1", "address2", "city", "state", "suburb", "zip_code", "country",
                "company_name", "first_name", "last_name", "phone_number", "email"):
        if key in data:
            row[key] = text(data, key)
    if "country" in data or "country_code" in data:
        row["country_code"] = country_code({**row, **data})
    acct.addresses.save(row, store.now())


# ---------------------------------------------------------------------------------- orders


def variant_price(variant: dict[str, Any], price_list: str) -> Decimal:
    for entry in variant.get("variant_prices", []):
        if str(entry["price_list_id"]) == price_list:
            return dec(entry["value"]) or ZERO
    return dec(variant.get("retail_price")) or ZERO


def build_line(acct: Account, data: Any, price_list: str, position: int, errors: Errors) -> dict[str, Any]:
    if not isinstance(data, dict):
        errors.add("order_line_items", "must be a list of objects")
        return {}
    freeform = bool(data.get("freeform"))
    variant = None
    if not freeform:
        variant = acct.variants.get(data.get("variant_id")) if data.get("variant_id") is not None else None
        if variant is None or variant["status"] != "active":
            errors.add("order_line_items.variant", "can't be blank")
    qty = dec(data.get("quantity"))
    if qty is None or qty <= 0:
        errors.add("order_line_items.quantity", "must be greater than 0")
    raw_price = data.get("price")
    price = dec(raw_price) if raw_price not in (None, "") else (variant_price(variant, price_list) if variant else ZERO)
    if price is None:
        errors.add("order_line_items.price", "is not a number")
    discount = dec(data.get("discount")) if data.get("discount") not in (None, "") else None
    if data.get("discount") not in (None, "") and (discount is None or not -100 <= discount <= 100):
        errors.add("order_line_items.discount", "must be between -100 and 100")
    line_type = text(data, "line_type") or (None if freeform else "product")
    if line_type and line_type not in LINE_TYPES:
        errors.add("order_line_items.line_type", "is not included in the list")
    return {
        "id": 0, "order_id": 0, "variant_id": variant["id"] if variant else None, "quantity": fmt(qty),
        "price": fmt(price), "discount": fmt(discount), "discount_amount": fmt(dec(data.get("discount_amount"))),
        "tax_type_id": data.get("tax_type_id"), "tax_rate_override": fmt(dec(data.get("tax_rate_override"))),
        "freeform": freeform, "label": text(data, "label") or (variant["name"] if variant else None),
        "line_type": line_type, "position": data.get("position", position), "image_url": None,
        "shippable": variant is not None, "fulfillment_line_item_ids": [],
        "fulfillment_return_line_item_ids": [], "invoice_line_item_ids": [],
        "_qty": qty or ZERO, "_price": price or ZERO, "_discount": discount or ZERO,
        "_packed": ZERO, "_shipped": ZERO, "_deducted": ZERO,
    }


def _order_address(
    acct: Account, data: dict[str, Any], kind: str, company: dict[str, Any] | None, errors: Errors
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(existing address, nested new address) for the order's ``kind`` ("shipping" or "billing")."""
    rid = data.get(f"{kind}_address_id")
    if rid not in (None, ""):
        found = acct.addresses.get(rid)
        if found is None or found["status"] != "active" or (company and found["company_id"] != company["id"]):
            errors.add(f"{kind}_address", "is invalid")
        return found, None
    nested = data.get(f"{kind}_address")
    if isinstance(nested, dict):
        row, errs = build_address(acct, nested, company["id"] if company else None, f"{kind}_address.")
        for k, msgs in errs.items():
            for m in msgs:
                errors.add(k, m)
        return None, row
    if kind == "shipping":
        errors.add("shipping_address", "can't be blank")
    return None, None


def create_order(store: Store, acct: Account, data: dict[str, Any], app: str) -> dict[str, Any]:
    errors = Errors()
    company: dict[str, Any] | None = None
    new_company: dict[str, Any] | None = None
    if data.get("company_id") not in (None, ""):
        company = acct.companies.get(data["company_id"])
        if company is None or company["status"] == "archived":
            errors.add("company", "can't be blank")
            company = None
    elif isinstance(data.get("company"), dict):
        new_company, errs = build_company(store, data["company"], "company.")
        errors.update(errs)
    else:
        errors.add("company", "can't be blank")
    ship, new_ship = _order_address(acct, data, "shipping", company, errors)
    bill, new_bill = _order_address(acct, data, "billing", company, errors)
    issued = parse_date(data["issued_at"]) if data.get("issued_at") not in (None, "") else None
    if data.get("issued_at") in (None, ""):
        errors.add("issued_at", "can't be blank")
    elif issued is None:
        errors.add("issued_at", "is not a valid date")
    ship_at = parse_date(data["ship_at"]) if data.get("ship_at") not in (None, "") else None
    if data.get("ship_at") not in (None, "") and ship_at is None:
        errors.add("ship_at", "is not a valid date")
    status = data.get("status") or acct.settings["default_order_status"]
    if status not in WRITABLE_ORDER_STATUSES:
        errors.add("status", "is not included in the list")
    treatment = data.get("tax_treatment") or data.get("tax_type") or acct.settings["default_tax_treatment"]
    if treatment not in ("inclusive", "exclusive"):
        errors.add("tax_treatment", "is not included in the list")
    location_id = data.get("stock_location_id") or (company or {}).get("default_stock_location_id") \
        or acct.primary_location_id
    location = acct.locations.get(location_id)
    if location is None or location["status"] != "active":
        errors.add("stock_location", "is invalid")
    currency = str(data.get("currency_iso") or acct.settings["default_currency"]).upper()
    if currency not in CURRENCIES:
        errors.add("currency_iso", "is not a known currency; create it first")
    number = text(data, "order_number")
    if number and acct.settings["reject_duplicate_order_numbers"] and any(
            o["status"] != "deleted" for o in acct.orders.where("order_number", number)):
        errors.add("order_number", "has already been taken")
    price_list = str(data.get("default_price_list_id") or "retail")
    raw_lines = data.get("order_line_items") or []
    if not isinstance(raw_lines, list):
        errors.add("order_line_items", "must be a list")
        raw_lines = []
    lines = [build_line(acct, ln, price_list, i, errors) for i, ln in enumerate(raw_lines)]
    tags = data.get("tags") or []
    errors.raise_if_any()

    now = store.now()
    if new_company is not None:
        company = save_company(store, acct, new_company)
    assert company is not None
    if new_ship is not None:
        new_ship["company_id"] = company["id"]
        ship = save_address(store, acct, new_ship)
    if new_bill is not None:
        new_bill["company_id"] = company["id"]
        bill = save_address(store, acct, new_bill)
    assert ship is not None
    if not number:
        acct.order_seq += 1
        number = f"SO{acct.order_seq:04d}"
    order: dict[str, Any] = {
        "id": store.next_id("order"), "order_number": number, "reference_number": text(data, "reference_number"),
        "status": status, "fulfillment_status": "unshipped", "packed_status": "unpacked",
        "invoice_status": "uninvoiced", "payment_status": "unpaid", "return_status": "unreturned",
        "returning_status": "unreturning", "shippability_status": "shippable",
        "backordering_status": "not_backordered", "company_id": company["id"], "contact_id": data.get("contact_id"),
        "shipping_address_id": ship["id"], "billing_address_id": (bill or ship)["id"],
        "stock_location_id": int(location_id), "currency_id": CURRENCIES[currency], "user_id": acct.id,
        "assignee_id": data.get("assignee_id"), "issued_at": issued, "ship_at": ship_at,
        "email": text(data, "email"), "phone_number": text(data, "phone_number"), "notes": text(data, "notes"),
        "tax_treatment": treatment, "default_price_list_id": price_list,
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "source_url": text(data, "source_url") or text(data, "url"), "source_id": app or None,
        "document_url": None, "total": "0.0", "tax_label": "Tax", "tax_override": None,
        "order_line_item_ids": [], "fulfillment_ids": [], "fulfillment_return_ids": [], "invoice_ids": [],
        "payment_ids": [], "refund_ids": [], "invoice_numbers": {}, "tracking_number": None,
        "created_at": now, "_commit": {},
    }
    order["document_url"] = f"https://go.tradegecko.com/d/{order['id']}"
    acct.orders.save(order, now)
    _attach_lines(store, acct, order, lines)
    refresh_order(store, acct, order)
    return order


def _attach_lines(store: Store, acct: Account, order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    now = store.now()
    for line in lines:
        line["id"] = store.next_id("order_line_item")
        line["order_id"] = order["id"]
        acct.line_items.save(line, now)
        order["order_line_item_ids"].append(line["id"])


def order_lines(acct: Account, order: dict[str, Any]) -> list[dict[str, Any]]:
    return [acct.line_items.rows[i] for i in order["order_line_item_ids"]]


def refresh_order(store: Store, acct: Account, order: dict[str, Any]) -> None:
    """Recompute the derived statuses, the total and the stock commitment of an order."""
    lines = order_lines(acct, order)
    product = [ln for ln in lines if ln["shippable"]]

    def level(attr: str, none: str, part: str, full: str) -> str:
        if not product or all(ln[attr] <= 0 for ln in product):
            return none
        return full if all(ln[attr] >= ln["_qty"] for ln in product) else part

    order["fulfillment_status"] = level("_shipped", "unshipped", "partial", "shipped")
    order["packed_status"] = level("_packed", "unpacked", "partial", "packed")
    if order["status"] in COMMITTING and product and order["fulfillment_status"] == "shipped":
        order["status"] = "fulfilled"
    elif order["status"] == "fulfilled" and order["fulfillment_status"] != "shipped":
        order["status"] = "finalized"  # a shipped fulfillment was deleted
    total = sum((ln["_qty"] * ln["_price"] * (1 - ln["_discount"] / 100) for ln in lines), ZERO)
    order["total"] = fmt(total.quantize(Decimal("0.01")))
    _recommit(acct, order, lines)
    acct.orders.save(order, store.now())


def _recommit(acct: Account, order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    new: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    if order["status"] in COMMITTING:
        for ln in lines:
            variant = acct.variants.rows.get(ln["variant_id"]) if ln["shippable"] else None
            if variant is None or not variant["manage_stock"]:
                continue
            remaining = ln["_qty"] - ln["_deducted"]
            if remaining > 0:
                new[(variant["id"], order["stock_location_id"])] += remaining
    old: dict[tuple[int, int], Decimal] = order["_commit"]
    for key in old.keys() | new.keys():
        delta = new.get(key, ZERO) - old.get(key, ZERO)
        variant = acct.variants.rows.get(key[0])
        if delta and variant is not None:
            stock_cell(variant, key[1])[1] += delta
    order["_commit"] = dict(new)


ORDER_FIELDS = ("order_number", "reference_number", "email", "phone_number", "notes", "source_url")
LOCKED_FIELDS = ("order_line_items", "company_id", "shipping_address_id", "billing_address_id", "stock_location_id")


def update_order(store: Store, acct: Account, order: dict[str, Any], data: dict[str, Any]) -> None:
    if order["status"] in ("void", "deleted"):
        raise invalid({"status": [f"a {order['status']} order cannot be changed"]})
    errors = Errors()
    if order["status"] in ("finalized", "fulfilled"):
        for key in LOCKED_FIELDS:
            if key in data:
                errors.add(key, "cannot be changed once the order is finalized")
    status = data.get("status")
    order_rank = {"draft": 0, "active": 1, "finalized": 2, "fulfilled": 3}
    if status is not None and status != order["status"]:
        if status not in WRITABLE_ORDER_STATUSES:
            errors.add("status", "is not included in the list")
        elif order_rank[status] < order_rank[order["status"]]:
            errors.add("status", f"cannot go back from {order['status']} to {status}")
    for key in ("issued_at", "ship_at"):
        if data.get(key) not in (None, "") and parse_date(data[key]) is None:
            errors.add(key, "is not a valid date")
    if "stock_location_id" in data and acct.locations.get(data["stock_location_id"]) is None:
        errors.add("stock_location", "is invalid")
    raw_lines = data.get("order_line_items")
    lines = []
    if raw_lines is not None:
        if not isinstance(raw_lines, list):
            errors.add("order_line_items", "must be a list")
        else:
            start = len(order["order_line_item_ids"])
            lines = [build_line(acct, ln, order["default_price_list_id"], start + i, errors)
                     for i, ln in enumerate(raw_lines)]
    errors.raise_if_any()
    for key in ORDER_FIELDS:
        if key in data:
            order[key] = text(data, key)
    for key in ("issued_at", "ship_at"):
        if key in data:
            order[key] = parse_date(data[key]) if data[key] not in (None, "") else None
    if isinstance(data.get("tags"), list):
        order["tags"] = [str(t) for t in data["tags"]]
    if "stock_location_id" in data:
        order["stock_location_id"] = int(data["stock_location_id"])
    if status in WRITABLE_ORDER_STATUSES:
        order["status"] = status
    _attach_lines(store, acct, order, lines)  # the API appends lines sent with an update
    refresh_order(store, acct, order)


def delete_order(store: Store, acct: Account, order: dict[str, Any]) -> None:
    for ful in order_fulfillments(acct, order):
        if ful["status"] == "packed":
            _withdraw_fulfillment(store, acct, ful, "deleted")
    order["status"] = "deleted"
    refresh_order(store, acct, order)


# ---------------------------------------------------------------------------- fulfillments


def order_fulfillments(acct: Account, order: dict[str, Any]) -> list[dict[str, Any]]:
    return [acct.fulfillments.rows[i] for i in order["fulfillment_ids"]]


def fulfillment_lines(acct: Account, ful: dict[str, Any]) -> list[dict[str, Any]]:
    return [acct.fulfillment_lines.rows[i] for i in ful["fulfillment_line_item_ids"]]


def _check_can_ship(acct: Account, order: dict[str, Any], what: str) -> None:
    if order["status"] in ("void", "deleted"):
        raise invalid({"order": [f"is {order['status']}"]})
    if acct.settings["require_finalized"] and order["status"] not in ("finalized", "fulfilled"):
        raise invalid({"order": [f"must be finalized before it can be {what}"]})


def create_fulfillment(store: Store, acct: Account, data: dict[str, Any]) -> dict[str, Any]:
    order = acct.orders.get(data.get("order_id"))
    if order is None:
        raise invalid({"order_id": ["can't be blank"]})
    status = data.get("status") or "packed"
    if status not in ("packed", "fulfilled"):
        raise invalid({"status": ["is not included in the list"]})
    _check_can_ship(acct, order, "packed" if status == "packed" else "fulfilled")
    errors = Errors()
    wanted: list[tuple[dict[str, Any], Decimal]] = []
    raw = data.get("fulfillment_line_items")
    if raw is None:  # no lines: everything not yet packed, as the pack action does
        wanted = [(ln, ln["_qty"] - ln["_packed"]) for ln in order_lines(acct, order)
                  if ln["shippable"] and ln["_qty"] > ln["_packed"]]
    elif not isinstance(raw, list):
        errors.add("fulfillment_line_items", "must be a list")
    else:
        taken: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for item in raw:
            line = acct.line_items.get(item.get("order_line_item_id")) if isinstance(item, dict) else None
            if line is None or line["order_id"] != order["id"]:
                errors.add("fulfillment_line_items.order_line_item", "can't be blank")
                continue
            qty = dec(item.get("quantity"))
            if qty is None or qty <= 0:
                errors.add("fulfillment_line_items.quantity", "must be greater than 0")
                continue
            taken[line["id"]] += qty
            if taken[line["id"]] > line["_qty"] - line["_packed"]:
                errors.add("fulfillment_line_items.quantity", "is more than the quantity left to fulfil")
                continue
            wanted.append((line, qty))
    if not errors and not wanted:
        errors.add("fulfillment_line_items", "there is nothing left to fulfil")
    location = data.get("stock_location_id") or order["stock_location_id"]
    if acct.locations.get(location) is None:
        errors.add("stock_location", "is invalid")
    errors.raise_if_any()
    now = store.now()
    shipped_at = parse_instant(data["shipped_at"]) if data.get("shipped_at") else None
    ful: dict[str, Any] = {
        "id": store.next_id("fulfillment"), "order_id": order["id"], "status": status,
        "packed_at": parse_date(data["packed_at"]) if data.get("packed_at") else now[:10],
        "shipped_at": shipped_at or (now if status == "fulfilled" else None), "received_at": None,
        "delivery_type": text(data, "delivery_type"), "service": text(data, "service"),
        "tracking_number": text(data, "tracking_number"), "tracking_company": text(data, "tracking_company"),
        "tracking_url": text(data, "tracking_url"), "notes": text(data, "notes"),
        "shipping_address_id": order["shipping_address_id"], "billing_address_id": order["billing_address_id"],
        "stock_location_id": int(location), "exchange_rate": "1.0", "receipt": {},
        "order_number": order["order_number"], "company_id": order["company_id"],
        "fulfillment_line_item_ids": [], "created_at": now, "_deducted": False,
    }
    acct.fulfillments.save(ful, now)
    for position, (line, qty) in enumerate(wanted):
        variant = acct.variants.rows.get(line["variant_id"])
        fli = {
            "id": store.next_id("fulfillment_line_item"), "fulfillment_id": ful["id"],
            "order_line_item_id": line["id"], "quantity": fmt(qty), "position": position,
            "base_price": fmt(line["_price"] * qty), "variant_id": line["variant_id"],
            "variant_sku": variant["sku"] if variant else None, "_qty": qty,
        }
        acct.fulfillment_lines.save(fli, now)
        ful["fulfillment_line_item_ids"].append(fli["id"])
        line["fulfillment_line_item_ids"].append(fli["id"])
        line["_packed"] += qty
        if status == "fulfilled":
            line["_shipped"] += qty
        acct.line_items.save(line, now)
    order["fulfillment_ids"].append(ful["id"])
    if status == "fulfilled":
        order["tracking_number"] = ful["tracking_number"] or order["tracking_number"]
    _apply_stock_stage(acct, ful)
    acct.fulfillments.save(ful, now)
    refresh_order(store, acct, order)
    return ful


def _apply_stock_stage(acct: Account, ful: dict[str, Any]) -> None:
    """Take the fulfillment's stock off the shelf, or put it back, per its status."""
    stages = {"packed", "fulfilled"} if acct.settings["deduct_stock_at"] == "packed" else {"fulfilled"}
    want = ful["status"] in stages
    if want == ful["_deducted"]:
        return
    sign = 1 if want else -1
    for fli in fulfillment_lines(acct, ful):
        line = acct.line_items.rows[fli["order_line_item_id"]]
        line["_deducted"] += sign * fli["_qty"]
        variant = acct.variants.rows.get(line["variant_id"])
        if variant is not None and variant["manage_stock"]:
            stock_cell(variant, ful["stock_location_id"])[0] -= sign * fli["_qty"]
    ful["_deducted"] = want


def _ship(acct: Account, ful: dict[str, Any], now: str) -> None:
    ful["status"] = "fulfilled"
    ful["shipped_at"] = ful["shipped_at"] or now
    for fli in fulfillment_lines(acct, ful):
        acct.line_items.rows[fli["order_line_item_id"]]["_shipped"] += fli["_qty"]
    _apply_stock_stage(acct, ful)


def _withdraw_fulfillment(store: Store, acct: Account, ful: dict[str, Any], status: str) -> None:
    """Void or delete a fulfillment: its lines count as unpacked again and its stock returns."""
    for fli in fulfillment_lines(acct, ful):
        line = acct.line_items.rows[fli["order_line_item_id"]]
        line["_packed"] -= fli["_qty"]
        if ful["status"] == "fulfilled":
            line["_shipped"] -= fli["_qty"]
    ful["status"] = status
    _apply_stock_stage(acct, ful)
    acct.fulfillments.save(ful, store.now())


TRACKING_FIELDS = ("tracking_number", "tracking_company", "tracking_url", "service", "notes", "delivery_type")


def update_fulfillment(store: Store, acct: Account, ful: dict[str, Any], data: dict[str, Any]) -> None:
    status = data.get("status")
    if ful["status"] in ("void", "deleted"):
        raise invalid({"status": [f"a {ful['status']} fulfillment cannot be changed"]})
    if status not in (None, ful["status"]) and not (ful["status"] == "packed" and status == "fulfilled"):
        raise invalid({"status": [f"cannot change from {ful['status']} to {status}"]})
    for key in TRACKING_FIELDS:
        if key in data:
            ful[key] = text(data, key)
    if data.get("shipped_at"):
        ful["shipped_at"] = parse_instant(data["shipped_at"]) or ful["shipped_at"]
    if data.get("packed_at"):
        ful["packed_at"] = parse_date(data["packed_at"]) or ful["packed_at"]
    now = store.now()
    if status == "fulfilled" and ful["status"] == "packed":
        _ship(acct, ful, now)
    acct.fulfillments.save(ful, now)
    refresh_order(store, acct, acct.orders.rows[ful["order_id"]])


def delete_fulfillment(store: Store, acct: Account, ful: dict[str, Any]) -> None:
    if ful["status"] != "deleted":
        _withdraw_fulfillment(store, acct, ful, "deleted")
        refresh_order(store, acct, acct.orders.rows[ful["order_id"]])


# --------------------------------------------------------------------------------- actions


def order_action(
    store: Store, acct: Account, order: dict[str, Any], action: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    if action == "void":
        return void_order(store, acct, order)
    if action in ("pack", "fulfil", "fulfill"):
        return _pack_or_fulfil(store, acct, order, action, body)
    if action == "invoice":
        _check_can_ship(acct, order, "invoiced")
        return 201, {"invoice": public(_invoice(store, acct, order, body.get("invoice") or {}, required=True))}
    if action == "pay":
        if order["status"] in ("void", "deleted", "draft"):
            raise invalid({"order": [f"a {order['status']} order cannot be paid"]})
        return 201, {"payment": public(_pay(store, acct, order, body.get("payment") or {}))}
    raise ApiError(404, {"type": "Not Found", "message": f"Unknown action {action!r}"})


def void_order(store: Store, acct: Account, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if order["status"] in ("void", "deleted"):
        raise invalid({"status": [f"is already {order['status']}"]})
    if order["status"] == "fulfilled":
        raise invalid({"status": ["a fulfilled order cannot be voided"]})
    for ful in order_fulfillments(acct, order):
        if ful["status"] == "packed":
            _withdraw_fulfillment(store, acct, ful, "void")
    order["status"] = "void"
    refresh_order(store, acct, order)
    return 200, {"order": public(order)}


def _pack_or_fulfil(
    store: Store, acct: Account, order: dict[str, Any], action: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    details = body.get("fulfillment") if isinstance(body.get("fulfillment"), dict) else {}
    assert isinstance(details, dict)
    _check_can_ship(acct, order, "packed" if action == "pack" else "fulfilled")
    extra = {k: details[k] for k in TRACKING_FIELDS if k in details}
    now = store.now()
    touched: dict[str, Any] | None = None
    if action != "pack":
        for ful in order_fulfillments(acct, order):
            if ful["status"] == "packed":
                for key, value in extra.items():
                    ful[key] = ful.get(key) or value
                _ship(acct, ful, now)
                acct.fulfillments.save(ful, now)
                touched = ful
    remaining = any(ln["shippable"] and ln["_qty"] > ln["_packed"] for ln in order_lines(acct, order))
    if remaining:
        status = "packed" if action == "pack" else "fulfilled"
        touched = create_fulfillment(store, acct, {**extra, "order_id": order["id"], "status": status})
    elif touched is None:
        raise invalid({"order": [f"has nothing left to {'pack' if action == 'pack' else 'fulfil'}"]})
    else:
        refresh_order(store, acct, order)
    return 201, {"fulfillment": public(touched)}


def _invoice(
    store: Store, acct: Account, order: dict[str, Any], data: dict[str, Any], *, required: bool
) -> dict[str, Any]:
    if order["invoice_status"] == "invoiced":
        if required:
            raise invalid({"order": ["is already fully invoiced"]})
        return acct.invoices.rows[order["invoice_ids"][-1]]
    now = store.now()
    invoice = {
        "id": store.next_id("invoice"), "order_id": order["id"],
        "invoice_number": f"INV{store.next_id('invoice_number:' + str(acct.id)):04d}",
        "invoiced_at": parse_date(data.get("invoiced_at") or now) or now[:10],
        "due_at": parse_date(data["due_at"]) if data.get("due_at") else None, "notes": text(data, "notes"),
        "payment_status": "unpaid", "status": "active", "invoice_line_item_ids": list(order["order_line_item_ids"]),
    }
    acct.invoices.save(invoice, now)
    order["invoice_ids"].append(invoice["id"])
    order["invoice_numbers"][str(invoice["id"])] = invoice["invoice_number"]
    order["invoice_status"] = "invoiced"
    acct.orders.save(order, now)
    return invoice


def _pay(store: Store, acct: Account, order: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    invoice = _invoice(store, acct, order, {}, required=False)
    now = store.now()
    payment = {
        "id": store.next_id("payment"), "invoice_id": invoice["id"], "amount": order["total"],
        "payment_method_name": text(data, "payment_method_name") or "Credit Card",
        "paid_at": parse_instant(data["paid_at"]) if data.get("paid_at") else now, "status": "active",
    }
    acct.payments.save(payment, now)
    invoice["payment_status"] = "paid"
    acct.invoices.save(invoice, now)
    order["payment_ids"].append(payment["id"])
    order["payment_status"] = "paid"
    acct.orders.save(order, now)
    return payment


# ---------------------------------------------------------------- the warehouse (admin only)


def warehouse_ship(
    store: Store, acct: Account, order: dict[str, Any], packages: list[dict[str, Any]], finalize: bool
) -> list[dict[str, Any]]:
    """Ship an order in packages, as a warehouse user would: one fulfillment per package."""
    if order["status"] in ("draft", "void", "deleted"):
        raise ApiError(409, {"error": f"order {order['id']} is {order['status']}: it cannot ship"})
    if order["status"] == "active" and finalize:
        order["status"] = "finalized"
        refresh_order(store, acct, order)
    out = []
    for pkg in packages:
        data = {k: pkg[k] for k in (*TRACKING_FIELDS, "shipped_at", "packed_at") if k in pkg}
        data.update(order_id=order["id"], status=pkg.get("status", "fulfilled"))
        if pkg.get("lines") is not None:
            data["fulfillment_line_items"] = _allocate(acct, order, pkg["lines"])
        out.append(create_fulfillment(store, acct, data))
    return out


def _allocate(acct: Account, order: dict[str, Any], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spread SKU quantities over the order's lines that still have unpacked units."""
    left = {ln["id"]: ln["_qty"] - ln["_packed"] for ln in order_lines(acct, order) if ln["shippable"]}
    sku_of = {ln["id"]: acct.variants.rows[ln["variant_id"]]["sku"] for ln in order_lines(acct, order)
              if ln["shippable"]}
    out = []
    for item in wanted:
        need = dec(item.get("quantity")) or ZERO
        for line_id, free in left.items():
            if need <= 0:
                break
            if sku_of[line_id] != item.get("sku") or free <= 0:
                continue
            take = min(free, need)
            out.append({"order_line_item_id": line_id, "quantity": fmt(take)})
            left[line_id] -= take
            need -= take
        if need > 0:
            raise ApiError(409, {"error": f"order {order['id']} has no {item.get('sku')} left to ship "
                                          f"for {item.get('quantity')} units"})
    return out
