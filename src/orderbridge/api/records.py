"""Orders, shipments, inventory and products in CartRover's output formats: every field present
(null when unknown), money and counts as strings, Y/N flags, ISO 8601 UTC timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from orderbridge.domain.models import Order, Shipment

INPUT_FIELDS = (
    "cust_ref", "cust_po_no", "ship_company", "ship_title", "ship_first_name", "ship_last_name", "ship_address_1",
    "ship_address_2", "ship_address_3", "ship_city", "ship_state", "ship_zip", "ship_country", "ship_phone",
    "ship_e_mail", "ship_address_type", "ship_is_billing", "cust_company", "cust_title", "cust_first_name",
    "cust_last_name", "cust_address_1", "cust_address_2", "cust_address_3", "cust_city", "cust_state", "cust_zip",
    "cust_country", "cust_phone", "cust_e_mail", "customer_id", "order_date", "order_source", "special_services",
    "shipping_instructions", "gift_message", "gift_wrap", "weight", "promo_code", "currency_code",
    "requested_ship_date", "expected_delivery_date", "custom_field_1", "custom_field_2", "custom_field_3",
    "custom_field_4", "custom_field_5", "ship_code", "ship_code_description", "carrier", "ship_account_no",
    "ship_account_zip", "routing_sw", "sub_total", "order_discount", "shipping_handling", "sales_tax",
    "tax_exempt_sw", "grand_total", "balance", "pay_type", "token_sw", "cc_last_four", "pre_auth_code",
    "pre_auth_amt", "pre_auth_id", "gift_card_sw", "check_type", "check_no", "check_bank_id", "check_cust_bank",
    "check_cust_id_num", "check_cust_id_state", "check_cust_id_mm", "check_cust_id_dd", "check_cust_id_yy",
    "check_cust_id_type", "installment_program", "prepaid_order", "black_list", "credit_score", "fraud_score",
    "ifraud_error_code", "xfraud_error_code", "credit_error_code", "cass_code_ship", "cass_error_ship",
    "cass_code_cust", "cass_error_cust", "cass_date", "ncoa_code_ship", "ncoa_code_cust", "ncoa_date",
    "resubmit_date", "media_week", "ani_phone", "vendor_phone", "location", "load_override_sw", "fail_action",
    "action_dt", "filename", "call_queue", "clerk_disposition", "clerk_disp_dt", "rep_disposition", "rep_disp_dt",
    "duplicate_sw", "org_file_no", "regional_center", "regional_order_no", "regional_ship_date", "first_attempt",
)
OUTPUT_FIELDS = (
    "created_date_time", "updated_date_time", "record_no", "version", "format", "cust_ref_original",
    "cust_po_no_original", "po_number", "working_ship_code", "orig_ship_code", "orig_carrier", "latest_ship_date",
    "error_code", "error_msg", "error_reason", "delete_date", "sent_to_region", "accepted_by_region",
    "regional_retry_sw", "regional_error", "regional_attempts", "cancel_date", "changed_by", "changed_from_server",
    "changed_by_user", "delivered_to_wms_date", "mark_in_progress_date", "mark_in_progress_log",
    "extra_system_date_sent", "num_failed_sends", "log_documents_in", "log_documents_out", "sending_canceled",
    "shipping_pickup_canceled", "on_hold", "inventory_warehouse_pk", "shipment_pk", "order_status", "total_qty",
    "num_to_ship", "num_shipped",
)
SHIPMENT_FIELDS = (
    "carrier", "method", "tracking_no", "tracking_no_secondary", "tracking_url", "sscc_barcode", "bill_of_lading",
    "total_cost", "package_weight_lbs", "dim_weight_lbs", "zone", "delivery_surcharge_type", "whs_location",
    "box_length_in", "box_width_in", "box_height_in", "date", "custom_1", "custom_2", "custom_3",
)
SHIPMENT_ITEM_FIELDS = ("item", "quantity", "carton_code", "carton_num", "box_length_in", "box_width_in",
                        "box_height_in", "package_weight_lbs", "lot_code", "custom_1")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).replace(microsecond=0).isoformat() if value else None


def money(value: Decimal | int | float | str, places: int = 2) -> str:
    return f"{Decimal(str(value)):.{places}f}"


def yn(value: Any) -> str:
    return "Y" if value else "N"


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last


def _address_fields(prefix: str, address: Any) -> dict[str, Any]:
    first, last = _split_name(address.name)
    values = {"company": address.company, "first_name": first, "last_name": last, "address_1": address.address1,
              "address_2": address.address2, "city": address.city, "state": address.state, "zip": address.zip,
              "country": address.country, "phone": address.phone, "e_mail": address.email}
    return {f"{prefix}_{k}": v or None for k, v in values.items()}


def shipment_records(s: Shipment, recorded_at: datetime | None) -> list[dict[str, Any]]:
    """One CartRover shipment per package (each has its own tracking number), or one per shipment."""
    when = iso(s.shipped_at or recorded_at)
    parts: list[tuple[str, str, str, list[Any]]] = []
    if s.packages:
        single = len(s.packages) == 1
        for p in s.packages:
            parts.append((p.carrier or s.carrier, p.service or s.service, p.tracking_number,
                          p.lines or (s.lines if single else [])))
    else:
        parts.append((s.carrier, s.service, s.tracking_numbers[0] if s.tracking_numbers else "", s.lines))
    out = []
    for carrier, method, tracking, lines in parts:
        record: dict[str, Any] = dict.fromkeys(SHIPMENT_FIELDS)
        extra = [n for n in s.tracking_numbers if n != tracking] if not s.packages else []
        record.update(carrier=carrier or None, method=method or None, tracking_no=tracking or None,
                      tracking_no_secondary=extra[0] if extra else None, date=when)
        record["items"] = [{**dict.fromkeys(SHIPMENT_ITEM_FIELDS), "item": ln.sku, "quantity": str(ln.quantity)}
                           for ln in lines]
        out.append(record)
    return out


def order_shipments(rows: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The order's shipments as CartRover records, and the units they ship."""
    records: list[dict[str, Any]] = []
    units = 0
    for row in rows:
        shipment = Shipment.model_validate(row.data)
        records += shipment_records(shipment, row.created_at)
        units += sum(shipment.quantities().values())
    return records, units


def order_record(row: Any, shipment_rows: list[Any], *, cart_level: bool, order_extras: bool = False,
                 line_extras: bool = False, aliases: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The full order record. ``row`` comes from orderbridge.api.queries (order, delivery, queue)."""
    record: dict[str, Any] = dict.fromkeys(INPUT_FIELDS)
    record.update(dict.fromkeys(OUTPUT_FIELDS))
    raw = row.raw if isinstance(row.raw, dict) else {}
    pushed = row.source_type == "cartrover_cart"
    if pushed:  # an order a cart pushed in CartRover's format: echo what it sent
        record.update({k: str(raw[k]) for k in INPUT_FIELDS
                       if raw.get(k) is not None and not isinstance(raw[k], dict | list)})
    order = Order.model_validate(row.data) if row.data else None
    ships, shipped_units = order_shipments(shipment_rows)
    total_qty = sum(ln.quantity for ln in order.lines) if order else 0
    derived: dict[str, Any] = {}
    if order is not None:
        derived.update(_address_fields("ship", order.ship_to))
        if not order.bill_to.is_empty():
            derived.update(_address_fields("cust", order.bill_to))
        derived.update(ship_code=order.shipping_method or None, customer_id=order.customer_id or None,
                       shipping_instructions=order.notes or None, currency_code=order.totals.currency or None,
                       sub_total=money(order.totals.subtotal), order_discount=money(order.totals.discount),
                       shipping_handling=money(order.totals.shipping), sales_tax=money(order.totals.tax),
                       grand_total=money(order.totals.total), balance="0.00")
    for key, value in derived.items():
        if record.get(key) is None:
            record[key] = value
    record.update(
        cust_ref=row.external_id if cart_level else row.cust_ref, cust_po_no=row.cust_po_no,
        order_date=(order.order_date.date().isoformat() if order else None) or record["order_date"],
        order_source=record["order_source"] or row.source_name,
        created_date_time=iso(row.created_at), updated_date_time=iso(row.updated_at), record_no=str(row.id),
        version="1", cust_ref_original=row.external_id, cust_po_no_original=row.cust_po_no, po_number=row.cust_po_no,
        working_ship_code=row.queue_service or None, orig_ship_code=order.shipping_method or None if order else None,
        orig_carrier=row.queue_carrier or None, error_code=row.error_code or None,
        error_msg=row.error_message or None, error_reason=row.error_fix or None,
        cancel_date=iso(row.canceled_at), changed_by=f"Shopping Cart: {row.source_type}",
        delivered_to_wms_date=iso(row.to_wms_at), sending_canceled=yn(row.sending_canceled),
        shipping_pickup_canceled="N", on_hold=yn(row.on_hold), order_status=row.api_status,
        total_qty=str(total_qty), num_shipped=str(shipped_units), num_to_ship=str(total_qty - shipped_units),
    )
    if record["carrier"] is None and row.queue_carrier:
        record["carrier"] = row.queue_carrier
    record["extra_fields"] = (raw.get("extra_fields") or {}) if order_extras and pushed else (
        {} if order_extras else None)
    record["items"] = _items(row, order, raw if pushed else {}, line_extras, aliases or {})
    record["shipments"] = ships
    return record


def _items(row: Any, order: Order | None, raw: Mapping[str, Any], line_extras: bool,
           aliases: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    if order is None:
        return []
    items = raw.get("items")
    raw_items: list[Any] = items if isinstance(items, list) else []
    sent = [ln.get("sku") for ln in (row.queue_lines or [])]
    out = []
    for i, line in enumerate(order.lines):
        source_line = raw_items[i] if i < len(raw_items) and isinstance(raw_items[i], dict) else {}
        per_unit = line.discount / line.quantity if line.quantity else Decimal("0")
        alt = sent[i] if i < len(sent) and sent[i] != line.sku else None
        item: dict[str, Any] = {
            "line_no": str(i + 1), "item": line.sku, "lot_number": source_line.get("lot_number"),
            "quantity": str(line.quantity), "price": money(line.unit_price, 4), "discount": money(per_unit),
            "addl_discount": "0.00", "extended_amount": money((line.unit_price - per_unit) * line.quantity),
            "tax": money(line.tax), "shipping_surcharge": money(source_line.get("shipping_surcharge") or 0)
            if _is_number(source_line.get("shipping_surcharge")) else "0.00",
            "line_item_id": line.external_line_id or None, "line_comment": source_line.get("line_comment"),
            "Description": line.description or None, "alt_sku": alt, "filtered_sku": "N", "line_location": None,
            "extra_fields": (source_line.get("extra_fields") or {}) if line_extras else None,
        }
        if aliases:
            item["aliases"] = aliases.get(alt or line.sku, [])
        out.append(item)
    return out


def _is_number(value: Any) -> bool:
    """A plausible amount: finite and small enough to print (a pushed "1e999999999" would print a
    billion digits)."""
    if value is None or isinstance(value, bool | dict | list):
        return False
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return False
    return number.is_finite() and abs(number) < 10**12


def status_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("cust_ref", "cust_po_no", "delivered_to_wms_date", "order_status",
                                   "updated_date_time", "ship_country", "shipments")}


def inventory_record(sku: str, rows: list[Any], aliases: list[str], *, as_text: bool) -> dict[str, Any]:
    """Totals across warehouses; ints in lists, strings for one SKU (as CartRover's fixtures show)."""
    conv: Any = str if as_text else int
    available = sum(int(r.available) for r in rows)
    on_hand = sum(int(r.on_hand) for r in rows)
    latest = max((r.updated_at for r in rows), default=None)
    warehouses = {str(r.id): {"warehouse": r.warehouse or "default", "qty_available": conv(r.available),
                              "qty_on_hand": conv(r.on_hand), "wms_datetime": iso(r.updated_at)} for r in rows}
    return {"sku": sku, "qty_available": conv(available), "qty_on_hand": conv(on_hand), "wms_datetime": iso(latest),
            "aliases": alias_map(aliases), "warehouses": warehouses or []}


def alias_map(aliases: list[str]) -> dict[str, str] | list[Any]:
    # CartRover names each alias by its type; orderbridge's aliases are the SKUs sources send.
    out = {("SOURCE_SKU" if i == 0 else f"SOURCE_SKU_{i + 1}"): a for i, a in enumerate(aliases)}
    return out or []
