"""Order-level state: ingesting what a source hands over, errors, and the derived status."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge import json_codec
from orderbridge.config import RouteOptions
from orderbridge.connectors.base import DownloadedOrder, SkippedOrder, WorkflowStep
from orderbridge.domain.models import Order, OrderStatus, utcnow
from orderbridge.domain.refs import RefRule, cust_ref_candidate
from orderbridge.domain.validation import utf8_safe
from orderbridge.engine import steps
from orderbridge.engine.hub import ConnectionRow, RouteRow
from orderbridge.engine.timeline import event, event_row
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id
from orderbridge.ledger.prepared import ROW_ID, select_by, update_by_id
from orderbridge.logs import redact


def _strict(value: Any) -> Any:
    """Plain JSON every database takes: no NaN or infinities, no lone surrogates."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {utf8_safe(str(k)): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def _jsonable(raw: Any) -> Any:
    return _strict(json_codec.loads(json_codec.dumps(raw, default=str)))


def order_json(order: Order) -> dict[str, Any]:
    return order.model_dump(mode="json")


def _content(data: dict[str, Any]) -> dict[str, Any]:
    """An order's stored form without its state at the source (``source_status``, ``paid`` and the
    status-named facts of ``extra``): a change there alone leaves the order's lines as they are."""
    extra = {k: v for k, v in (data.get("extra") or {}).items() if not k.endswith("status")}
    return {**{k: v for k, v in data.items() if k not in ("source_status", "paid")}, "extra": extra}



def ref_rule(route: RouteRow | None) -> RefRule:
    opts = RouteOptions.model_validate(route.options if route else {})
    return RefRule(max_length=opts.cust_ref_max_length, allowed=opts.cust_ref_allowed, prefix=opts.cust_ref_prefix)


def assign_cust_ref(conn: Connection, source: ConnectionRow, route: RouteRow | None, cust_po_no: str,
                    rule: RefRule | None = None, taken: set[str] | None = None) -> str:
    """The first candidate reference not yet used by another order going to the same backend
    (nor in ``taken``: references given out in the same batch, or known to be used)."""
    rule = rule or ref_rule(route)
    for index in range(100):
        ref = cust_ref_candidate(cust_po_no, str(source.id), rule, index)
        if route is None:
            return ref
        if taken is not None and ref in taken:
            continue
        if not prepared.execute(conn, _cust_ref_used(), {"backend": route.backend_id, "ref": ref}).first():
            return ref
    raise RuntimeError(f"no free cust_ref for {cust_po_no!r} after 100 candidates")


@functools.cache
def _cust_ref_used() -> Any:
    d = t.deliveries
    return sa.select(d.c.id).where(d.c.backend_id == sa.bindparam("backend"), d.c.cust_ref == sa.bindparam("ref"))


def idempotency_key(backend_id: int, cust_ref: str) -> str:
    return hashlib.sha256(f"orderbridge:{backend_id}:{cust_ref}".encode()).hexdigest()[:40]


def _line_rows(order_id: int, order: Order) -> list[dict[str, Any]]:
    return [{"order_id": order_id, "line_no": i, "sku": line.sku, "quantity": line.quantity,
             "unit_price": line.unit_price, "description": line.description[:500]}
            for i, line in enumerate(order.lines, 1)]


def _insert_lines(conn: Connection, order_id: int, order: Order) -> None:
    conn.execute(t.order_lines.delete().where(t.order_lines.c.order_id == order_id))
    prepared.execute(conn, prepared.insert_into(t.order_lines), _line_rows(order_id, order))


def _create_steps(conn: Connection, order_id: int, wf: list[WorkflowStep], route: RouteRow | None,
                  cust_ref: str) -> None:
    rows = _NewRows()
    rows.add_steps(order_id, wf, route, cust_ref, _holds(route), utcnow())
    rows.insert(conn)


def _holds(route: RouteRow | None) -> bool:
    return route is not None and RouteOptions.model_validate(route.options).hold_new_orders


@dataclasses.dataclass
class _NewRows:
    """The rows newly imported orders get, gathered to be inserted a table at a time."""

    lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deliveries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    held: list[int] = dataclasses.field(default_factory=list)

    def add_steps(self, order_id: int, wf: list[WorkflowStep], route: RouteRow | None, cust_ref: str, hold: bool,
                  now: datetime) -> None:
        """Its workflow steps, and its delivery (held for the workflow or by the route), or a note
        that it has no route."""
        self.steps += [{"order_id": order_id, "name": step.name, "label": step.label, "seq": seq,
                        "blocks_delivery": step.blocks_delivery, "state": steps.PENDING, "attempts": 0,
                        "last_error": ""} for seq, step in enumerate(wf)]
        if route is None:
            self.events.append(event_row(order_id, now, "no_route",
                                         "This source has no route to a backend: add one to deliver its orders."))
            return
        blocking = any(step.blocks_delivery for step in wf)
        self.deliveries.append({
            "order_id": order_id, "backend_id": route.backend_id, "cust_ref": cust_ref,
            "idempotency_key": idempotency_key(route.backend_id, cust_ref), "backend_order_id": "",
            "state": steps.WAITING if (blocking or hold) else steps.PENDING,
            "attempts": 0, "last_error": "waiting for source workflow" if blocking else ""})
        if hold:
            self.held.append(order_id)
            self.events.append(event_row(order_id, now, "on_hold", "Held: the route holds new orders until released."))

    def insert(self, conn: Connection) -> None:
        for table, values in ((t.order_lines, self.lines), (t.order_events, self.events),
                              (t.workflow_steps, self.steps), (t.deliveries, self.deliveries)):
            if values:
                prepared.execute(conn, prepared.insert_into(table), values)
        if self.held:
            conn.execute(t.orders.update().where(t.orders.c.id.in_(self.held)).values(on_hold=True))


def ingest_new(
    conn: Connection, source: ConnectionRow, route: RouteRow | None,
    items: list[tuple[DownloadedOrder, list[WorkflowStep]]], *, via: str = "poll",
) -> None:
    """Store orders the ledger does not hold yet, valid ones, in a few statements for the whole
    batch: what ``ingest`` does for each new order, without a round trip per row. A failure raises
    and stores nothing (the caller then stores the orders one by one)."""
    if not items:
        return
    orders = [item.order for item, _ in items]
    if any(order is None for order in orders):
        raise ValueError("ingest_new takes valid orders only")
    valid = [order for order in orders if order is not None]
    now = utcnow()
    o = t.orders
    conn.execute(t.skipped_orders.delete().where(
        t.skipped_orders.c.connection_id == source.id,
        t.skipped_orders.c.external_id.in_([item.external_id for item, _ in items])))
    refs = _new_refs(conn, source, route, [order.cust_po_no for order in valid])
    rows = []
    for (item, _), order, ref in zip(items, valid, refs, strict=True):
        rows.append({
            "connection_id": source.id, "external_id": item.external_id, "cust_po_no": order.cust_po_no[:200],
            "cust_ref": ref, "raw": _jsonable(item.raw), "raw_digest": item.raw_digest, "created_at": now,
            "updated_at": now,
            "source_status": order.source_status[:60], "status": OrderStatus.NEW, "data": order_json(order),
            "order_date": order.order_date, "customer_name": (order.ship_to.name or order.bill_to.name)[:300],
            "paid": order.paid, "on_hold": False, "error_code": "", "error_message": "", "error_fix": ""})
    ids = [int(i) for i in conn.execute(o.insert().returning(o.c.id, sort_by_parameter_order=True), rows).scalars()]
    new = _NewRows()
    hold = _holds(route)
    for order_id, (_, planned), order, ref in zip(ids, items, valid, refs, strict=True):
        new.lines += _line_rows(order_id, order)
        new.events.append(event_row(order_id, now, "downloaded", f"Downloaded from {source.name} ({via})",
                                    {"source_status": order.source_status}))
        new.add_steps(order_id, planned, route, ref, hold, now)
    new.insert(conn)


def _new_refs(conn: Connection, source: ConnectionRow, route: RouteRow | None, numbers: list[str]) -> list[str]:
    """References for a batch of new orders: each number's first candidate, unless it is used
    (by an order already stored, or earlier in the batch); then the next free one."""
    rule = ref_rule(route)
    first = [cust_ref_candidate(n, str(source.id), rule) for n in numbers]
    if route is None:
        return first
    d = t.deliveries
    used = set(conn.execute(sa.select(d.c.cust_ref).where(
        d.c.backend_id == route.backend_id, d.c.cust_ref.in_(set(first)))).scalars())
    refs: list[str] = []
    for number, ref in zip(numbers, first, strict=True):
        if ref in used:
            ref = assign_cust_ref(conn, source, route, number, rule, used)
        used.add(ref)
        refs.append(ref)
    return refs


def ingest(
    conn: Connection, source: ConnectionRow, route: RouteRow | None, item: DownloadedOrder | SkippedOrder,
    workflow: list[WorkflowStep], *, via: str = "poll",
) -> str:
    """Upsert one downloaded or skipped order. Returns what happened: new, updated, same, skipped."""
    o = t.orders
    existing = conn.execute(stored_columns().where(
        o.c.connection_id == source.id, o.c.external_id == item.external_id)).first()
    now = utcnow()
    if isinstance(item, SkippedOrder):
        if existing:
            return "same"  # we already hold it; a later status (shipped, cancelled) is not a skip
        _record_skip(conn, source, item)
        return "skipped"

    order = item.order
    if existing is None and order is not None:
        ingest_new(conn, source, route, [(item, workflow)], via=via)
        return "new"
    if existing is None:
        # Imported in error, with its reason, so that it is seen and can be corrected at the source.
        conn.execute(
            t.skipped_orders.delete().where(
                t.skipped_orders.c.connection_id == source.id, t.skipped_orders.c.external_id == item.external_id
            )
        )
        order_id = new_id(conn.execute(o.insert().values(
            connection_id=source.id, external_id=item.external_id, cust_po_no=item.external_id[:200],
            cust_ref=assign_cust_ref(conn, source, route, item.external_id), raw=_jsonable(item.raw),
            raw_digest=item.raw_digest, created_at=now, updated_at=now, source_status=item.source_status[:60],
            status=OrderStatus.ERROR, error_code="invalid_order", error_message=item.error, error_fix=item.fix,
            data=None)))
        event(conn, order_id, "error", f"Imported with an error: {item.error}", {"fix": item.fix})
        return "new"

    if order is None:
        return "same"
    if existing.error_code == "invalid_order":
        # The source corrected the order: import it properly now.
        order_id = int(existing.id)
        conn.execute(o.update().where(o.c.id == order_id).values(
            data=order_json(order), raw=_jsonable(item.raw), order_date=order.order_date, paid=order.paid,
            customer_name=(order.ship_to.name or order.bill_to.name)[:300], error_code="", error_message="",
            error_fix="", source_status=order.source_status[:60], updated_at=now,
        ))
        _insert_lines(conn, order_id, order)
        event(conn, order_id, "downloaded", "Downloaded again from the source, now valid")
        cust_ref = conn.execute(sa.select(o.c.cust_ref).where(o.c.id == order_id)).scalar_one()
        _create_steps(conn, order_id, workflow, route, cust_ref)
        recompute_status(conn, order_id)
        return "updated"
    return update_stored(conn, existing, item, order, facts=None)


@functools.cache
def stored_columns() -> Any:
    """What ``update_stored`` needs of a stored order (``SELECT ... FROM orders``, to add a WHERE to)."""
    o = t.orders
    return sa.select(o.c.id, o.c.external_id, o.c.status, o.c.data, o.c.paid, o.c.error_code, o.c.source_status,
                     o.c.raw_digest)


WAITING_FOR_PAYMENT = "waiting for payment"


@dataclasses.dataclass
class DeliveryFacts:
    """What ``update_stored`` needs of orders' deliveries, read for a batch of orders at once."""

    delivered: set[int] = dataclasses.field(default_factory=set)  # creation at the backend done or under way
    awaiting_payment: set[int] = dataclasses.field(default_factory=set)  # held until the order is paid


def delivery_facts(conn: Connection, order_ids: list[int]) -> DeliveryFacts:
    """The orders among these whose delivery is done or under way, and those whose delivery waits
    for payment, in one query."""
    facts = DeliveryFacts()
    if not order_ids:
        return facts
    d = t.deliveries
    for order_id, state, last_error in conn.execute(sa.select(d.c.order_id, d.c.state, d.c.last_error).where(
            d.c.order_id.in_(order_ids), d.c.state.in_((steps.DONE, steps.IN_FLIGHT, steps.WAITING)))):
        if state == steps.WAITING:
            if last_error == WAITING_FOR_PAYMENT:
                facts.awaiting_payment.add(int(order_id))
        else:
            facts.delivered.add(int(order_id))
    return facts


def update_stored(conn: Connection, existing: Any, item: DownloadedOrder, order: Order, *,
                  facts: DeliveryFacts | None, digested: set[str] | None = None) -> str:
    """A stored, valid order read again: "same" or "updated". ``facts``: its delivery's, when the
    caller read them already (for a batch at once). The digest of what was read is stored with the
    order's other columns when they are written (its id then added to ``digested``)."""
    o = t.orders
    order_id = int(existing.id)
    new_data = order_json(order)
    if new_data == existing.data:
        return "same"
    now = utcnow()
    if facts is None:
        facts = delivery_facts(conn, [order_id])
    delivered = order_id in facts.delivered
    prepared.execute(conn, update_by_id(o), {
        ROW_ID: order_id, "source_status": order.source_status[:60], "paid": order.paid, "updated_at": now,
        **({"raw_digest": item.raw_digest} if item.raw_digest else {}),
        **({} if delivered else {"data": new_data, "raw": _jsonable(item.raw)})})
    if digested is not None and item.raw_digest:
        digested.add(item.external_id)
    if delivered:
        return "same"
    newly_paid = order.paid and not existing.paid
    if existing.data is not None and _content(new_data) == _content(existing.data):
        # Only the status at the source moved (often by our own workflow step): the lines stand.
        if not newly_paid:
            return "same"
        event(conn, order_id, "updated", "Order paid at the source")
    else:
        _insert_lines(conn, order_id, order)
        changes = "paid" if newly_paid else "changed"
        event(conn, order_id, "updated", f"Order {changes} at the source; the update will be delivered")
    if newly_paid and order_id in facts.awaiting_payment:
        # A delivery held for payment can go now.
        conn.execute(
            t.deliveries.update()
            .where(t.deliveries.c.order_id == order_id, t.deliveries.c.state == steps.WAITING,
                   t.deliveries.c.last_error == WAITING_FOR_PAYMENT)
            .values(state=steps.PENDING, last_error="")
        )
    return "updated"


def _record_skip(conn: Connection, source: ConnectionRow, item: SkippedOrder) -> None:
    s = t.skipped_orders
    now = utcnow()
    row = conn.execute(
        sa.select(s.c.id).where(s.c.connection_id == source.id, s.c.external_id == item.external_id)
    ).first()
    values = {"reason": item.reason[:2000], "source_status": item.source_status[:60], "final": item.final,
              "order_date": item.order_date, "last_seen_at": now}
    if row:
        conn.execute(s.update().where(s.c.id == row.id).values(seen_count=s.c.seen_count + 1, **values))
    else:
        conn.execute(s.insert().values(connection_id=source.id, external_id=item.external_id,
                                       raw=_jsonable(item.raw), first_seen_at=now, **values))


# --------------------------------------------------------------------------------- errors


def set_error(conn: Connection, order_id: int, code: str, message: str, fix: str = "") -> None:
    # An API may echo a credential in its refusal: what is stored (and shown) is masked.
    message, fix = redact(message), redact(fix)
    conn.execute(t.orders.update().where(t.orders.c.id == order_id).values(
        error_code=code[:60], error_message=message, error_fix=fix, status=OrderStatus.ERROR, updated_at=utcnow()
    ))
    event(conn, order_id, "error", message, {"fix": fix, "code": code})


def clear_error(conn: Connection, order_id: int) -> None:
    prepared.execute(conn, update_by_id(t.orders), {ROW_ID: order_id, "error_code": "", "error_message": "",
                                                    "error_fix": "", "updated_at": utcnow()})


# --------------------------------------------------------------------------------- status


def shipped_fraction(conn: Connection, order_id: int, ordered: int | None = None) -> tuple[int, int]:
    """(units shipped, units ordered). A shipment that lists no lines ships the whole order."""
    if ordered is None:
        ordered = int(prepared.execute(conn, units_ordered(), {ROW_ID: order_id}).scalar_one())
    shipments = prepared.execute(conn, select_by(t.shipments, "order_id", "data"), {ROW_ID: order_id}).scalars()
    return units_shipped(shipments, ordered), ordered


def units_shipped(shipments: Iterable[dict[str, Any]], ordered: int) -> int:
    """Units shipped by these shipments (their stored data: every shipment of the order), at most
    ``ordered``. A shipment that lists no lines ships the whole order."""
    shipped = 0
    for data in shipments:
        lines = data.get("lines") or [pl for p in data.get("packages", []) for pl in p.get("lines", [])]
        if not lines:
            return ordered
        shipped += sum(int(pl.get("quantity", 0)) for pl in lines)
    return min(shipped, ordered)


WHOLE_ORDER = "order"  # the key of a confirmation of the whole order (else: the shipment's id)


@functools.cache
def units_ordered(order_id: Any = None) -> Any:
    """Units ordered: of the order named by :row_id, or of ``order_id`` (a column) as a subquery."""
    ol = t.order_lines
    q = sa.select(sa.func.coalesce(sa.func.sum(ol.c.quantity), 0))
    return q.where(ol.c.order_id == (sa.bindparam(ROW_ID) if order_id is None else order_id))


@functools.cache
def _status_inputs() -> Any:
    """What an order's status derives from, in one statement."""
    o = t.orders

    def first(column: Any) -> Any:
        return sa.select(column).where(column.table.c.order_id == o.c.id).limit(1).scalar_subquery()

    def count(table: sa.Table, *where: Any) -> Any:
        return sa.select(sa.func.count()).select_from(table).where(table.c.order_id == o.c.id, *where).scalar_subquery()

    c = t.confirmations
    return sa.select(
        o.c.status, o.c.sending_canceled, o.c.error_code, first(t.cancellations.c.outcome).label("canceled"),
        first(t.deliveries.c.state).label("delivery"),
        units_ordered(o.c.id).scalar_subquery().label("ordered"),
        count(c).label("confirmations"), count(c, c.c.state != steps.DONE).label("confirmations_open"),
        first(c.c.key).label("confirmation_key"), count(t.shipments).label("shipments"),
    ).where(o.c.id == sa.bindparam(ROW_ID))


@functools.cache
def _plainly(status: OrderStatus) -> Any:
    """``UPDATE orders SET status = <status>`` where nothing but the step that just succeeded bears
    on it, in one statement: not cancelled, not in error, every delivery done (there is one), and
    for ``at_wms`` no shipment nor confirmation yet; for ``shipped`` (every unit shipped, as the
    caller counted) no confirmation, or one still to be made; for ``confirmed`` its one confirmation,
    of the whole order, made. Those are the conditions under which
    ``recompute_status`` derives the same status; where they do not hold, nothing is written."""
    o, d, x, c = t.orders, t.deliveries, t.cancellations, t.confirmations
    where = [o.c.id == sa.bindparam(ROW_ID), o.c.status != status, o.c.sending_canceled.is_(False),
             o.c.error_code == "",
             sa.exists().where(d.c.order_id == o.c.id),
             ~sa.exists().where(d.c.order_id == o.c.id, d.c.state != steps.DONE),
             ~sa.exists().where(x.c.order_id == o.c.id, sa.or_(x.c.outcome == "canceled", x.c.outcome == "stopped"))]
    if status == OrderStatus.AT_WMS:
        where += [~sa.exists().where(t.shipments.c.order_id == o.c.id), ~sa.exists().where(c.c.order_id == o.c.id)]
    elif status == OrderStatus.SHIPPED:
        # No confirmation, or one still to be made: none made unless another is still to be. Said
        # without OR: PostgreSQL reads an OR of EXISTS as a hash of the whole confirmations table,
        # built at every run of the statement (O(orders) each) where the table was small when the
        # plan was made (a new ledger, not yet analysed); this is an anti-join on the order's key.
        # The state is tested in a form no index serves, so that the order's own rows are found by
        # its key: with no statistics yet, the index of due rows (state first) looks as good, and
        # reads every confirmation made.
        other = sa.alias(c)
        made = sa.case((c.c.state == steps.DONE, 1), else_=0) == 1
        where.append(~sa.exists().where(
            c.c.order_id == o.c.id, made,
            ~sa.exists().where(other.c.order_id == c.c.order_id, other.c.state != steps.DONE)))
    elif status == OrderStatus.CONFIRMED:
        # The order's one confirmation, of the whole order, done: confirmed however much it shipped.
        where += [sa.exists().where(c.c.order_id == o.c.id),
                  ~sa.exists().where(c.c.order_id == o.c.id, sa.or_(c.c.key != WHOLE_ORDER, c.c.state != steps.DONE))]
    else:
        raise ValueError(f"no plain transition to {status}")
    return o.update().where(*where).values(status=status, updated_at=sa.bindparam("at"))


def recompute_status(conn: Connection, order_id: int, fraction: tuple[int, int] | None = None,
                     shipments: list[dict[str, Any]] | None = None, *, likely: OrderStatus | None = None) -> str:
    """Derive the order's status from its steps and shipments, and store it. ``fraction``: the
    order's (units shipped, units ordered), when the caller has just read them in this transaction;
    ``shipments``: the stored data of every shipment of the order, when the caller holds them;
    ``likely``: the status the step that just succeeded normally leads to (``at_wms`` after a
    delivery, ``shipped`` when ``fraction`` counts every unit shipped, ``confirmed`` after the
    confirmation of the whole order), stored in one statement when nothing else bears on it
    (``_plainly``); otherwise derived from all there is."""
    if likely is not None and (likely in (OrderStatus.AT_WMS, OrderStatus.CONFIRMED) or (
            likely == OrderStatus.SHIPPED and fraction is not None and fraction[1] and fraction[0] >= fraction[1])):
        if prepared.execute(conn, _plainly(likely), {ROW_ID: order_id, "at": utcnow()}).rowcount == 1:
            return str(likely)
    o = prepared.execute(conn, _status_inputs(), {ROW_ID: order_id}).one()
    ordered = int(o.ordered)
    if fraction is not None:
        shipped, ordered = fraction
    elif shipments is not None and len(shipments) == o.shipments:
        shipped = units_shipped(shipments, ordered)
    else:
        shipped, ordered = shipped_fraction(conn, order_id, ordered) if o.shipments else (0, ordered)
    if o.sending_canceled or o.canceled in ("canceled", "stopped"):
        status = OrderStatus.CANCELED
    elif o.error_code:
        status = OrderStatus.ERROR
    elif o.delivery != steps.DONE:
        status = OrderStatus.NEW
    elif o.confirmations and not o.confirmations_open and (
            shipped >= ordered or (o.confirmations == 1 and o.confirmation_key == WHOLE_ORDER)):
        status = OrderStatus.CONFIRMED
    elif ordered and shipped >= ordered:
        status = OrderStatus.SHIPPED
    elif shipped:
        status = OrderStatus.PARTIAL
    else:
        status = OrderStatus.AT_WMS
    if status != o.status:
        prepared.execute(conn, update_by_id(t.orders), {ROW_ID: order_id, "status": status, "updated_at": utcnow()})
    return str(status)


