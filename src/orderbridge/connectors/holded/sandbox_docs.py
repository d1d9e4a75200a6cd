"""Holded documents in the sandbox: create, list, approve, pay, send units, tracking, stock effects."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from orderbridge.connectors.holded.sandbox_store import (
    CARRIER_KEYS,
    SERIES_TYPE,
    SHIPPABLE,
    STOCK_BACK_ON_CREATE,
    STOCK_OUT_ON_CREATE,
    TAXES,
    TRACKABLE,
    Account,
    Document,
    HoldedFault,
    Missing,
    _num,
    _r2,
    fold_custom_fields,
    format_number,
    new_id,
    now,
    whole,
)

_TAX_RATES = {t["key"]: float(t["amount"]) for t in TAXES}


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None or value == "":
        raise HoldedFault(f"{what} is required")
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise HoldedFault(f"Invalid {what}") from None


def _resolve_contact(acc: Account, body: Mapping[str, Any]) -> str:
    if body.get("contactId"):
        cid = str(body["contactId"])
        if cid not in acc.contacts:
            raise HoldedFault("Contact not found")
        return cid
    if body.get("contactCode"):
        found = acc.contact_by_code(str(body["contactCode"]))
        if found:
            return found
    if body.get("contactName"):
        address = {"address": body.get("contactAddress"), "city": body.get("contactCity"),
                   "postalCode": body.get("contactCp"), "province": body.get("contactProvince"),
                   "countryCode": body.get("contactCountryCode")}
        return acc.add_contact({
            "name": body["contactName"], "email": body.get("contactEmail"), "code": body.get("contactCode"),
            "billAddress": {k: v for k, v in address.items() if v}, "type": "client",
        })
    raise HoldedFault("contactId needed")


def _items(acc: Account, raw: Any, contact: Mapping[str, Any], apply_defaults: bool) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HoldedFault("Invalid items")
    default_discount = 0.0
    defaults = contact.get("defaults") or {}
    if apply_defaults and isinstance(defaults, dict):
        default_discount = _num(defaults.get("discount"), "discount", default=0.0)
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise HoldedFault("Invalid items")
        sku = str(entry.get("sku") or "")
        linked = acc.find_sku(sku)
        product = acc.products[linked[0]] if linked else None
        taxes = [str(k) for k in entry.get("taxes") or [] if isinstance(k, str)]
        if "tax" in entry and entry["tax"] is not None:
            tax = _num(entry["tax"], "tax")
        elif taxes:
            tax = sum(_TAX_RATES.get(k, 0.0) for k in taxes)
        else:
            tax = float(product["tax"]) if product else 0.0
        discount = _num(entry.get("discount"), "discount", default=0.0) or default_discount
        if not 0 <= discount <= 100:
            raise HoldedFault("Invalid discount")
        units = _num(entry.get("units"), "units", default=1.0)
        item: dict[str, Any] = {
            "name": str(entry.get("name") or (product["name"] if product else "")),
            "desc": str(entry.get("desc") or ""),
            "price": _num(entry.get("subtotal"), "subtotal", default=0.0),
            "units": units, "tax": tax, "taxes": taxes, "tags": [str(t) for t in entry.get("tags") or []],
            "discount": discount, "retention": 0, "weight": product["weight"] if product else 0,
            "costPrice": product["cost"] if product else 0, "sku": sku,
        }
        if linked:
            item["productId"] = linked[0]
            if linked[1] != linked[0]:
                item["variantId"] = linked[1]
            item["_item"] = linked[1]
        if entry.get("serviceId"):
            item["serviceId"] = str(entry["serviceId"])
        out.append(item)
    return out


def _check_refs(acc: Account, doc_type: str, body: Mapping[str, Any]) -> None:
    if body.get("warehouseId") and str(body["warehouseId"]) not in acc.warehouses:
        raise HoldedFault("Warehouse not found")
    if body.get("salesChannelId") and str(body["salesChannelId"]) not in acc.channels:
        raise HoldedFault("Sales channel not found")
    if body.get("numSerieId"):
        series = acc.series.get(str(body["numSerieId"]))
        if series is None or series["type"] != SERIES_TYPE[doc_type]:
            raise HoldedFault("Numbering series not found")
    if body.get("designId") and acc.quirks.strict_designs and str(body["designId"]) not in acc.designs:
        raise HoldedFault("Design not found")


def create_document(acc: Account, doc_type: str, body: Mapping[str, Any]) -> Document:
    date = _int(body.get("date"), "date")
    _check_refs(acc, doc_type, body)
    contact_id = _resolve_contact(acc, body)
    contact = acc.contacts[contact_id]
    items = _items(acc, body.get("items"), contact, body.get("applyContactDefaults") is not False)
    shipping = {k: str(body[k]) for k in ("shippingAddress", "shippingPostalCode", "shippingCity",
                                           "shippingProvince", "shippingCountry") if body.get(k)}
    doc = Document(
        id=new_id(), doc_type=doc_type, seq=acc.next_seq(), date=date, contact_id=contact_id,
        contact_name=contact["name"], items=items,
        warehouse_id=str(body.get("warehouseId") or acc.default_warehouse()), created_at=now(),
        desc=str(body.get("desc") or ""), notes=str(body.get("notes") or ""),
        due_date=_int(body["dueDate"], "dueDate") if body.get("dueDate") else None,
        custom_fields=fold_custom_fields(body.get("customFields"), acc.quirks.custom_fields_quirk),
        tags=[str(t) for t in body.get("tags") or [] if isinstance(t, str)],
        currency=str(body.get("currency") or "eur").lower(),
        currency_change=_num(body.get("currencyChange"), "currencyChange", default=1.0),
        language=str(body.get("language") or "es"), sales_channel_id=str(body.get("salesChannelId") or ""),
        num_serie_id=str(body.get("numSerieId") or ""), design_id=str(body.get("designId") or ""),
        payment_method_id=str(body.get("paymentMethodId") or ""), invoice_num=str(body.get("invoiceNum") or ""),
        sent=[0.0] * len(items), shipping=shipping,
    )
    acc.docs[doc_type][doc.id] = doc
    bisect.insort(acc.docs_by_date[doc_type], (doc.date, doc.seq, doc.id))
    if body.get("approveDoc") is True:
        approve(acc, doc)
    _index_values(acc, doc)
    if doc.approved_at is not None or acc.quirks.drafts_move_stock:
        _stock_on_create(acc, doc)
    return doc


def approve(acc: Account, doc: Document) -> None:
    if doc.approved_at is not None:
        return
    doc.approved_at = now()
    if acc.quirks.honour_invoice_num and doc.invoice_num and not doc.num_serie_id:
        doc.doc_number = doc.invoice_num
    else:
        stype = SERIES_TYPE[doc.doc_type]
        series = acc.series.get(doc.num_serie_id) or next(
            (s for s in acc.series.values() if s["type"] == stype), None)
        if series is None:
            doc.doc_number = str(doc.seq)
        else:
            series["last"] += 1
            doc.doc_number = format_number(series["format"], series["last"], doc.date)
    acc.docs_by_value.setdefault(doc.doc_number, set()).add((doc.doc_type, doc.id))


def _index_values(acc: Account, doc: Document) -> None:
    for cf in doc.custom_fields:
        acc.docs_by_value.setdefault(cf["value"], set()).add((doc.doc_type, doc.id))


def _unindex(acc: Account, doc: Document) -> None:
    for value in [*(cf["value"] for cf in doc.custom_fields), doc.doc_number]:
        acc.docs_by_value.get(value, set()).discard((doc.doc_type, doc.id))
    row = (doc.date, doc.seq, doc.id)
    rows = acc.docs_by_date[doc.doc_type]
    at = bisect.bisect_left(rows, row)
    if at < len(rows) and rows[at] == row:
        rows.pop(at)


def _moves_stock(acc: Account, doc: Document) -> bool:
    if doc.doc_type in STOCK_BACK_ON_CREATE:
        return True
    if doc.doc_type not in STOCK_OUT_ON_CREATE:
        return False
    return not (doc.doc_type == "waybill" and acc.quirks.stock_system == "simple")


def _stock_line(acc: Account, doc: Document, item: Mapping[str, Any], units: float, reason: str) -> None:
    target = item.get("_item")
    if not target or not units or not acc.products.get(item["productId"], {}).get("hasStock"):
        return
    acc.move(doc.warehouse_id, str(target), -units, reason, doc, item.get("sku", ""))


def _stock_on_create(acc: Account, doc: Document, sign: float = 1.0) -> None:
    if not _moves_stock(acc, doc):
        return
    direction = -1.0 if doc.doc_type in STOCK_BACK_ON_CREATE else 1.0
    for item in doc.items:
        _stock_line(acc, doc, item, sign * direction * item["units"], f"{doc.doc_type} created"
                    if sign > 0 else f"{doc.doc_type} removed")
    doc.moved_stock = sign > 0


def get_document(acc: Account, doc_type: str, doc_id: str) -> Document:
    doc = acc.docs[doc_type].get(doc_id)
    if doc is None:
        raise Missing()
    return doc


def list_documents(acc: Account, doc_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    start, end = params.get("starttmp"), params.get("endtmp")
    if (start is None) != (end is None):
        raise HoldedFault("Query params starttmp & endtmp are mandatory")
    ids: Iterable[str]
    if start is not None and end is not None:
        rows = acc.docs_by_date[doc_type]
        lo = bisect.bisect_left(rows, (_int(start, "starttmp"),))
        hi = bisect.bisect_right(rows, (_int(end, "endtmp"), float("inf")))
        window = rows[lo:hi]  # by document date, then creation
        if params.get("sort") in ("created-asc", "created-desc"):
            window = sorted(window, key=lambda r: r[1])
        ids = (r[2] for r in window)
    else:
        ids = acc.docs[doc_type]  # insertion order is creation order
    if params.get("sort") == "created-desc":
        ids = reversed(list(ids))
    page, size = _paging(acc, params)
    skip, out = (page - 1) * size, []
    for doc_id in ids:  # lazily: stop once the page is full
        doc = acc.docs[doc_type][doc_id]
        if not _listed(acc, doc, params):
            continue
        if skip:
            skip -= 1
            continue
        out.append(doc.wire())
        if len(out) == size:
            break
    return out


def _listed(acc: Account, doc: Document, params: Mapping[str, str]) -> bool:
    approved = doc.approved_at is not None
    wanted = {"approved-0": False, "approved-1": True}.get(params.get("filter", ""))
    if wanted is None and not approved and not acc.quirks.drafts_in_lists:
        return False
    if wanted is not None and approved != wanted:
        return False
    if params.get("contactid") and doc.contact_id != params["contactid"]:
        return False
    if params.get("paid") not in (None, "") and str(doc.pay_status) != params["paid"]:
        return False
    return params.get("billed") != "1"  # nothing in the sandbox is ever converted into another document


def _paging(acc: Account, params: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = max(1, int(params.get("page", "1")))
    except ValueError:
        page = 1
    try:
        size = max(1, int(params.get("limit", str(acc.quirks.page_size))))
    except ValueError:
        size = acc.quirks.page_size
    return page, size


def page_of(acc: Account, values: list[Any], params: Mapping[str, str]) -> list[Any]:
    page, size = _paging(acc, params)
    return values[(page - 1) * size: page * size]


def update_document(acc: Account, doc: Document, body: Mapping[str, Any]) -> None:
    if doc.approved_at is not None:
        raise HoldedFault("Approved documents cannot be edited")
    if body.get("warehouseId") and str(body["warehouseId"]) not in acc.warehouses:
        raise HoldedFault("Warehouse not found")
    if "items" in body:
        items = _items(acc, body["items"], acc.contacts.get(doc.contact_id, {}), False)
        moved = doc.moved_stock
        if moved:
            _stock_on_create(acc, doc, sign=-1.0)
        doc.set_items(items)
        if moved:
            _stock_on_create(acc, doc)
    for key, attr in (("desc", "desc"), ("notes", "notes"), ("language", "language"),
                      ("salesChannelId", "sales_channel_id"), ("warehouseId", "warehouse_id")):
        if isinstance(body.get(key), str):
            setattr(doc, attr, body[key])
    if "date" in body:
        _unindex(acc, doc)
        doc.date = _int(body["date"], "date")
        bisect.insort(acc.docs_by_date[doc.doc_type], (doc.date, doc.seq, doc.id))
        _index_values(acc, doc)
    if isinstance(body.get("customFields"), list):
        _unindex(acc, doc)
        bisect.insort(acc.docs_by_date[doc.doc_type], (doc.date, doc.seq, doc.id))
        doc.custom_fields = fold_custom_fields(body["customFields"], quirk=False)
        _index_values(acc, doc)


def delete_document(acc: Account, doc: Document) -> None:
    if doc.approved_at is not None:
        raise HoldedFault("Approved documents cannot be deleted")
    if doc.moved_stock:
        _stock_on_create(acc, doc, sign=-1.0)
    for item, sent in zip(doc.items, doc.sent, strict=True):
        _stock_line(acc, doc, item, -sent, "sent units returned")
    _unindex(acc, doc)
    del acc.docs[doc.doc_type][doc.id]


def pay(acc: Account, doc: Document, body: Mapping[str, Any]) -> dict[str, Any]:
    date = _int(body.get("date"), "date")
    amount = _num(body.get("amount"), "amount")
    if amount <= 0:
        raise HoldedFault("Invalid amount")
    treasury = str(body.get("treasury") or "")
    if treasury and treasury not in acc.treasuries:
        raise HoldedFault("Treasury not found")
    approve(acc, doc)
    pid = new_id()
    payment = {"id": pid, "date": date, "amount": _r2(amount), "desc": str(body.get("desc") or ""),
               "treasury": treasury or None}
    doc.payments.append(payment)
    acc.payments[pid] = {**payment, "contactId": doc.contact_id, "documentId": doc.id}
    return {"status": 1, "invoiceId": doc.id, "invoiceNum": doc.doc_number, "paymentId": pid}


# ------------------------------------------------------------------------------ shipping


def _send(acc: Account, doc: Document, plan: dict[int, float], reason: str) -> dict[int, float]:
    for pos, units in plan.items():
        doc.sent[pos] += units
        if acc.quirks.stock_system == "automatic":
            _stock_line(acc, doc, doc.items[pos], units, reason)
    return plan


def ship_all(acc: Account, doc: Document) -> dict[int, float]:
    plan = {i: item["units"] - doc.sent[i] for i, item in enumerate(doc.items) if item["units"] > doc.sent[i]}
    return _send(acc, doc, plan, "units sent")


def ship_by_lines(acc: Account, doc: Document, lines: Any) -> dict[int, float]:
    if not isinstance(lines, list) or not lines:
        raise HoldedFault("lines are required")
    plan: dict[int, float] = {}
    for line in lines:
        if not isinstance(line, dict):
            raise HoldedFault("Invalid lines")
        pos = _int(line.get("itemLinePosition"), "itemLinePosition")
        units = _num(line.get("units"), "units")
        if not 0 <= pos < len(doc.items):
            raise HoldedFault("Invalid itemLinePosition")
        if units <= 0:
            raise HoldedFault("Invalid units")
        plan[pos] = plan.get(pos, 0.0) + units
        if plan[pos] > doc.items[pos]["units"] - doc.sent[pos] + 1e-9:
            raise HoldedFault("Units exceed the pending units of the line")
    return _send(acc, doc, plan, "units sent")


def shipped_items(doc: Document) -> list[dict[str, Any]]:
    if doc.doc_type not in SHIPPABLE:
        raise HoldedFault("Document type not supported")
    return [{"name": item["name"], "sku": item["sku"], "total": whole(item["units"]), "sent": whole(sent),
             "pending": whole(_r2(item["units"] - sent))} for item, sent in zip(doc.items, doc.sent, strict=True)]


def update_tracking(doc: Document, body: Mapping[str, Any]) -> None:
    if doc.doc_type not in TRACKABLE:
        raise HoldedFault("Document type not supported")
    key = str(body.get("key") or "")
    if key not in CARRIER_KEYS:
        raise HoldedFault("key should be one of: " + ", ".join(sorted(CARRIER_KEYS)))
    doc.tracking = {k: str(body[k]) for k in ("key", "name", "num", "pickUpDate", "deliveryDate", "notes")
                    if body.get(k) is not None}


def send_units(acc: Account, doc: Document, body: Mapping[str, Any]) -> dict[str, Any]:
    """The "Send units" button: all pending units or some lines, optionally with carrier and tracking."""
    if doc.doc_type != "salesorder":
        raise HoldedFault("Only sales orders have units to send")
    lines = body.get("lines")
    if lines:
        resolved = []
        for line in lines:
            pos = line.get("itemLinePosition")
            if pos is None and line.get("sku"):
                pos = next((i for i, it in enumerate(doc.items)
                            if it["sku"] == line["sku"] and it["units"] > doc.sent[i]), None)
                if pos is None:
                    raise HoldedFault(f"no pending line with SKU {line['sku']}")
            resolved.append({"itemLinePosition": pos, "units": line.get("units")})
        plan = ship_by_lines(acc, doc, resolved)
    else:
        plan = ship_all(acc, doc)
    tracking = str(body.get("tracking") or "")
    if tracking or body.get("carrier"):
        key = str(body.get("carrier") or "other")
        old = (doc.tracking or {}).get("num", "")
        nums = [n for n in old.split(",") if n] + ([tracking] if tracking and tracking not in old.split(",") else [])
        update_tracking(doc, {"key": key if key in CARRIER_KEYS else "other",
                              "name": str(body.get("carrier_name") or key), "num": ",".join(nums),
                              "pickUpDate": body.get("pickUpDate"), "notes": body.get("notes")})
    event = {"seq": len(acc.send_events) + 1, "at": now(), "docId": doc.id, "docNumber": doc.doc_number,
             "lines": [{"itemLinePosition": p, "sku": doc.items[p]["sku"], "units": whole(u)}
                       for p, u in plan.items()],
             "tracking": tracking, "carrier": body.get("carrier")}
    acc.send_events.append(event)
    return event


def documents_matching(acc: Account, value: str, doc_type: str | None) -> list[Document]:
    found = acc.docs_by_value.get(value, set())
    return sorted((acc.docs[t][i] for t, i in found if doc_type in (None, t) and i in acc.docs[t]),
                  key=lambda d: d.seq)
