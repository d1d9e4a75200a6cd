"""Cart level: an API Access cart pushes orders, reads them back, confirms tracking, cancels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.responses import JSONResponse

from orderbridge.api import order_reads, queries
from orderbridge.api.auth import CART
from orderbridge.api.envelope import FAILURE, INVALID, ApiFailure, error, ok
from orderbridge.api.routing import Call, Endpoint
from orderbridge.connectors.base import SkippedOrder
from orderbridge.connectors.cartrover.connector import CartRoverCartConnector
from orderbridge.connectors.cartrover.mapping import refusal
from orderbridge.domain.models import Cancellation
from orderbridge.engine.cancels import record_cancellation
from orderbridge.engine.intake import store_items
from orderbridge.engine.pushed import cart_confirmed
from orderbridge.ledger import schema as t

log = logging.getLogger("orderbridge.api")

SHIPPED_STATES = ("partial", "shipped", "confirmed")


@dataclass
class Outcome:
    ok: bool
    cust_ref: str = ""
    cust_po_no: str = ""
    message: str = ""
    code: str = INVALID


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def receive_one(call: Call, raw: Any) -> Outcome:
    """Hand one pushed order to the engine's intake (validation, skips, errors, de-duplication)."""
    problem = refusal(raw)
    if not isinstance(raw, dict):
        return Outcome(False, message=problem or "")
    cust_ref, cust_po_no = _text(raw.get("cust_ref")), _text(raw.get("cust_po_no"))
    if problem:
        return Outcome(False, cust_ref[:200], cust_po_no[:200], problem)
    o = t.orders
    with call.hub.db.begin() as conn:
        row = call.hub.connection(conn, int(call.scope.source_id or 0))
        held = conn.execute(sa.select(o.c.status, o.c.error_code).where(
            o.c.connection_id == row.id, o.c.external_id == cust_ref)).first()
    if held is not None and held.error_code != "invalid_order":
        return Outcome(False, cust_ref, cust_po_no or cust_ref, f"OrderDuplicate: an order with cust_ref {cust_ref!r} "
                       f"already exists (status {held.status})", FAILURE)
    source = call.hub.source(row)
    if not isinstance(source, CartRoverCartConnector):
        raise ApiFailure(f"connection {row.name!r} is not an API Access cart (cartrover_cart)")
    item = source.receive(raw)
    outcome = next(iter(store_items(call.hub, row, [item], via="API")))
    po = cust_po_no or cust_ref
    if outcome == "same":
        return Outcome(False, cust_ref, po, f"OrderDuplicate: an order with cust_ref {cust_ref!r} already exists",
                       FAILURE)
    if outcome == "failed":
        return Outcome(False, cust_ref, po, "The order could not be stored; send it again", FAILURE)
    if isinstance(item, SkippedOrder):
        return Outcome(True, cust_ref, po, f"Skipped: {item.reason}")
    if item.order is None:
        return Outcome(False, cust_ref, po, f"{item.error} (the order is kept in status error; {item.fix})")
    return Outcome(True, cust_ref, po)


def _orders(call: Call) -> list[Any]:
    data = call.body
    orders = data if isinstance(data, list) else [data]
    if not orders:
        raise ApiFailure("The body holds no orders; send an order object or an array of orders")
    if len(orders) > call.settings.max_batch_orders:
        raise ApiFailure(f"{len(orders)} orders in one call is over the limit of {call.settings.max_batch_orders}; "
                         "send them in several calls")
    return orders


def _batch(call: Call, orders: list[Any]) -> JSONResponse:
    success, failed = [], []
    for index, raw in enumerate(orders):
        result = receive_one(call, raw)
        entry: dict[str, Any] = {"cust_ref": result.cust_ref or None, "cust_po_no": result.cust_po_no or None}
        if result.ok:
            success.append({**entry, **({"message": result.message} if result.message else {})})
        else:
            failed.append({**entry, "message": result.message, **({} if result.cust_ref else {"index_pos": index})})
    return ok({"success": success, "failed": failed})


def create(call: Call) -> JSONResponse:
    if not isinstance(call.body, dict | list):
        raise ApiFailure("The body must be an order object or an array of orders")
    orders = _orders(call)
    if isinstance(call.body, list) and len(orders) > 1:
        return _batch(call, orders)
    result = receive_one(call, orders[0])
    if not result.ok:
        return error(result.message, result.code)
    extra = {"message": result.message} if result.message else {}
    return ok(None, cust_ref=result.cust_ref, order_number=result.cust_po_no, **extra)


def batch(call: Call) -> JSONResponse:
    if not isinstance(call.body, dict | list):
        raise ApiFailure("The body must be an array of orders")
    return _batch(call, _orders(call))


def _cancel(call: Call, cust_ref: str, reason: str, *, before_delivery_only: bool) -> tuple[bool, str]:
    with call.hub.db.begin() as conn:
        row = queries.find_order(conn, call.scope, cust_ref)
        if row.api_status == "canceled":
            return True, "The order is already canceled"
        if row.api_status in SHIPPED_STATES:
            return False, f"The order is already {row.api_status}: it can no longer be canceled"
        if before_delivery_only and row.delivered_at is not None:
            raise ApiFailure("Too late for this cancel: the order was already sent on; use "
                             f"GET cart/orders/wms_cancel/{cust_ref}", FAILURE)
        source = call.hub.connection(conn, int(row.connection_id))
        record_cancellation(conn, call.hub, source, Cancellation(external_id=row.external_id, reason=reason))
        delivered = row.delivered_at is not None
    if delivered:
        return True, "Cancellation requested at the warehouse; it is not guaranteed: check the order's status"
    return True, "The order will not be sent to the warehouse"


def wms_cancel(call: Call) -> JSONResponse:
    done, message = _cancel(call, call.param("cust_ref"), "cancelled by the cart (wms_cancel)",
                            before_delivery_only=False)
    return ok({"success": done, "message": message})


def legacy_cancel(call: Call) -> JSONResponse:
    body = call.body if isinstance(call.body, dict) else {}
    cust_ref = _text(body.get("cust_ref"))
    if not cust_ref:
        raise ApiFailure("Order missing required field(s): cust_ref")
    done, message = _cancel(call, cust_ref, "cancelled by the cart (legacy cancel)", before_delivery_only=True)
    if not done:
        raise ApiFailure(message, FAILURE)
    return ok({"success": True, "message": message})


def confirm(call: Call) -> JSONResponse:
    body = call.body
    if not isinstance(body, dict):
        raise ApiFailure('The body must be an object: {"order_status": "confirmed", "shipments": [...]}')
    status = _text(body.get("order_status")).lower()
    if status != "confirmed":
        raise ApiFailure(f"order_status must be 'confirmed' at cart level, got {status or 'nothing'!r}")
    shipments = body.get("shipments") or []
    if not isinstance(shipments, list):
        raise ApiFailure("shipments must be a list of {tracking_no}")
    tracking = [_text(s.get("tracking_no")) for s in shipments if isinstance(s, dict) and _text(s.get("tracking_no"))]
    with call.hub.db.begin() as conn:
        row = queries.find_order(conn, call.scope, call.param("cust_ref"))
        if row.api_status == "confirmed":
            return ok()
        if row.api_status != "shipped":
            raise ApiFailure(f"Order {call.param('cust_ref')!r} is {row.api_status}: only shipped orders can be "
                             "confirmed (all units shipped)", FAILURE)
        cart_confirmed(conn, int(row.id), tracking)
    return ok()


CART_TAG = "Cart"
ENDPOINTS = [
    Endpoint("POST", "/cart/orders/cartrover", create, CART, "Create an order (object), or several (array)",
             CART_TAG, body="OrderInputBody", response="CreateResult", rate_limited=False,
             description="JSON object, JSON array, or form-encoded with PHP-style nested keys "
                         "(items[][item]=...). An array of more than one order is answered like batch."),
    Endpoint("POST", "/cart/orders/batch", batch, CART, "Create many orders with per-order success and failure",
             CART_TAG, body="OrderInputBody", response="BatchResult"),
    Endpoint("GET", "/cart/orders/list/{status}", order_reads.listing, CART, "List this cart's orders by status",
             CART_TAG, query=order_reads.LIST_QUERY, response="OrderList"),
    Endpoint("GET", "/cart/orders/status/{cust_ref}", order_reads.status, CART, "Status and shipments of an order",
             CART_TAG, response="OrderStatus"),
    Endpoint("GET", "/cart/orders/wms_cancel/{cust_ref}", wms_cancel, CART, "Stop sending or cancel at the warehouse",
             CART_TAG, response="CancelResult"),
    Endpoint("POST", "/cart/orders/update/{cust_ref}", confirm, CART, "Confirm that the cart processed the tracking",
             CART_TAG, body="ConfirmBody"),
    Endpoint("POST", "/cart/orders/cancel/cartrover", legacy_cancel, CART,
             "Legacy cancel (only before the order is sent on)", CART_TAG, body="LegacyCancelBody",
             response="CancelResult"),
    Endpoint("POST", "/cart/orders/cancel", legacy_cancel, CART, "Older legacy cancel (same as cancel/cartrover)",
             CART_TAG, body="LegacyCancelBody", response="CancelResult"),
    Endpoint("GET", "/cart/orders/{cust_ref}", order_reads.view, CART, "View one order (full record)", CART_TAG,
             query=order_reads.VIEW_QUERY, response="Order"),
]
